-- Role-based access control: roles (with an optional parent), permissions named
-- resource:action, and the two grant tables. At most one primary role per user is enforced by a
-- partial unique index.
-- depends: 0003_mfa

CREATE TABLE roles (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    parent_role_id bigint REFERENCES roles (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_name_key UNIQUE (name),
    CONSTRAINT roles_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    CONSTRAINT roles_not_own_parent CHECK (parent_role_id <> id)
);

CREATE INDEX roles_parent_role_id_idx ON roles (parent_role_id);

CREATE TRIGGER roles_set_updated_at
    BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE permissions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource text NOT NULL,
    action text NOT NULL,
    name text GENERATED ALWAYS AS (resource || ':' || action) STORED,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT permissions_name_key UNIQUE (name),
    CONSTRAINT permissions_resource_format CHECK (resource ~ '^[a-z][a-z0-9_]{0,62}$'),
    CONSTRAINT permissions_action_format CHECK (action ~ '^[a-z][a-z0-9_]{0,62}$')
);

CREATE TABLE role_permissions (
    role_id bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission_id bigint NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_permissions_pkey PRIMARY KEY (role_id, permission_id)
);

CREATE INDEX role_permissions_permission_id_idx ON role_permissions (permission_id);

CREATE TABLE user_roles (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    is_primary boolean NOT NULL DEFAULT false,
    granted_by bigint REFERENCES users (id) ON DELETE SET NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role_id),
    CONSTRAINT user_roles_expiry_after_grant CHECK (expires_at IS NULL OR expires_at > granted_at)
);

CREATE UNIQUE INDEX user_roles_one_primary_per_user ON user_roles (user_id) WHERE is_primary;

CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

CREATE INDEX user_roles_granted_by_idx ON user_roles (granted_by);
