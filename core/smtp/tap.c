/*
 * core/smtp/tap.c: what other modules than a server's policy may do with
 * a message the engine receives (ABI 1.1, gannet/smtp.h "the end of
 * data"): taps that see its chunks as they arrive, per-transaction slots
 * for their state, header lines added for the stored prefix, and the hook
 * point "smtp.data_end" that a receiving policy runs before it stores the
 * message.
 *
 * The engine only carries these: it calls the taps from feed() (data.c)
 * and when a transaction ends (smtp_tx_end()); the receiving policy (the
 * smtp module) runs the chain and writes the added lines into each copy's
 * prefix (gn_delivery_set_prefix()).
 */
#include "smtp/internal.h"
#include "runtime/internal.h"

#include <string.h>

#include <gannet/store.h>

/* More than enough for the first-party modules and a few plugins. */
#define MAX_TAPS 16
/* The chain may wait on DNS (mailauth: SPF's 20 s, DKIM's keys); the
 * modules on it keep their own, shorter, deadlines.  Past this the chain
 * continues without the late hook: the message is stored all the same. */
#define DATA_END_TIMEOUT_MS 60000UL

struct tap {
	struct gn_smtp_tap t;
	char *server;		/* NULL: every server */
};

static struct tap taps[MAX_TAPS];
static size_t n_taps;

int gn_smtp_tap_register(struct gn_module_ctx *ctx, const struct gn_smtp_tap *tap,
			 const char **error_r)
{
	(void)ctx;
	if (tap == NULL || tap->size < offsetof(struct gn_smtp_tap, data) + sizeof(void *) ||
	    tap->chunk == NULL) {
		*error_r = "gn_smtp_tap_register: invalid tap (size, chunk)";
		return -1;
	}
	if (n_taps == MAX_TAPS) {
		*error_r = "gn_smtp_tap_register: too many taps";
		return -1;
	}
	struct tap *t = &taps[n_taps++];
	memset(t, 0, sizeof(*t));
	memcpy(&t->t, tap, tap->size < sizeof(t->t) ? tap->size : sizeof(t->t));
	t->t.size = sizeof(t->t);
	t->server = tap->server != NULL ? gn_strdup(tap->server) : NULL;
	return 0;
}

static bool tap_wants(const struct tap *t, const struct gn_smtp_session *s)
{
	return t->server == NULL || strcmp(t->server, s->srv->proto_name) == 0;
}

void smtp_taps_chunk(struct gn_smtp_session *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n_taps; i++)
		if (tap_wants(&taps[i], s))
			taps[i].t.chunk(s, p, n, taps[i].t.data);
}

void smtp_taps_tx_end(struct gn_smtp_session *s)
{
	if (s->tx == NULL)
		return;
	for (size_t i = 0; i < n_taps; i++)
		if (tap_wants(&taps[i], s) && taps[i].t.tx_end != NULL)
			taps[i].t.tx_end(s, taps[i].t.data);
}

/* ---- per-transaction slots ---- */

void gn_smtp_tx_slot_set(struct gn_smtp_tx *tx, unsigned slot, void *value)
{
	if (slot >= tx->n_slots) {
		unsigned n = slot + 4;
		tx->slots = gn_realloc(tx->slots, n * sizeof(*tx->slots));
		memset(tx->slots + tx->n_slots, 0, (n - tx->n_slots) * sizeof(*tx->slots));
		tx->n_slots = n;
	}
	tx->slots[slot] = value;
}

void *gn_smtp_tx_slot_get(const struct gn_smtp_tx *tx, unsigned slot)
{
	return slot < tx->n_slots ? tx->slots[slot] : NULL;
}

/* ---- header lines for the prefix ---- */

/* RFC 5322 2.2: a field is a name of printable ASCII but ":" and space,
 * a colon, a body; folded lines start with a space or tab.  Every line
 * ends in CRLF, no bare CR or LF, no NUL. */
static const char *header_check(const char *p, size_t len)
{
	size_t i = 0;
	bool first = true;
	if (len == 0)
		return "empty";
	while (i < len) {
		size_t start = i;
		while (i < len && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
			i++;
		if (i + 1 >= len || p[i] != '\r' || p[i + 1] != '\n')
			return "a line does not end in CRLF";
		if (i == start)
			return "an empty line";
		if (p[start] == ' ' || p[start] == '\t') {
			if (first)
				return "starts with a continuation line";
		} else {
			size_t k = start;
			while (k < i && p[k] > ' ' && p[k] < 127 && p[k] != ':')
				k++;
			if (k == start || k == i || p[k] != ':')
				return "a line is not a header field";
		}
		first = false;
		i += 2;
	}
	return NULL;
}

int gn_smtp_tx_add_header(struct gn_smtp_tx *tx, const char *lines, size_t len,
			  const char **error_r)
{
	const char *why = header_check(lines, len);
	if (why != NULL) {
		*error_r = why;
		return -1;
	}
	if (tx->added == NULL)
		tx->added = gn_buf_new(GN_SMTP_MAX_ADDED_HEADER);
	if (gn_buf_len(tx->added) + len > GN_SMTP_MAX_ADDED_HEADER) {
		*error_r = "added header lines past GN_SMTP_MAX_ADDED_HEADER";
		return -1;
	}
	if (gn_buf_append(tx->added, lines, len) < 0) {
		*error_r = "added header lines past GN_SMTP_MAX_ADDED_HEADER";
		return -1;
	}
	return 0;
}

const char *gn_smtp_tx_added_header(const struct gn_smtp_tx *tx, size_t *len_r)
{
	if (tx->added == NULL || gn_buf_len(tx->added) == 0) {
		*len_r = 0;
		return "";
	}
	*len_r = gn_buf_len(tx->added);
	return gn_buf_data(tx->added);
}

int gn_smtp_tx_set_mailbox(struct gn_smtp_tx *tx, const char *mailbox, const char **error_r)
{
	size_t len = mailbox != NULL ? strlen(mailbox) : 0;
	if (len == 0 || len > GN_SMTP_MAX_MAILBOX_NAME) {
		*error_r = "invalid mailbox name length";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)mailbox[i] < 0x20 || mailbox[i] == 0x7f) {
			*error_r = "control character in mailbox name";
			return -1;
		}
	tx->mailbox = gn_pool_strdup(tx->pool, mailbox);
	return 0;
}

const char *gn_smtp_tx_mailbox(const struct gn_smtp_tx *tx)
{
	return tx->mailbox;
}

int gn_smtp_tx_set_auth(struct gn_smtp_tx *tx, const struct gn_store_message_auth *auth,
			const char **error_r)
{
	const struct gn_store_message_auth *a = gn_store_message_auth_copy(tx->pool, auth);
	if (a == NULL) {
		*error_r = "gn_smtp_tx_set_auth: no results, or their size is too small";
		return -1;
	}
	tx->auth = a;
	return 0;
}

const struct gn_store_message_auth *gn_smtp_tx_auth(const struct gn_smtp_tx *tx)
{
	return tx->auth;
}

/* ---- the hook point ---- */

int smtp_register(void)
{
	const char *error;
	if (gn_hook_point_define(modules_core_ctx(), GN_SMTP_DATA_END, DATA_END_TIMEOUT_MS,
				 GN_HOOK_CONTINUE, &error) < 0) {
		conf_error("%s", error);
		return -1;
	}
	return 0;
}
