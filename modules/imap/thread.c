/*
 * modules/imap/thread.c: the threading algorithms of THREAD (RFC 5256 3):
 * ORDEREDSUBJECT ("poor man's threading") and REFERENCES (jwz's
 * algorithm with the RFC's changes), and the thread-data they answer.
 *
 * REFERENCES builds a tree of nodes (messages, and dummies for ids no
 * message has) linked by parent, first child and next sibling.  Message
 * ids are looked up in one sorted array of every id the messages name,
 * built before step 1, so a dummy is made only for an id no message
 * carries.  Threads are as deep as a mailbox's References make them
 * (tens of thousands of levels from a crafted mailbox), so nothing here
 * recurses: the steps that go down the tree work on the nodes in
 * reverse pre-order (descendants before ancestors), and the answer is
 * written with an explicit stack.
 */
#include "sort.h"

#include <stdlib.h>
#include <string.h>

/* ---- msg-id (RFC 5322 3.6.4) ---- */

/* atext (RFC 5322 3.2.3), with the UTF-8 of RFC 6532. */
static bool atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80 ||
	       strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* A comment at s[i] ("(" ... ")", nested, with quoted pairs): the index
 * after it. */
static size_t skip_comment(const char *s, size_t i, size_t len)
{
	unsigned depth = 0;
	for (; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

/* msg-id = "<" id-left "@" id-right ">" at s[i] ("<"), id-left a
 * dot-atom-text or a quoted-string, id-right a dot-atom-text or a
 * no-fold-literal; dots are taken anywhere, as in the addresses real mail
 * has.  The normalised id (quotes and quoted pairs undone) and *end_r
 * after it, or NULL. */
static const char *msgid_at(struct gn_pool *pool, const char *s, size_t i, size_t len, size_t *end_r)
{
	struct gn_buf *b = gn_buf_new(0);
	const char *id = NULL;
	size_t k = i + 1;
	if (k < len && s[k] == '"') {
		for (k++; k < len && s[k] != '"'; k++) {
			if (s[k] == '\\' && k + 1 < len)
				k++;
			if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
				goto out;
			(void)gn_buf_append(b, &s[k], 1);
		}
		if (k == len || gn_buf_len(b) == 0)
			goto out;
		k++;
	} else {
		size_t from = k;
		while (k < len && (atext((unsigned char)s[k]) || s[k] == '.'))
			k++;
		if (k == from)
			goto out;
		(void)gn_buf_append(b, s + from, k - from);
	}
	if (k >= len || s[k] != '@')
		goto out;
	(void)gn_buf_append(b, "@", 1);
	size_t from = ++k;
	if (k < len && s[k] == '[') {
		k++;
		while (k < len && s[k] != ']' && s[k] != '[' && s[k] != '\\' && (unsigned char)s[k] > 0x20)
			k++;
		if (k == len || s[k] != ']')
			goto out;
		k++;
	} else {
		while (k < len && (atext((unsigned char)s[k]) || s[k] == '.'))
			k++;
	}
	if (k == from || k >= len || s[k] != '>')
		goto out;
	(void)gn_buf_append(b, s + from, k - from);
	*end_r = k + 1;
	id = gn_pool_strdup(pool, gn_buf_data(b));
out:
	gn_buf_free(&b);
	return id;
}

const char **thread_msgids(struct gn_pool *pool, const char *field, size_t *n_r)
{
	*n_r = 0;
	if (field == NULL)
		return NULL;
	size_t len = strlen(field), n = 0;
	/* At most one id per "<". */
	size_t cap = 1;
	for (size_t i = 0; i < len; i++)
		cap += field[i] == '<';
	const char **ids = gn_pool_alloc(pool, cap * sizeof(*ids));
	for (size_t i = 0; i < len;) {
		if (field[i] == '(') {
			i = skip_comment(field, i, len);
			continue;
		}
		if (field[i] != '<') {
			i++;
			continue;
		}
		size_t end;
		const char *id = msgid_at(pool, field, i, len, &end);
		if (id == NULL) {
			i++;
			continue;
		}
		ids[n++] = id;
		i = end;
	}
	*n_r = n;
	return ids;
}

/* ---- the tree ---- */

struct node {
	const struct thread_msg *msg;	/* NULL: a dummy */
	struct node *parent, *child, *next;
	size_t pos;		/* step 5: the place under the root */
};

static void unlink_node(struct node *c)
{
	if (c->parent == NULL)
		return;
	struct node **pp = &c->parent->child;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	c->next = NULL;
	c->parent = NULL;
}

static void add_child(struct node *p, struct node *c)
{
	c->parent = p;
	c->next = p->child;
	p->child = c;
}

/* Whether making c a child of p would make a loop: c is p or above it. */
static bool would_loop(const struct node *p, const struct node *c)
{
	for (const struct node *a = p; a != NULL; a = a->parent)
		if (a == c)
			return true;
	return false;
}

/* The message a node sorts by: its own, or a dummy's first child's. */
static const struct thread_msg *sort_msg(const struct node *n)
{
	while (n->msg == NULL && n->child != NULL)
		n = n->child;
	return n->msg;
}

/* RFC 5256 2.2: by sent date, then sequence number; a dummy without
 * messages (none is left by then) last. */
static int cmp_nodes(const void *pa, const void *pb)
{
	const struct thread_msg *a = sort_msg(*(struct node *const *)pa), *b = sort_msg(*(struct node *const *)pb);
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

/* Sorts the children of p; tmp has room for all nodes. */
static void sort_children(struct node *p, struct node **tmp)
{
	size_t n = 0;
	for (struct node *c = p->child; c != NULL; c = c->next)
		tmp[n++] = c;
	if (n < 2)
		return;
	qsort(tmp, n, sizeof(*tmp), cmp_nodes);
	for (size_t i = 0; i < n; i++)
		tmp[i]->next = i + 1 < n ? tmp[i + 1] : NULL;
	p->child = tmp[0];
}

/* The nodes under root (not root), descendants after their ancestors;
 * read backwards, descendants come first.  *n_r of them in out. */
static size_t preorder(struct node *root, struct node **out, struct node **stack)
{
	size_t n = 0, sp = 0;
	for (struct node *c = root->child; c != NULL; c = c->next)
		stack[sp++] = c;
	while (sp > 0) {
		struct node *x = stack[--sp];
		out[n++] = x;
		for (struct node *c = x->child; c != NULL; c = c->next)
			stack[sp++] = c;
	}
	return n;
}

/* Writes the threads under root: " (a b (c)(d))(e)". */
static void write_threads(const struct node *root, struct gn_buf *out, const struct node **stack)
{
	size_t sp = 0;
	for (const struct node *top = root->child; top != NULL; top = top->next) {
		(void)gn_buf_append_str(out, top == root->child ? " (" : "(");
		const struct node *cur = top;
		for (;;) {
			if (cur->msg != NULL)
				(void)gn_buf_printf(out, "%u", (unsigned)cur->msg->num);
			const struct node *kid = cur->child;
			if (kid != NULL && kid->next == NULL) {
				/* thread-members: one child follows on the line. */
				if (cur->msg != NULL)
					(void)gn_buf_append_str(out, " ");
				cur = kid;
				continue;
			}
			if (kid != NULL) {
				/* thread-nested: each child's thread in parentheses. */
				(void)gn_buf_append_str(out, cur->msg != NULL ? " (" : "(");
				stack[sp++] = kid->next;
				cur = kid;
				continue;
			}
			/* A leaf: close nested threads until one has a sibling
			 * left. */
			while (sp > 0 && stack[sp - 1] == NULL) {
				(void)gn_buf_append_str(out, ")");
				sp--;
			}
			if (sp == 0)
				break;
			(void)gn_buf_append_str(out, ")(");
			cur = stack[sp - 1];
			stack[sp - 1] = cur->next;
		}
		(void)gn_buf_append_str(out, ")");
	}
}

/* ---- ORDEREDSUBJECT ---- */

static int cmp_subject_date(const void *pa, const void *pb)
{
	const struct thread_msg *a = *(const struct thread_msg *const *)pa, *b = *(const struct thread_msg *const *)pb;
	int r = imap_casemap_cmp(a->base, b->base);
	if (r != 0)
		return r;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

void thread_orderedsubject(struct gn_pool *pool, const struct thread_msg *msgs, size_t n, struct gn_buf *out)
{
	/* Sorted by base subject, then sent date; each run of one subject
	 * is a thread: the first message, and the others its children. */
	const struct thread_msg **v = gn_pool_alloc(pool, (n + 1) * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = &msgs[i];
	qsort(v, n, sizeof(*v), cmp_subject_date);
	struct node *nodes = gn_pool_alloc(pool, (n + 1) * sizeof(*nodes));
	struct node *root = &nodes[n];
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		nodes[i].msg = v[i];
		add_child(root, &nodes[i]);
		while (j < n && imap_casemap_cmp(v[j]->base, v[i]->base) == 0) {
			nodes[j].msg = v[j];
			add_child(&nodes[i], &nodes[j]);
			j++;
		}
		i = j;
	}
	/* Threads by their first message's date, children by theirs. */
	struct node **tmp = gn_pool_alloc(pool, (n + 1) * sizeof(*tmp));
	for (size_t i = 0; i < n; i++)
		sort_children(&nodes[i], tmp);
	sort_children(root, tmp);
	write_threads(root, out, (const struct node **)tmp);
}

/* ---- REFERENCES ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct refs_state {
	const char **ids;	/* every id named, sorted, unique */
	size_t n_ids;
	struct node **by_id;	/* the node of each id, NULL until one exists */
	struct node *dummies;
	size_t n_dummies;
};

static size_t id_index(const struct refs_state *st, const char *id)
{
	const char **p = bsearch(&id, st->ids, st->n_ids, sizeof(*st->ids), cmp_str);
	return (size_t)(p - st->ids);
}

/* The node of a referenced id: a message's, or a dummy made for it. */
static struct node *ref_node(struct refs_state *st, const char *id)
{
	size_t i = id_index(st, id);
	if (st->by_id[i] == NULL)
		st->by_id[i] = &st->dummies[st->n_dummies++];
	return st->by_id[i];
}

/* Step 3 for the children of p (their own children done already):
 * dummies without children go, dummies with children give them to p,
 * except under the root, where only a dummy with one child does. */
static void prune_children(struct node *p, bool is_root)
{
	struct node *c = p->child, *keep = NULL;
	p->child = NULL;
	while (c != NULL) {
		struct node *next = c->next;
		c->next = NULL;
		c->parent = NULL;
		if (c->msg == NULL && c->child != NULL && (!is_root || c->child->next == NULL)) {
			/* Promote its children: they go on being looked at
			 * (one may be a dummy whose own children came up). */
			struct node *g = c->child;
			while (g->next != NULL)
				g = g->next;
			g->next = next;
			next = c->child;
			c->child = NULL;
		} else if (c->msg != NULL || c->child != NULL) {
			c->parent = p;
			c->next = keep;
			keep = c;
		}
		c = next;
	}
	p->child = keep;
}

/* The subject of a thread (5.B.i): its message's, or a dummy's first
 * child's. */
static const struct thread_msg *subject_msg(const struct node *n)
{
	return n->msg != NULL ? n->msg : n->child != NULL ? n->child->msg : NULL;
}

static int cmp_thread_subject(const void *pa, const void *pb)
{
	const struct node *a = *(struct node *const *)pa, *b = *(struct node *const *)pb;
	int r = imap_casemap_cmp(subject_msg(a)->base, subject_msg(b)->base);
	/* Equal subjects keep the order of the root (step 4's). */
	return r != 0 ? r : (a->pos < b->pos ? -1 : a->pos > b->pos);
}

void thread_references(struct gn_pool *pool, const struct thread_msg *msgs, size_t n, struct gn_buf *out)
{
	struct refs_state st = { 0 };
	/* Each message's id and references. */
	const char **own = gn_pool_alloc(pool, (n + 1) * sizeof(*own));
	const char ***refs = gn_pool_alloc(pool, (n + 1) * sizeof(*refs));
	size_t *n_refs = gn_pool_alloc(pool, (n + 1) * sizeof(*n_refs));
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k;
		const char **ids = thread_msgids(pool, msgs[i].message_id, &k);
		own[i] = k > 0 ? ids[0] : NULL;
		/* References, else the first id of In-Reply-To. */
		refs[i] = thread_msgids(pool, msgs[i].references, &n_refs[i]);
		if (n_refs[i] == 0) {
			refs[i] = thread_msgids(pool, msgs[i].in_reply_to, &k);
			n_refs[i] = k > 0 ? 1 : 0;
		}
		total += (own[i] != NULL) + n_refs[i];
	}
	st.ids = gn_pool_alloc(pool, (total + 1) * sizeof(*st.ids));
	for (size_t i = 0; i < n; i++) {
		if (own[i] != NULL)
			st.ids[st.n_ids++] = own[i];
		for (size_t k = 0; k < n_refs[i]; k++)
			st.ids[st.n_ids++] = refs[i][k];
	}
	qsort(st.ids, st.n_ids, sizeof(*st.ids), cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < st.n_ids; i++)
		if (u == 0 || strcmp(st.ids[u - 1], st.ids[i]) != 0)
			st.ids[u++] = st.ids[i];
	st.n_ids = u;
	st.by_id = gn_pool_alloc(pool, (u + 1) * sizeof(*st.by_id));
	/* Room for every node: messages, dummies (one an id at most), the
	 * dummies of step 5 (one a thread at most) and the root. */
	size_t cap = 2 * n + u + 1;
	struct node *nodes = gn_pool_alloc(pool, cap * sizeof(*nodes));
	st.dummies = nodes + n;
	struct node **tmp = gn_pool_alloc(pool, cap * sizeof(*tmp));
	struct node **order = gn_pool_alloc(pool, cap * sizeof(*order));

	/* (1.A) A message without an id, or with the id of an earlier
	 * message, gets a unique one: it is in no table. */
	for (size_t i = 0; i < n; i++) {
		nodes[i].msg = &msgs[i];
		if (own[i] != NULL) {
			size_t k = id_index(&st, own[i]);
			if (st.by_id[k] == NULL)
				st.by_id[k] = &nodes[i];
		}
	}
	for (size_t i = 0; i < n; i++) {
		/* (1.A) Each reference the parent of the next, unless the
		 * child has a parent already or it would make a loop. */
		for (size_t k = 0; k + 1 < n_refs[i]; k++) {
			struct node *p = ref_node(&st, refs[i][k]), *c = ref_node(&st, refs[i][k + 1]);
			if (c->parent == NULL && !would_loop(p, c))
				add_child(p, c);
		}
		/* (1.B) The last reference is the parent: an earlier link
		 * is broken, no link that makes a loop is made. */
		struct node *me = &nodes[i];
		unlink_node(me);
		if (n_refs[i] > 0) {
			struct node *p = ref_node(&st, refs[i][n_refs[i] - 1]);
			if (!would_loop(p, me))
				add_child(p, me);
		}
	}
	/* (2) The nodes without a parent under the root. */
	size_t n_nodes = n + st.n_dummies;
	struct node *root = &nodes[n_nodes];
	for (size_t i = 0; i < n_nodes; i++)
		if (nodes[i].parent == NULL)
			add_child(root, &nodes[i]);
	/* (3) Prune dummies, descendants first. */
	size_t k = preorder(root, order, tmp);
	while (k > 0)
		prune_children(order[--k], false);
	prune_children(root, true);
	/* (4) The threads by sent date; a dummy by its first child. */
	for (struct node *c = root->child; c != NULL; c = c->next)
		if (c->msg == NULL)
			sort_children(c, tmp);
	sort_children(root, tmp);
	/* (5) Threads with the same base subject: each subject's threads
	 * in the root's order, apart from the others'. */
	size_t n_top = 0;
	for (struct node *c = root->child; c != NULL; c = c->next)
		if (*subject_msg(c)->base != '\0') {
			c->pos = n_top;
			tmp[n_top++] = c;
		}
	qsort(tmp, n_top, sizeof(*tmp), cmp_thread_subject);
	struct node *extra = root + 1;
	for (size_t i = 0; i < n_top;) {
		size_t j = i + 1;
		while (j < n_top && imap_casemap_cmp(subject_msg(tmp[j])->base, subject_msg(tmp[i])->base) == 0)
			j++;
		/* (5.B) The subject table's thread. */
		struct node *t = tmp[i];
		for (size_t x = i + 1; x < j; x++)
			if (t->msg != NULL && (tmp[x]->msg == NULL || (t->msg->refwd && !tmp[x]->msg->refwd)))
				t = tmp[x];
		/* (5.C) The others merge with it. */
		for (size_t x = i; x < j; x++) {
			struct node *c = tmp[x];
			if (c == t)
				continue;
			unlink_node(c);
			if (t->msg == NULL && c->msg == NULL) {
				while (c->child != NULL) {
					struct node *g = c->child;
					unlink_node(g);
					add_child(t, g);
				}
			} else if (t->msg == NULL || (c->msg != NULL && c->msg->refwd && !t->msg->refwd)) {
				add_child(t, c);
			} else {
				struct node *d = extra++;
				unlink_node(t);
				add_child(root, d);
				add_child(d, t);
				add_child(d, c);
				t = d;
			}
		}
		i = j;
	}
	/* (6) Every set of siblings by sent date, the deepest first. */
	k = preorder(root, order, tmp);
	while (k > 0)
		sort_children(order[--k], tmp);
	sort_children(root, tmp);
	write_threads(root, out, (const struct node **)tmp);
}
