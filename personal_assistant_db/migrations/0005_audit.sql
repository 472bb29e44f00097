-- Audit trail. Rows survive the deletion of their user (ON DELETE SET NULL): an audit log that
-- forgets who did something when the account goes away is no audit log.
-- depends: 0004_rbac

CREATE TABLE security_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    event_type text NOT NULL,
    severity text NOT NULL,
    ip_address inet,
    user_agent text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT security_events_severity_known
        CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    CONSTRAINT security_events_event_type_format CHECK (event_type ~ '^[a-z][a-z0-9_.]{0,99}$')
);

CREATE INDEX security_events_user_id_idx ON security_events (user_id);

CREATE TABLE access_audit_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    resource text NOT NULL,
    action text NOT NULL,
    granted boolean NOT NULL,
    roles_checked text[] NOT NULL DEFAULT '{}',
    reason text,
    ip_address inet,
    occurred_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX access_audit_logs_user_id_idx ON access_audit_logs (user_id);
