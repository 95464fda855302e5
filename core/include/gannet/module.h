/*
 * gannet/module.h: the module descriptor and the module's view of the core.
 *
 * A module is a shared object that exports exactly one symbol,
 * gannet_module_v1: a read-only struct gn_module.  The loader dlopen()s the
 * file with RTLD_NOW | RTLD_LOCAL, checks magic, size and ABI version before
 * it calls anything, sorts the modules by their requirements and then runs
 * two phases:
 *
 *   register  in the master, before any I/O: read the module's config
 *             section, declare hooks, services, protocol handlers, runner
 *             jobs, migrations and CLI subcommands.  No sockets, no database.
 *   start     in every process that runs the module (workers, the runner,
 *             the single process of localserve and serve --foreground).
 *   stop      in reverse order at exit; also for modules already started
 *             when a later module's start fails.
 *
 * ABI versions are independent of the product version.  A module built for
 * major M minor m loads when M == GN_ABI_MAJOR and m <= GN_ABI_MINOR.
 * Structs that modules fill (this descriptor and the operation tables in the
 * other headers) start with their own size and only ever grow at the end;
 * the few without a size are frozen on purpose, each saying why.  Objects
 * of the core are opaque handles read through accessors.
 *
 * ABI changelog (one line per bump):
 *   1.0  first stable ABI.
 *   1.1  gn_store_query_*(): searching a mailbox in one SQL statement;
 *        gn_store_message_save_date() (RFC 8514); gn_conn_compress_start(),
 *        gn_conn_is_compressed(): DEFLATE on a connection (RFC 4978);
 *        gn_store_message_open_prefetch(): a message opened with its
 *        first bytes in one query; gn_store_mailbox_changes(): what
 *        changed in a mailbox since a modseq, in one query;
 *        gn_store_message_open_batch(): several opened in one query;
 *        gn_store_account_lock(): the account row first, in a transaction;
 *        gannet/dkim.h: DKIM canonical forms, tag lists, keys and signing
 *        (gn_dkim_*); gn_store_dkim_sign(): signed with the domain's keys;
 *        gannet/dns.h: asynchronous DNS lookups (gn_dns_lookup());
 *        gannet/queue.h: the outbound queue (gn_queue_*), its transport,
 *        gn_queue_bounce_add(): a receiver's DSN for late failures;
 *        gn_conn_connect(), gn_conn_starttls_client() and friends: outbound
 *        connections and client TLS; gn_smtp_client_*(): the SMTP client;
 *        gn_smtp_settings.client_cert: an SMTP server that asks for TLS
 *        client certificates (submission); gn_conn_tls_identity_*(),
 *        gn_conn_starttls_client_identity(): client certificates;
 *        gn_smtp_client_settings auth_*, tls_identity: the SMTP client's
 *        AUTH (RFC 4954) and client certificate;
 *        FromIDs: gn_store_fromid_login_*(),
 *        gn_queue_fromid_find(), gn_queue_delivery_from_id() and
 *        gn_queue_delivery_recipient_sender(), gn_queue_message.from_ids;
 *        gn_delivery_skip(): an alias's member left out on purpose;
 *        gn_store_send_as_check() and the point "account.send_as": who
 *        may send as an address that is not the account's (aliases).
 *        "deliver.store": a delivery's check inside its transaction
 *        (quota), gn_delivery_current_store_size().
 *        gn_queue_message.header: the queue reads Message-ID and
 *        Subject from the caller's header, not the blob;
 *        gn_dkim_verifier_*(), gn_dkim_verify_start(): DKIM verification
 *        (RFC 6376 6) with per-signature results (RFC 8601 names);
 *        the signatures and their key names are known, and the keys
 *        may be looked up, once the header section was fed.
 *        gn_loop_run(), gn_loop_break(): a CLI command waits on the loop.
 *        gn_store_account_message_count(): an account's messages, exact
 *        (quota's message limit); gn_delivery_current_store_count(): the
 *        messages a delivery stores for an account ("deliver.store").
 *        The point "smtp.data_end", gn_smtp_tap_register(),
 *        gn_smtp_tx_slot_*(), gn_smtp_tx_add_header(),
 *        gn_delivery_set_prefix(): checks of a received message at its
 *        end of data that add header lines to its stored prefix;
 *        gn_dkim_max_signatures(): the core's dkim.max_signatures.
 *        gn_conn_peer_chain_cert(), gn_smtp_client_handler.tls_check,
 *        gn_smtp_client_tls_cipher(), gn_queue_delivery_report_tls():
 *        DANE (RFC 7672) in the queue's SMTP transport and the TLS of
 *        each delivery attempt.
 *        gn_smtp_tx_set_mailbox(), gn_smtp_tx_mailbox(): an end-of-data
 *        hook picks the mailbox a received message starts in (DMARC
 *        quarantine: Junk).
 *        struct gn_store_message_auth, gn_smtp_tx_set_auth(),
 *        gn_delivery_set_auth(), gn_store_message_new.auth,
 *        gn_store_message_auth_get(), gn_store_message_auth_copy(): the
 *        checks' results (SPF, DMARC, DKIM domains) kept with a message.
 *        gannet/http.h: HTTP served by the core (listeners with protocol
 *        "http"): gn_http_mount(), the request's accessors and
 *        gn_http_respond*() (asynchronous answers from the loop).
 *        gannet/suppression.h: the service "suppression.v1" (a table of
 *        the suppression module) that the queue consults when loaded.
 *        REQUIRETLS (RFC 8689): gn_queue_message.require_tls,
 *        gn_queue_delivery_require_tls(), gn_queue_require_tls_name(),
 *        GN_SMTP_SEND_REQUIRETLS for gn_smtp_client_send().
 *        gannet/httpclient.h: an HTTPS client on the loop
 *        (gn_httpclient_*; MTA-STS policies, webhooks).
 *        gn_store_message_locate(): a message's mailbox and UID by its id.
 *        gannet/compose.h: a message composed from its parts
 *        (gn_compose(), gn_compose_sniff()) for the webapi's Send.
 *        gannet/submit.h: the service "submission.v1" (the submission
 *        module) that queues a composed message as submission does.
 *        gannet/webhook.h: the service "webhooks.v1" (a table of the
 *        webhooks module) that the queue reports its outcomes to;
 *        gn_queue_tls_trust_init(): tls.client_ca_file for a module's
 *        outbound TLS.  gn_mime_part_body_decoded(), gn_mime_to_utf8(),
 *        gn_mime_first_text(), gn_mime_text(), gn_mime_structure_json():
 *        part bodies, texts and mox's Structure (moved from webapi).
 *        gn_queue_message.recipient_ids_r, gn_submit_result.recipient_ids:
 *        the queued recipients' ids (the webapi's QueueMsgID).
 *        gn_delivery_set_remote_ip(), gn_delivery_remote_ip(): the
 *        SMTP client's address of a delivery, for its hooks.
 *        gn_delivery_add_account_rcpt(): an account with the address
 *        the message was sent to (a catch-all's), for its hooks.
 *        gn_queue_message.body, body_len: the queue stores a small body
 *        in the statement that queues the message.
 */
