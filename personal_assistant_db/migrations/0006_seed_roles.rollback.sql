-- Removes exactly the seeded rows: their grants go with them (ON DELETE CASCADE on
-- role_permissions and user_roles).

DELETE FROM permissions
WHERE name IN ('profile:read', 'profile:update', 'tasks:read', 'tasks:write', 'notes:read',
               'notes:write', 'assistant:advanced', 'integrations:manage', 'export:create',
               'users:read', 'users:manage', 'roles:manage', 'audit:read');

DELETE FROM roles WHERE name IN ('administrator', 'premium', 'user');
