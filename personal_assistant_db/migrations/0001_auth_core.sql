-- Auth core: users, and the trigger function that keeps updated_at current.
-- Emails are unique case-insensitively (a unique index on lower(email)); the password column
-- holds a hash in PHC/modular-crypt form ($algorithm$...), never plaintext.

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    display_name text,
    password_hash text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    is_verified boolean NOT NULL DEFAULT false,
    failed_login_count bigint NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_format CHECK (length(email) <= 320 AND email ~ '^[^@\s]+@[^@\s]+$'),
    CONSTRAINT users_password_hash_format CHECK (password_hash ~ '^\$[a-z0-9-]+\$'),
    CONSTRAINT users_failed_login_count_nonnegative CHECK (failed_login_count >= 0)
);

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
