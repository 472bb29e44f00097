-- squawk-ignore-file ban-drop-table
-- Rolling back removes the table this migration created (its trigger goes with it).

DROP TABLE mfa_configurations;
