/*
 * core/store/handles.c: the accessors of the store's objects.
 *
 * Domains, accounts, addresses, mailboxes and messages are opaque to
 * modules (gannet/store.h): the core hands out pointers to them, never
 * arrays of them, and modules read them through these functions, so their
 * definitions (core/store/internal.h) may change without changing the size
 * of anything a module compiled in.  The one struct modules fill,
 * gn_store_message_new, is copied here by its own size.
 */
#include "store/internal.h"

#include <string.h>

/* ---- domains ---- */

int64_t gn_store_domain_id(const struct gn_store_domain *domain)
{
	return domain->id;
}

const char *gn_store_domain_name(const struct gn_store_domain *domain)
{
	return domain->name;
}

const char *gn_store_domain_name_utf8(const struct gn_store_domain *domain)
{
	return domain->name_utf8;
}

const char *gn_store_domain_catchall_separators(const struct gn_store_domain *domain)
{
	return domain->catchall_separators;
}

/* ---- accounts ---- */

int64_t gn_store_account_id(const struct gn_store_account *account)
{
	return account->id;
}

const char *gn_store_account_name(const struct gn_store_account *account)
{
	return account->name;
}

const char *gn_store_account_full_name(const struct gn_store_account *account)
{
	return account->full_name;
}

const char *gn_store_account_login_disabled(const struct gn_store_account *account)
{
	return account->login_disabled;
}

uint64_t gn_store_account_modseq(const struct gn_store_account *account)
{
	return account->modseq;
}

uint64_t gn_store_account_total_size(const struct gn_store_account *account)
{
	return account->total_size;
}

/* ---- addresses ---- */

const char *gn_store_address_canonical(const struct gn_store_address *address)
{
	return address->address;
}

const char *gn_store_address_display(const struct gn_store_address *address)
{
	return address->display;
}

int64_t gn_store_address_account_id(const struct gn_store_address *address)
{
	return address->account_id;
}

const char *gn_store_address_account_name(const struct gn_store_address *address)
{
	return address->account;
}

/* ---- mailboxes ---- */

int64_t gn_store_mailbox_account_id(const struct gn_store_mailbox *mailbox)
{
	return mailbox->account_id;
}

int64_t gn_store_mailbox_id(const struct gn_store_mailbox *mailbox)
{
	return mailbox->id;
}

const char *gn_store_mailbox_name(const struct gn_store_mailbox *mailbox)
{
	return mailbox->name;
}

enum gn_store_special_use gn_store_mailbox_special_use(const struct gn_store_mailbox *mailbox)
{
	return mailbox->special_use;
}

bool gn_store_mailbox_subscribed(const struct gn_store_mailbox *mailbox)
{
	return mailbox->subscribed;
}

uint32_t gn_store_mailbox_uidvalidity(const struct gn_store_mailbox *mailbox)
{
	return mailbox->uidvalidity;
}

uint32_t gn_store_mailbox_uidnext(const struct gn_store_mailbox *mailbox)
{
	return mailbox->uidnext;
}

uint64_t gn_store_mailbox_highestmodseq(const struct gn_store_mailbox *mailbox)
{
	return mailbox->highestmodseq;
}

uint64_t gn_store_mailbox_messages(const struct gn_store_mailbox *mailbox)
{
	return mailbox->messages;
}

uint64_t gn_store_mailbox_unseen(const struct gn_store_mailbox *mailbox)
{
	return mailbox->unseen;
}

uint64_t gn_store_mailbox_deleted(const struct gn_store_mailbox *mailbox)
{
	return mailbox->deleted;
}

uint64_t gn_store_mailbox_size(const struct gn_store_mailbox *mailbox)
{
	return mailbox->size;
}

uint64_t gn_store_mailbox_deleted_size(const struct gn_store_mailbox *mailbox)
{
	return mailbox->deleted_size;
}

/* ---- messages ---- */

int64_t gn_store_message_account_id(const struct gn_store_message *msg)
{
	return msg->account_id;
}

int64_t gn_store_message_mailbox_id(const struct gn_store_message *msg)
{
	return msg->mailbox_id;
}

int64_t gn_store_message_id(const struct gn_store_message *msg)
{
	return msg->id;
}

