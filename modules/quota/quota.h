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
	int64_t default_limit;	/* bytes; < 0 unlimited */
	int warn_percent;	/* 0: no warning */
};
extern struct quota_settings quota_settings;

/* "123", "10K", "5M", "2G" (powers of 1024), a negative number or
 * "unlimited" (-1).
 * 0 with *bytes_r, or -1 with *error_r (static). */
int quota_parse_size(const char *s, int64_t *bytes_r, const char **error_r);
/* "unlimited", or the bytes with the largest exact suffix ("10M"), from
 * pool. */
const char *quota_format_size(struct gn_pool *pool, int64_t bytes);
/* The account's own limit: 1 with *limit_r (< 0 unlimited), 0 none (the
 * default applies), -1 error. */
int quota_account_limit(int64_t account_id, int64_t *limit_r, const char **error_r);
/* The limit that applies: 0 with *limit_r (< 0 unlimited), or -1. */
int quota_limit(int64_t account_id, int64_t *limit_r, const char **error_r);
/* Bytes the account stores: settled + pending (gannet/store.h), the
 * store's exact counters.  0 or -1. */
int quota_usage(int64_t account_id, uint64_t *used_r, const char **error_r);
/* Whether bytes more fit: 1 yes, 0 no, with *limit_r; -1 error. */
int quota_fits(int64_t account_id, uint64_t bytes, int64_t *limit_r, const char **error_r);

int quota_deliver_register(struct gn_module_ctx *ctx, const char **error_r);
int quota_imap_register(struct gn_module_ctx *ctx, const char **error_r);
int quota_cli_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
