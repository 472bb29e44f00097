-- Seed data: the roles user < premium < administrator and their resource:action permissions.
-- Each role is granted its full effective set (inherited permissions included), so a check is a
-- single join; parent_role_id records the hierarchy for display.
-- depends: 0005_audit

INSERT INTO roles (name, description) VALUES
    ('user', 'A signed-up user of the assistant'),
    ('premium', 'A paying user: advanced assistant features and integrations'),
    ('administrator', 'Operates the service: users, roles and the audit trail');

UPDATE roles SET parent_role_id = (SELECT r.id FROM roles AS r WHERE r.name = 'user')
WHERE name = 'premium';

UPDATE roles SET parent_role_id = (SELECT r.id FROM roles AS r WHERE r.name = 'premium')
WHERE name = 'administrator';

INSERT INTO permissions (resource, action, description) VALUES
    ('profile', 'read', 'Read one''s own profile'),
    ('profile', 'update', 'Change one''s own profile'),
    ('tasks', 'read', 'Read one''s tasks'),
    ('tasks', 'write', 'Create, change and delete one''s tasks'),
    ('notes', 'read', 'Read one''s notes'),
    ('notes', 'write', 'Create, change and delete one''s notes'),
    ('assistant', 'advanced', 'Use the advanced assistant features'),
    ('integrations', 'manage', 'Connect calendars, mail and other services'),
    ('export', 'create', 'Export one''s data'),
    ('users', 'read', 'Read any user account'),
    ('users', 'manage', 'Lock, unlock and delete user accounts'),
    ('roles', 'manage', 'Grant and revoke roles'),
    ('audit', 'read', 'Read security events and access audit logs');

INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id
FROM roles AS r
JOIN permissions AS p ON
    (r.name IN ('user', 'premium', 'administrator')
        AND p.name IN ('profile:read', 'profile:update', 'tasks:read', 'tasks:write',
                       'notes:read', 'notes:write'))
    OR (r.name IN ('premium', 'administrator')
        AND p.name IN ('assistant:advanced', 'integrations:manage', 'export:create'))
    OR (r.name = 'administrator'
        AND p.name IN ('users:read', 'users:manage', 'roles:manage', 'audit:read'));
