-- squawk-ignore-file ban-drop-table
-- Rolling back removes the four tables this migration created, children first.

DROP TABLE user_roles;

DROP TABLE role_permissions;

DROP TABLE permissions;

DROP TABLE roles;
