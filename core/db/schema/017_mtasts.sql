-- 017_mtasts: MTA-STS policies of the domains the queue delivers to
-- (RFC 8461 5; core/queue/mtasts.c), shared by every node.
--
-- domain: the policy domain in A-label form, lower case.  policy_id: the
-- id of the _mta-sts TXT record the policy was fetched for (RFC 8461
-- 3.1); a record with another id makes the next delivery fetch again.
-- mode: enforce, testing or none.  mx: the policy's mx patterns, one a
-- line ("mx.example.com", "*.example.net").  max_age: seconds, at most
-- 31557600 (RFC 8461 3.2).  expires_at: fetched_at + max_age; a policy is
-- used until then, refreshed before by the runner's job
-- (queue-mtasts-refresh).  checked_at and last_error: the last refresh
-- attempt and why it failed (NULL: it did not).
CREATE TABLE gn_mtasts_policies (
	domain text PRIMARY KEY,
	policy_id text NOT NULL,
	mode text NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
	mx text NOT NULL,
	max_age integer NOT NULL CHECK (max_age >= 0 AND max_age <= 31557600),
	fetched_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	checked_at timestamptz NOT NULL,
	last_error text
);
CREATE INDEX gn_mtasts_policies_expires ON gn_mtasts_policies (expires_at);
