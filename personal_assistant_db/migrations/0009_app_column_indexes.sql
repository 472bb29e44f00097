-- Indexes for the two foreign keys 0008 added to users (every foreign key is indexed: deleting a
-- role or a user must not scan users), built without blocking writes. CREATE INDEX CONCURRENTLY
-- cannot run inside a transaction, so this migration is not transactional, like 0007.
-- depends: 0008_app_columns
-- transactional: false

-- No IF NOT EXISTS on purpose: an INVALID index left by a failed concurrent build must make the
-- rerun fail loudly rather than be kept silently.
-- squawk-ignore prefer-robust-stmts
CREATE INDEX CONCURRENTLY users_default_role_id_idx ON users (default_role_id);

-- squawk-ignore prefer-robust-stmts
CREATE INDEX CONCURRENTLY users_role_assigned_by_idx ON users (role_assigned_by);
