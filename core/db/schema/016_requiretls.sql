-- 016_requiretls: what a queued message asks of its transport's TLS
-- (RFC 8689; gannet/queue.h, gn_queue_delivery_require_tls()).
--
-- require_tls: NULL the default policy (opportunistic STARTTLS, and DANE
-- and MTA-STS where the receiving domain asks for them); true REQUIRETLS
-- (MAIL FROM ... REQUIRETLS at submission): only over TLS whose
-- certificate verifies, to a server that offers REQUIRETLS, else the
-- recipient fails for good; false relaxed ("TLS-Required: No" in the
-- message, RFC 8689): DANE and MTA-STS failures are ignored.  Kept on
-- the retired recipients too, for the history.

ALTER TABLE gn_queue_messages ADD COLUMN require_tls boolean;
ALTER TABLE gn_queue_retired ADD COLUMN require_tls boolean;
