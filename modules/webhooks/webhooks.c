/*
 * modules/webhooks/webhooks.c: the module.  It provides the service
 * "webhooks.v1" (gannet/webhook.h) that the core's queue reports each
 * outcome of a queued recipient to, and turns each into mox's outgoing
 * payload (mox.md 1.6) for the account's outgoing webhook; it hooks
 * "deliver.after" to queue the incoming payload (mox.md 1.7, incoming.c
 * builds it) for each SMTP delivery into an account; the runner's job
 * (send.c) delivers them.  The README says what matches mox and what
 * differs.
 */
#include "webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

struct webhooks_settings webhooks_settings = { 10, 60000, 0 };

const char *const webhooks_events[] = {
	"delivered", "suppressed", "delayed", "failed", "relayed", "expanded", "canceled", "unrecognized", NULL,
};

bool webhooks_event_valid(const char *event)
{
	for (size_t i = 0; webhooks_events[i] != NULL; i++)
		if (strcmp(event, webhooks_events[i]) == 0)
			return true;
	return false;
}

const char *webhooks_time(struct gn_pool *pool, double t)
{
	time_t s = (time_t)t;	/* t > 0 */
	long us = (long)((t - (double)s) * 1e6);
	if (us < 0)
		us = 0;
	if (us > 999999)
		us = 999999;
	struct tm tm;
	gmtime_r(&s, &tm);
	char buf[64];
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	return gn_pool_printf(pool, "%s.%06ldZ", buf, us);
}

static bool subscribed(const struct webhooks_account *a, const char *event)
{
	if (a->n_events == 0)
		return true;	/* mox.md 1.5: none listed, all */
	for (size_t i = 0; i < a->n_events; i++)
		if (strcmp(a->events[i], event) == 0)
			return true;
	return false;
}

