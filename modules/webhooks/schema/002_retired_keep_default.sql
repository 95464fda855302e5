-- 002_retired_keep_default: how long an account keeps its retired
-- webhooks is its own setting or, when it has none, the module's
-- (webhooks { retired_keep }, default 0: not kept; `gannet config account
-- webhook keep ACCOUNT DURATION|default`).
--
-- keep_retired_s: NULL the setting, else the account's own seconds (0:
-- not kept).  The 0s already stored become NULL: 0 was the column's
-- default, written with every account's first webhook setting, so a row
-- cannot tell "never set" from "set to 0"; with the setting's default of
-- 0 nothing changes until an admin sets webhooks.retired_keep.  Other
-- values were set on purpose and stay.  (As the core's 018 does for the
-- queue's retired records.)

ALTER TABLE gn_webhook_accounts ALTER COLUMN keep_retired_s DROP NOT NULL,
	ALTER COLUMN keep_retired_s DROP DEFAULT;
UPDATE gn_webhook_accounts SET keep_retired_s = NULL WHERE keep_retired_s = 0;
