/*
 * modules/smtp/forged.h: Authentication-Results fields that claim to be
 * ours, renamed on their way to the store (RFC 8601 5; forged.c).
 */
#ifndef SMTP_FORGED_H
#define SMTP_FORGED_H

#include <stdbool.h>
#include <stddef.h>

#include <gannet/gannet.h>

/* The header section held at most: past it, what is held goes to the
 * store as it came (mailauth's Authentication-Results, in the prefix
 * above, stays the first with our authserv-id). */
#define FORGED_MAX_HEADER (256 * 1024)
/* What a renamed field's name gets in front. */
#define FORGED_PREFIX "X-Forged-"

/* Per transaction; all zero to start. */
struct forged_filter {
	struct gn_buf *held;	/* the header section until its end */
	bool done;		/* the header went on: the rest passes through */
	unsigned renamed;	/* fields renamed */
	bool cut;		/* the header was past FORGED_MAX_HEADER */
};

/* Where the bytes go (the smtp module: gn_delivery_write()); returns 0,
 * or -1, passed on. */
typedef int forged_write_fn(void *ctx, const char *buf, size_t len);

/* Passes a chunk of the message (dot-unstuffed CRLF lines) to write,
 * holding the header section until it ends, then writing it
 * with every Authentication-Results field whose authserv-id is
 * authserv_id (any case) renamed FORGED_PREFIX "Authentication-Results".
 * Returns what write returns (0 while holding; -1 when any call did). */
int smtp_forged_write(struct forged_filter *f, forged_write_fn *write, void *ctx,
		      const char *authserv_id, const char *buf, size_t len);
/* The end of data: what is still held (a message without a body) goes
 * to write, renamed as above. */
int smtp_forged_flush(struct forged_filter *f, forged_write_fn *write, void *ctx,
		      const char *authserv_id);
/* Frees what it held; ready for the next transaction. */
void smtp_forged_reset(struct forged_filter *f);

#endif
