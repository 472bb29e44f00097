-- squawk-ignore-file ban-drop-column
-- Rolling back removes the columns (and their constraints) this migration added.

ALTER TABLE access_audit_logs DROP COLUMN user_agent, DROP COLUMN resource_id;

ALTER TABLE mfa_configurations DROP COLUMN trusted_devices;

ALTER TABLE auth_tokens DROP COLUMN last_used_at, DROP COLUMN token_type;

ALTER TABLE users
    DROP COLUMN role_assigned_by,
    DROP COLUMN role_assigned_at,
    DROP COLUMN default_role_id,
    DROP COLUMN password_reset_expires_at,
    DROP COLUMN password_reset_token_hash,
    DROP COLUMN verification_token_hash,
    DROP COLUMN phone_number;
