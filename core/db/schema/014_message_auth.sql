-- 014_message_auth: what the receiving server's checks found about a
-- message's senders, kept with each copy (issue 10 item 1; mox.md 1.3/1.4
-- MessageMeta and IncomingMeta: MailFromValidated, MsgFromValidated,
-- DKIMVerifiedDomains, RemoteIP).  Written by a delivery that carries
-- results (gannet/store.h struct gn_store_message_auth, set by the
-- mailauth module through gn_smtp_tx_set_auth()), carried along by COPY
-- and MOVE.  All NULL for a message no check looked at: auth_checked
-- tells "not checked" from "checked, nothing validated".
ALTER TABLE gn_messages
	ADD COLUMN auth_checked boolean NOT NULL DEFAULT false,
	ADD COLUMN mail_from_validated boolean,
	ADD COLUMN mail_from_validation text,
	ADD COLUMN msg_from_domain text,
	ADD COLUMN msg_from_validated boolean,
	ADD COLUMN msg_from_validation text,
	ADD COLUMN dkim_domains text[],
	ADD COLUMN remote_ip text;