#ifndef GANNET_MODULE_H
#define GANNET_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GN_ABI_MAJOR 1
#define GN_ABI_MINOR 1

/* "GNMD" in ASCII. */
#define GN_MODULE_MAGIC 0x474e4d44u

/* Marks the one symbol a module exports; modules build with
 * -fvisibility=hidden. */
#define GN_EXPORT __attribute__((visibility("default")))

#if defined(__GNUC__)
#define GN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define GN_PRINTF(f, a)
#endif

/* Flags of a requirement. */
#define GN_REQUIRE_OPTIONAL 0x1u

/* Frozen on purpose: modules give the core a NULL-terminated array of
 * these without a size, so a member added would change the stride and
 * misread every older module's list.  A requirement is a name and flags;
 * new kinds of requirement fit in the flags. */
struct gn_module_require {
	const char *name;	/* module name; NULL ends the list */
	unsigned flags;		/* GN_REQUIRE_* */
};

/* The module's handle on the core, valid from register until the process
 * exits.  Opaque. */
struct gn_module_ctx;

struct gn_module {
	uint32_t magic;		/* GN_MODULE_MAGIC */
	uint32_t size;		/* sizeof(struct gn_module) when built */
	uint16_t abi_major;	/* GN_ABI_MAJOR when built */
	uint16_t abi_minor;	/* GN_ABI_MINOR when built */
	const char *name;	/* [a-z0-9_]+, the name used in the config file */
	const char *version;	/* the module's own version, for display */
	const struct gn_module_require *requires; /* may be NULL */

	/* Each returns 0 on success or -1 with *error_r set to a static or
	 * gn_pool-allocated message.  Any may be NULL. */
	int (*register_fn)(struct gn_module_ctx *ctx, const char **error_r);
	int (*start_fn)(struct gn_module_ctx *ctx, const char **error_r);
	void (*stop_fn)(struct gn_module_ctx *ctx);
};

/* Fills the fixed fields of a descriptor:
 *   GN_EXPORT const struct gn_module gannet_module_v1 = {
 *       GN_MODULE_HEADER, .name = "hello", .version = "1.0", ... };  */
#define GN_MODULE_HEADER \
	.magic = GN_MODULE_MAGIC, .size = sizeof(struct gn_module), \
	.abi_major = GN_ABI_MAJOR, .abi_minor = GN_ABI_MINOR

/* The module's name, as in its descriptor. */
const char *gn_module_name(const struct gn_module_ctx *ctx);

/* The module's slot number: an index into the per-object data slots of
 * connections and other core objects (see gn_conn_slot_get()).  Stable for
 * the life of the process. */
unsigned gn_module_slot(const struct gn_module_ctx *ctx);

/* One pointer of module-private data, owned by the module. */
void gn_module_set_data(struct gn_module_ctx *ctx, void *data);
void *gn_module_data(const struct gn_module_ctx *ctx);

/* The kind of process the module runs in during start and after:
 * "worker", "runner", "single" (localserve, serve --foreground) or "cli". */
const char *gn_module_process_kind(void);

/* Whether a module of that name is loaded (useful for optional
 * requirements).  Returns 1 if loaded, 0 if not. */
int gn_module_is_loaded(const char *name);

/* The module's own section of the config file, read with gannet/config.h.
 * Never NULL: a module without a section gets an empty one, so getters
 * return defaults. */
struct gn_config;
struct gn_config *gn_module_config(struct gn_module_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
