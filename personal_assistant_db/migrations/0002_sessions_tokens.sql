-- Sessions and refresh tokens. Both belong to a user and cascade when the user is deleted.
-- depends: 0001_auth_core

CREATE TABLE user_sessions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id text NOT NULL,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_info jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip_address inet,
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    CONSTRAINT user_sessions_session_id_key UNIQUE (session_id),
    CONSTRAINT user_sessions_device_info_object CHECK (jsonb_typeof(device_info) = 'object'),
    CONSTRAINT user_sessions_expiry_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);

CREATE TABLE auth_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id bigint REFERENCES user_sessions (id) ON DELETE CASCADE,
    token_hash text NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked boolean NOT NULL DEFAULT false,
    revoked_at timestamptz,
    CONSTRAINT auth_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT auth_tokens_token_hash_sha256 CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT auth_tokens_expiry_after_issue CHECK (expires_at > issued_at),
    CONSTRAINT auth_tokens_revoked_at_when_revoked CHECK (revoked_at IS NULL OR revoked)
);

CREATE INDEX auth_tokens_user_id_idx ON auth_tokens (user_id);

CREATE INDEX auth_tokens_session_id_idx ON auth_tokens (session_id);
