-- Multi-factor authentication: at most one configuration per user (the unique user_id also
-- serves as the foreign key's index). Backup codes are stored as hashes.
-- depends: 0002_sessions_tokens

CREATE TABLE mfa_configurations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    totp_secret text,
    totp_enabled boolean NOT NULL DEFAULT false,
    sms_enabled boolean NOT NULL DEFAULT false,
    phone_number text,
    backup_codes text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mfa_configurations_user_id_key UNIQUE (user_id),
    CONSTRAINT mfa_configurations_totp_needs_secret CHECK (NOT totp_enabled OR totp_secret IS NOT NULL),
    CONSTRAINT mfa_configurations_sms_needs_phone CHECK (NOT sms_enabled OR phone_number IS NOT NULL)
);

CREATE TRIGGER mfa_configurations_set_updated_at
    BEFORE UPDATE ON mfa_configurations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
