/*
 * modules/imap/cmd-idle.c: IDLE (RFC 2177, RFC 9051 6.3.13).
 *
 * Changes reach an idling session by PostgreSQL's NOTIFY, whichever
 * process or node made them: every change to a mailbox sends
 * NOTIFY gn_mailbox '<account> <mailbox> <modseq>' when it commits
 * (gannet/store.h), each process that serves IMAP LISTENs on that channel
 * once (imap_idle_start(), from the module's start), and the notification
 * wakes the sessions of this process that idle in that mailbox: they
 * report what changed (imap_refresh()).  No polling.  A session idling
 * without a selected mailbox hears nothing until it selects one.
 *
 * While idling the client may only send DONE; anything else ends the IDLE
 * with BAD.
 */
#include "imap.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The sessions of this process that idle, in a list through their
 * idle_next. */
static struct imap_session *idlers;

static void idle_remove(struct imap_session *s)
{
	for (struct imap_session **p = &idlers; *p != NULL; p = &(*p)->idle_next) {
		if (*p == s) {
			*p = s->idle_next;
			break;
		}
	}
	s->idle_next = NULL;
}

static void on_notify(const char *channel, const char *payload, void *data)
{
	(void)channel;
	(void)data;
	int64_t account, mailbox;
	if (sscanf(payload, "%" SCNd64 " %" SCNd64, &account, &mailbox) != 2)
		return;
	/* The sessions to wake, each held by a reference: writing may end a
	 * connection (its output full), and so change the list. */
	size_t n = 0;
	for (struct imap_session *s = idlers; s != NULL; s = s->idle_next)
		n++;
	struct gn_conn **conns = gn_calloc(n + 1, sizeof(*conns));
	size_t k = 0;
	for (struct imap_session *s = idlers; s != NULL; s = s->idle_next) {
		if (s->account_id == account && s->sel != NULL && s->sel->id == mailbox) {
			gn_conn_ref(s->conn);
			conns[k++] = s->conn;
		}
	}
	for (size_t i = 0; i < k; i++) {
		struct imap_session *s = gn_conn_is_closed(conns[i]) ? NULL : gn_conn_data(conns[i]);
		if (s != NULL && s->idle_tag != NULL)
			(void)imap_refresh(s);
		gn_conn_unref(&conns[i]);
	}
	gn_free(conns);
}

int imap_idle_start(const char **error_r)
{
	const char *kind = gn_module_process_kind();
	if (strcmp(kind, "worker") != 0 && strcmp(kind, "single") != 0)
		return 0;
	return gn_db_listen(GN_STORE_NOTIFY_CHANNEL, on_notify, NULL, error_r);
}

void imap_cmd_idle(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "IDLE takes no arguments");
		return;
	}
	s->idle_tag = gn_strdup(cmd->tag);
	s->idle_next = idlers;
	idlers = s;
	imap_continue(s, "idling");
	/* What changed before the client started to idle. */
	(void)imap_refresh(s);
}

void imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
	char *tag = s->idle_tag;
	s->idle_tag = NULL;
	idle_remove(s);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_tagged(s, tag, "OK", NULL, "IDLE terminated");
	else
		imap_tagged(s, tag, "BAD", NULL, "Expected DONE");
	gn_free(tag);
}

void imap_idle_cancel(struct imap_session *s)
{
	if (s->idle_tag == NULL)
		return;
	idle_remove(s);
	gn_free(s->idle_tag);
	s->idle_tag = NULL;
}
