-- 018_retired_keep_default: how long an account keeps its retired queue
-- records is its own setting or, when it has none, the deployment's
-- (queue { retired_keep }, default 0: not kept; `gannet queue retired
-- keep ACCOUNT DURATION|default`).
--
-- queue_retired_keep_s: NULL the setting, else the account's own seconds
-- (0: not kept, whatever the setting says).  The 0s already stored become
-- NULL: 0 was the column's default, so a row cannot tell "never set" from
-- "set to 0", and nearly all are the former; with the setting's default
-- of 0 this changes nothing until an admin sets queue.retired_keep, and
-- then it applies to these accounts as one expects.  Other values were
-- set on purpose and stay.

ALTER TABLE gn_accounts ALTER COLUMN queue_retired_keep_s DROP NOT NULL,
	ALTER COLUMN queue_retired_keep_s DROP DEFAULT;
UPDATE gn_accounts SET queue_retired_keep_s = NULL WHERE queue_retired_keep_s = 0;
