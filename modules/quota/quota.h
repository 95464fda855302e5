/*
 * modules/quota/quota.h: the quota module's parts (README beside).
 *
 *   quota.c    the descriptor, settings, limits and usage
 *   deliver.c  the delivery hooks: RCPT check, the exact check inside the
 *              store's transaction, the warning message
 *   imap.c     QUOTA (RFC 9208) through imap.v1, and OVERQUOTA for
 *              APPEND and COPY
 *   cli.c      `gannet config account quota`
 */
#ifndef QUOTA_QUOTA_H
#define QUOTA_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include <gannet/gannet.h>

#define QUOTA_AREA "quota"

struct quota_settings {
	int64_t default_limit;		/* bytes; < 0 unlimited */
	int64_t default_message_limit;	/* messages; < 0 unlimited */
	int warn_percent;		/* 0: no warning */
};
extern struct quota_settings quota_settings;

/* The limits that apply to an account (< 0: unlimited), and whether each
 * is the account's own (else the default setting). */
struct quota_limits {
	int64_t bytes, messages;
	bool own_bytes, own_messages;
};

/* What an account stores: the store's exact counters, settled + pending
 * (gannet/store.h). */
struct quota_usage {
	uint64_t bytes, messages;
};

/* Which resource a check found full. */
enum quota_resource {
	QUOTA_STORAGE = 0,
	QUOTA_MESSAGES,
};

/* "123", "10K", "5M", "2G" (powers of 1024), a negative number or
 * "unlimited" (-1).
 * 0 with *bytes_r, or -1 with *error_r (static). */
int quota_parse_size(const char *s, int64_t *bytes_r, const char **error_r);
/* A number of messages, a negative number or "unlimited" (-1): 0 with
 * *count_r, or -1 with *error_r (static). */
int quota_parse_count(const char *s, int64_t *count_r, const char **error_r);
/* "unlimited", or the bytes with the largest exact suffix ("10M"), from
 * pool. */
const char *quota_format_size(struct gn_pool *pool, int64_t bytes);
/* The limits that apply: 0 with *limits_r, or -1. */
int quota_limits(int64_t account_id, struct quota_limits *limits_r, const char **error_r);
/* What the account stores; the bytes only when bytes, the messages only
 * when messages (the other stays 0).  0 or -1. */
int quota_usage(int64_t account_id, bool bytes, bool messages, struct quota_usage *usage_r,
		const char **error_r);
/* Whether bytes and messages more fit under both limits: 1 yes, 0 no
 * (*over_r: the resource that does not fit), with *limits_r; -1 error. */
int quota_fits(int64_t account_id, uint64_t bytes, uint64_t messages, struct quota_limits *limits_r,
	       enum quota_resource *over_r, const char **error_r);

int quota_deliver_register(struct gn_module_ctx *ctx, const char **error_r);
int quota_imap_register(struct gn_module_ctx *ctx, const char **error_r);
int quota_cli_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
