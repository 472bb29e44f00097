-- The app's own data, given a home: how the assistant reaches a user by SMS (phone_number), the
-- password-reset and verification tokens (as sha256 hashes, like auth_tokens), the user's default
-- role and who assigned it, token types other than refresh tokens, MFA trusted devices, and the
-- resource and user agent of an access check. These are the columns of ai_assistant's tables that
-- had no home here; `pa-db migrate adopt` fills them from an existing database.
-- depends: 0007_audit_time_indexes

-- Every new column is NULL (or a constant default) on every existing row, so the checks, the
-- unique constraint and the foreign keys below scan only NULLs or that constant: no row can fail
-- them and no rewrite happens. On an adopted database contract builds them online instead.
ALTER TABLE users
    ADD COLUMN phone_number text,
    ADD COLUMN verification_token_hash text,
    ADD COLUMN password_reset_token_hash text,
    ADD COLUMN password_reset_expires_at timestamptz;

-- squawk-ignore adding-foreign-key-constraint
ALTER TABLE users ADD COLUMN default_role_id bigint REFERENCES roles (id) ON DELETE SET NULL;

ALTER TABLE users ADD COLUMN role_assigned_at timestamptz;

-- squawk-ignore adding-foreign-key-constraint
ALTER TABLE users ADD COLUMN role_assigned_by bigint REFERENCES users (id) ON DELETE SET NULL;

-- squawk-ignore constraint-missing-not-valid, disallowed-unique-constraint
ALTER TABLE users ADD CONSTRAINT users_phone_number_key UNIQUE (phone_number);

-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_verification_token_hash_sha256 CHECK (verification_token_hash ~ '^[0-9a-f]{64}$');

-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_password_reset_token_hash_sha256 CHECK (password_reset_token_hash ~ '^[0-9a-f]{64}$');

ALTER TABLE auth_tokens
    ADD COLUMN token_type text NOT NULL DEFAULT 'refresh',
    ADD COLUMN last_used_at timestamptz;

-- squawk-ignore constraint-missing-not-valid
ALTER TABLE auth_tokens ADD CONSTRAINT auth_tokens_token_type_known CHECK (token_type IN ('refresh', 'access', 'reset', 'verification'));

ALTER TABLE mfa_configurations ADD COLUMN trusted_devices jsonb NOT NULL DEFAULT '[]'::jsonb;

ALTER TABLE access_audit_logs
    ADD COLUMN resource_id bigint,
    ADD COLUMN user_agent text;
