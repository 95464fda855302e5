-- 015_queue_tls: the transport security of each delivery attempt (issue
-- 10 item 2): the TLS version and cipher of the connection that gave the
-- result ('' without TLS), and which policy applied, as the transport
-- reported it (gn_queue_delivery_report_tls()): 'none' (plain text,
-- also a fallback from a failed handshake), 'opportunistic', 'dane',
-- 'dane-unauthenticated' (TLSA records, none usable: TLS required but
-- not verified, RFC 7672 3.1.3); later 'mta-sts', 'requiretls'.  ''
-- when the transport reported none (no connection was made).

ALTER TABLE gn_queue_attempts
	ADD COLUMN tls_version text NOT NULL DEFAULT '',
	ADD COLUMN tls_cipher text NOT NULL DEFAULT '',
	ADD COLUMN tls_policy text NOT NULL DEFAULT '';

ALTER TABLE gn_queue_retired_attempts
	ADD COLUMN tls_version text NOT NULL DEFAULT '',
	ADD COLUMN tls_cipher text NOT NULL DEFAULT '',
	ADD COLUMN tls_policy text NOT NULL DEFAULT '';
