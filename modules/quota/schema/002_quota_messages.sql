-- 002_quota_messages: an account's own limit on the number of its
-- messages (RFC 9208 MESSAGE; modules/quota).  NULL: the module's setting
-- default_message_limit; negative: unlimited.
ALTER TABLE gn_quota_accounts ADD COLUMN limit_messages bigint;
