-- squawk-ignore-file ban-drop-table
-- Rolling back removes the tables this migration created, and only those.

DROP TABLE auth_tokens;

DROP TABLE user_sessions;
