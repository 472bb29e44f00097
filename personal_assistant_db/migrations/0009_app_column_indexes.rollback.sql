-- Drops the two indexes without blocking writes.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS users_role_assigned_by_idx;

DROP INDEX CONCURRENTLY IF EXISTS users_default_role_id_idx;
