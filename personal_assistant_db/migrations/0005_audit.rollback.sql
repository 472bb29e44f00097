-- squawk-ignore-file ban-drop-table
-- Rolling back removes the two audit tables this migration created.

DROP TABLE access_audit_logs;

DROP TABLE security_events;
