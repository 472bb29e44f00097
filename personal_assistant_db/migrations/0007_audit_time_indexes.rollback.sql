-- Drops the two time-range indexes without blocking writes.
-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS access_audit_logs_occurred_at_idx;

DROP INDEX CONCURRENTLY IF EXISTS security_events_occurred_at_idx;
