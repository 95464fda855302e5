/*
 * core/runtime/loop.c: the process's event loop and the handles modules use on it.
 *
 * Every gannet process runs one libev loop: the default loop, so that libev's
 * child and signal watchers work in the master as well.  Modules never see
 * libev; they get gn_timer and gn_io (gannet/loop.h), thin wrappers around
 * ev_timer and ev_io.  A wrapper is owned by whoever created it and must be
 * freed in the process that created it.
 *
 * After fork() the child calls loop_after_fork(): libev then re-creates its
 * kernel state (epoll set, signal pipe) on the next iteration.
 *
 * "Soon" work (loop_soon(), internal.h) runs from one ev_prepare watcher,
 * in order, until none is left: what it runs may queue more (a cached DNS
 * answer completes a hook, whose answer defers the connection's write),
 * and a second prepare watcher started from the first would not run
 * before the poll, which could then wait with work queued.  So every
 * layer's deferred work goes through this one queue.
 */
#include "runtime/internal.h"

#include <stdlib.h>
#include <string.h>

struct ev_loop *core_loop;

void loop_init(void)
{
	if (core_loop == NULL)
		core_loop = ev_default_loop(EVFLAG_AUTO);
	if (core_loop == NULL) {
		gn_log(GN_LOG_ERROR, "core", "event=loop_failed reason=\"ev_default_loop failed\"");
		abort();
	}
}

void loop_after_fork(void)
{
	if (core_loop != NULL)
		ev_loop_fork(core_loop);
}

/* Handles may be created before loop_init() (e.g. by a CLI command): they
 * then go on the default loop, which loop_init() adopts. */
static struct ev_loop *loop(void)
{
	if (core_loop == NULL)
		loop_init();
	return core_loop;
}

/* ---- soon ---- */

static struct loop_soon *soon_head, *soon_tail;
static ev_prepare soon_w;
static ev_idle soon_idle;	/* past the budget: the next poll must not wait */
static bool soon_init;

static void soon_idle_cb(struct ev_loop *l, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(l, w);
}

static void soon_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	(void)revents;
	for (unsigned n = 0; soon_head != NULL; n++) {
		if (n == LOOP_SOON_BUDGET) {
			/* A callback that keeps queueing work must not keep
			 * the loop from polling: the rest after a poll that
			 * does not wait. */
			ev_idle_start(l, &soon_idle);
			return;
		}
		struct loop_soon *s = soon_head;
		soon_head = s->next;
		if (soon_head != NULL)
			soon_head->prev = NULL;
		else
			soon_tail = NULL;
		s->next = s->prev = NULL;
		s->queued = false;
		s->fn(s->data);
	}
	ev_prepare_stop(l, w);
}

void loop_soon(struct loop_soon *s, void (*fn)(void *data), void *data)
{
	struct ev_loop *l = loop();
	if (s->queued)
		return;
	s->fn = fn;
	s->data = data;
	s->queued = true;
	s->next = NULL;
	s->prev = soon_tail;
	if (soon_tail != NULL)
		soon_tail->next = s;
	else
		soon_head = s;
	soon_tail = s;
	if (!soon_init) {
		ev_prepare_init(&soon_w, soon_cb);
		ev_idle_init(&soon_idle, soon_idle_cb);
		soon_init = true;
	}
	if (!ev_is_active(&soon_w))
		ev_prepare_start(l, &soon_w);
}

void loop_soon_cancel(struct loop_soon *s)
{
	if (s == NULL || !s->queued)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		soon_head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		soon_tail = s->prev;
	s->next = s->prev = NULL;
	s->queued = false;
}

/* ---- timers ---- */

struct gn_timer {
	ev_timer w;		/* first: the callback casts back */
	ev_tstamp after;
	bool repeat;
	gn_timer_fn *fn;
	void *data;
};

static void timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	struct gn_timer *t = (struct gn_timer *)w;
	(void)l;
	(void)revents;
	t->fn(t->data);
}

struct gn_timer *gn_timer_new(unsigned long ms, bool repeat, gn_timer_fn *fn,
			      void *data)
{
	struct gn_timer *t = gn_calloc(1, sizeof(*t));
	t->after = (ev_tstamp)ms / 1000.0;
	t->repeat = repeat;
	t->fn = fn;
	t->data = data;
	ev_timer_init(&t->w, timer_cb, t->after, repeat ? t->after : 0.0);
	ev_timer_start(loop(), &t->w);
	return t;
}

void gn_timer_reset(struct gn_timer *t)
{
	struct ev_loop *l = loop();
	ev_timer_stop(l, &t->w);
	ev_timer_set(&t->w, t->after, t->repeat ? t->after : 0.0);
	ev_timer_start(l, &t->w);
}

void gn_timer_free(struct gn_timer **timer)
{
	if (timer == NULL || *timer == NULL)
		return;
	ev_timer_stop(loop(), &(*timer)->w);
	gn_free(*timer);
	*timer = NULL;
}

/* ---- file descriptors ---- */

struct gn_io {
	ev_io w;		/* first: the callback casts back */
	gn_io_fn *fn;
	void *data;
};

static void io_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct gn_io *io = (struct gn_io *)w;
	unsigned ev = 0;
	(void)l;
	if (revents & EV_READ)
		ev |= GN_IO_READ;
	if (revents & EV_WRITE)
		ev |= GN_IO_WRITE;
	io->fn(w->fd, ev, io->data);
}

static int ev_events(unsigned events)
{
	return ((events & GN_IO_READ) ? EV_READ : 0) |
	       ((events & GN_IO_WRITE) ? EV_WRITE : 0);
}

struct gn_io *gn_io_new(int fd, unsigned events, gn_io_fn *fn, void *data)
{
	struct gn_io *io = gn_calloc(1, sizeof(*io));
	io->fn = fn;
	io->data = data;
	ev_io_init(&io->w, io_cb, fd, ev_events(events));
	if (ev_events(events) != 0)
		ev_io_start(loop(), &io->w);
	return io;
}

void gn_io_set_events(struct gn_io *io, unsigned events)
{
	struct ev_loop *l = loop();
	int ev = ev_events(events);
	if (ev_is_active(&io->w) && (io->w.events & (EV_READ | EV_WRITE)) == ev)
		return;
	ev_io_stop(l, &io->w);
	ev_io_set(&io->w, io->w.fd, ev);
	if (ev != 0)
		ev_io_start(l, &io->w);
}

void gn_io_free(struct gn_io **io)
{
	if (io == NULL || *io == NULL)
		return;
	ev_io_stop(loop(), &(*io)->w);
	gn_free(*io);
	*io = NULL;
}

double gn_now(void)
{
	return ev_now(loop());
}

/* ---- running it from a CLI command ---- */

int gn_loop_run(void)
{
	/* The other kinds run the loop themselves; a nested run there
	 * would steal their events. */
	if (strcmp(gn_module_process_kind(), "cli") != 0)
		return -1;
	ev_run(loop(), 0);
	return 0;
}

void gn_loop_break(void)
{
	if (core_loop != NULL)
		ev_break(core_loop, EVBREAK_ALL);
}