/* mox.md 1.6: the payload of an outgoing event, fields in mox's order. */
static const char *outgoing_payload(struct gn_pool *pool, const struct gn_webhook_event *ev, double queued)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "Version", json_object_new_int(0));
	json_object_object_add(o, "Event", json_object_new_string(ev->event));
	json_object_object_add(o, "DSN", json_object_new_boolean(ev->dsn));
	json_object_object_add(o, "Suppressing", json_object_new_boolean(ev->suppressing));
	json_object_object_add(o, "QueueMsgID", json_object_new_int64(ev->queue_msg_id));
	json_object_object_add(o, "FromID", json_object_new_string(ev->from_id != NULL ? ev->from_id : ""));
	json_object_object_add(o, "MessageID", json_object_new_string(ev->message_id != NULL ? ev->message_id : ""));
	json_object_object_add(o, "Subject", json_object_new_string(ev->subject != NULL ? ev->subject : ""));
	json_object_object_add(o, "WebhookQueued", json_object_new_string(webhooks_time(pool, queued)));
	json_object_object_add(o, "SMTPCode", json_object_new_int(ev->code));
	/* mox formats the enhanced code from the code's class and the
	 * reported subject.detail: "5.1.1". */
	const char *enh = "";
	if (ev->enhanced != NULL && ev->enhanced[0] != '\0') {
		const char *sd = strchr(ev->enhanced, '.');
		enh = sd != NULL && ev->code >= 200 ? gn_pool_printf(pool, "%d%s", ev->code / 100, sd) : ev->enhanced;
	}
	json_object_object_add(o, "SMTPEnhancedCode", json_object_new_string(enh));
	json_object_object_add(o, "Error", json_object_new_string(ev->error != NULL ? ev->error : ""));
	/* Extra: a JSON object of strings, never null. */
	struct json_object *extra = NULL;
	if (ev->extra_json != NULL)
		extra = json_tokener_parse(ev->extra_json);
	if (extra == NULL || !json_object_is_type(extra, json_type_object)) {
		json_object_put(extra);
		extra = json_object_new_object();
	}
	json_object_object_add(o, "Extra", extra);
	const char *s = gn_pool_strdup(pool, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
									    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static int outgoing(const struct gn_webhook_event *ev, const char **error_r)
{
	if (ev == NULL || ev->size < sizeof(struct gn_webhook_event) || ev->event == NULL) {
		*error_r = "malformed struct gn_webhook_event";
		return -1;
	}
	struct gn_pool *pool = gn_pool_new();
	struct webhooks_account a;
	int r = webhooks_account_get(pool, ev->account_id, &a, error_r);
	if (r > 0 && (a.outgoing_url[0] == '\0' || !subscribed(&a, ev->event)))
		r = 0;
	int64_t id = 0;
	if (r > 0) {
		const char *payload = outgoing_payload(pool, ev, gn_queue_now());
		r = webhooks_queue(pool, &a, ev->queue_msg_id, ev->from_id, ev->message_id, ev->subject, false,
				   ev->event, payload, &id, error_r);
		if (r == 0) {
			r = 1;
			gn_log(GN_LOG_INFO, WEBHOOKS_AREA, "event=webhook_queued id=%" PRId64 " account=%" PRId64
			       " queue_msg=%" PRId64 " webhook=%s", id, ev->account_id, ev->queue_msg_id, ev->event);
		}
	}
	if (r < 0) {
		/* The message may live in pool: copied out before it goes. */
		static char err[256];
		snprintf(err, sizeof(err), "%s", *error_r);
		*error_r = err;
	}
	gn_pool_free(&pool);
	return r;
}

static const struct gn_webhook_ops ops = {
	.size = sizeof(struct gn_webhook_ops),
	.outgoing = outgoing,
};

static void send_job(void *data)
{
	(void)data;
	webhooks_send_chain(true);
	webhooks_send_pass();
}

static void cleanup_job(void *data)
{
	(void)data;
	const char *err = NULL;
	int n = webhooks_cleanup(&err);
	if (n < 0)
		gn_log(GN_LOG_WARN, WEBHOOKS_AREA, "event=webhook_cleanup_failed error=%s", gn_log_quote(0, err));
	else if (n > 0)
		gn_log(GN_LOG_INFO, WEBHOOKS_AREA, "event=webhook_cleanup removed=%d", n);
}

extern const struct gn_migration webhooks_migrations[];
extern const size_t webhooks_migrations_count;

static int webhooks_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *c = gn_module_config(ctx);
	long long v = 0;
	if (c != NULL) {
		if (gn_config_int(c, "concurrency", 10, 1, 1000, &v) >= 0)
			webhooks_settings.concurrency = (unsigned)v;
		if (gn_config_duration_ms(c, "timeout", 60000, &v) >= 0 && v > 0)
			webhooks_settings.timeout_ms = (unsigned long)v;
		/* Whole seconds as the column, at most what the CLI's keep
		 * takes (10 years). */
		if (gn_config_duration_ms(c, "retired_keep", 0, &v) > 0) {
			if (v % 1000 != 0 || v / 1000 > WEBHOOKS_KEEP_MAX_S)
				gn_config_error(c, "retired_keep", "%s.retired_keep: must be whole seconds, at most 10 years",
						gn_config_path(c));
			else
				webhooks_settings.retired_keep_s = v / 1000;
		}
	}
	if (gn_migrate_register(ctx, webhooks_migrations, webhooks_migrations_count, error_r) < 0 ||
	    gn_service_provide(ctx, GN_WEBHOOK_SERVICE, &ops, error_r) < 0 ||
	    webhooks_incoming_register(ctx, error_r) < 0 ||
	    gn_runner_job_register(ctx, "webhooks.send", 1000, send_job, NULL, error_r) < 0 ||
	    gn_runner_job_register(ctx, "webhooks.cleanup", 3600 * 1000UL, cleanup_job, NULL, error_r) < 0)
		return -1;
	return webhooks_cli_register(ctx, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "webhooks",
	.version = "0.1.0",
	.register_fn = webhooks_register,
};
