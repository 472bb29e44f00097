-- Time-range indexes for the audit tables, built without blocking writes. CREATE INDEX
-- CONCURRENTLY cannot run inside a transaction, so this migration is not transactional; its
-- rollback drops the indexes concurrently too. A failed concurrent build leaves an INVALID
-- index, which `pa-db migrate verify` reports.
-- depends: 0006_seed_roles
-- transactional: false

-- No IF NOT EXISTS on purpose: an INVALID index left by a failed concurrent build must make the
-- rerun fail loudly rather than be kept silently.
-- squawk-ignore prefer-robust-stmts
CREATE INDEX CONCURRENTLY security_events_occurred_at_idx ON security_events (occurred_at);

-- squawk-ignore prefer-robust-stmts
CREATE INDEX CONCURRENTLY access_audit_logs_occurred_at_idx ON access_audit_logs (occurred_at);
