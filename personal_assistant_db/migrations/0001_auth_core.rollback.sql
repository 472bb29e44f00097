-- squawk-ignore-file ban-drop-table, ban-drop-function
-- Rolling back the first migration removes the users table and the trigger function by design:
-- this migration created them. The table's index and trigger go with it.

DROP TABLE users;

DROP FUNCTION set_updated_at();