uint32_t gn_store_message_uid(const struct gn_store_message *msg)
{
	return msg->uid;
}

uint64_t gn_store_message_modseq(const struct gn_store_message *msg)
{
	return msg->modseq;
}

uint64_t gn_store_message_size(const struct gn_store_message *msg)
{
	return msg->size;
}

unsigned gn_store_message_flags(const struct gn_store_message *msg)
{
	return msg->flags;
}

const char *const *gn_store_message_keywords(const struct gn_store_message *msg,
					     size_t *count_r)
{
	*count_r = msg->n_keywords;
	return msg->keywords;
}

time_t gn_store_message_internal_date(const struct gn_store_message *msg)
{
	return msg->internal_date;
}

const unsigned char *gn_store_message_blob_hash(const struct gn_store_message *msg)
{
	return msg->blob_hash;
}

uint64_t gn_store_message_prefix_len(const struct gn_store_message *msg)
{
	return msg->prefix_len;
}

const char *gn_store_message_subject(const struct gn_store_message *msg)
{
	return msg->subject;
}

const char *gn_store_message_from(const struct gn_store_message *msg)
{
	return msg->from;
}

const char *gn_store_message_message_id(const struct gn_store_message *msg)
{
	return msg->message_id;
}

time_t gn_store_message_date(const struct gn_store_message *msg)
{
	return msg->date;
}

const char *gn_store_message_mime_json(const struct gn_store_message *msg)
{
	return msg->mime_json;
}

time_t gn_store_message_save_date(const struct gn_store_message *msg)
{
	return msg->save_date;
}

/* ---- what modules fill ---- */

static const char *strdup_null(struct gn_pool *pool, const char *s)
{
	return s != NULL ? gn_pool_strdup(pool, s) : NULL;
}

struct gn_store_message_auth *gn_store_message_auth_copy(struct gn_pool *pool,
							 const struct gn_store_message_auth *auth)
{
	const size_t first = offsetof(struct gn_store_message_auth, remote_ip) +
		sizeof(auth->remote_ip);
	if (auth == NULL || auth->size < first)
		return NULL;
	struct gn_store_message_auth *a = gn_pool_alloc(pool, sizeof(*a));
	memset(a, 0, sizeof(*a));
	memcpy(a, auth, auth->size < sizeof(*a) ? auth->size : sizeof(*a));
	a->size = sizeof(*a);
	a->mail_from_validation = strdup_null(pool, a->mail_from_validation);
	a->msg_from_domain = strdup_null(pool, a->msg_from_domain);
	a->msg_from_validation = strdup_null(pool, a->msg_from_validation);
	a->remote_ip = strdup_null(pool, a->remote_ip);
	if (a->n_dkim_domains > GN_STORE_MAX_AUTH_DKIM_DOMAINS)
		a->n_dkim_domains = GN_STORE_MAX_AUTH_DKIM_DOMAINS;
	if (a->dkim_domains == NULL)
		a->n_dkim_domains = 0;
	if (a->n_dkim_domains > 0) {
		const char **d = gn_pool_alloc(pool, a->n_dkim_domains * sizeof(*d));
		for (size_t i = 0; i < a->n_dkim_domains; i++)
			d[i] = strdup_null(pool, a->dkim_domains[i]);
		a->dkim_domains = d;
	} else {
		a->dkim_domains = NULL;
	}
	return a;
}

int store_message_new_copy(const struct gn_store_message_new *m,
			   struct gn_store_message_new *copy, const char **error_r)
{
	/* A module built against an older header passes a smaller struct:
	 * read only its size, and leave what it lacks at zero.  A size below
	 * the first version's is no gn_store_message_new at all (a caller
	 * that forgot to set it): refuse rather than read past its end. */
	if (m->size < STORE_MESSAGE_NEW_SIZE_1_0) {
		*error_r = store_errf("struct gn_store_message_new: size %zu, at least %zu expected "
				      "(set .size = sizeof(struct gn_store_message_new))",
				      m->size, (size_t)STORE_MESSAGE_NEW_SIZE_1_0);
		return -1;
	}
	memset(copy, 0, sizeof(*copy));
	memcpy(copy, m, m->size < sizeof(*copy) ? m->size : sizeof(*copy));
	copy->size = sizeof(*copy);
	return 0;
}
