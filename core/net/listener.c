/*
 * core/net/listener.c: protocol handlers by name, and the listening sockets.
 *
 * Modules register protocol handlers (gn_protocol_register) in their
 * register phase; the config's listeners name them.  After register,
 * listeners_check_protocols() refuses listeners whose protocol nobody
 * registered, and listeners that want TLS when no certificate is configured.
 *
 * The master binds every listener (listeners_bind) before it drops
 * privileges and forks, so port 25 works.  Each worker then watches all the
 * shared listening sockets on its loop (listeners_start) and accepts
 * nonblocking: several workers wake for one connection and all but one get
 * EAGAIN, which is normal.  The runner, which never accepts, closes its
 * copies (listeners_close).  Accepted sockets go to conn.c.
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/* ---- protocol registry ---- */

struct proto_entry {
	struct gn_protocol proto;	/* a full-size copy (older, smaller
					 * structs are padded with zeroes) */
	void *data;
	char *module;
};

static struct proto_entry *protos;
static size_t n_protos;
/* Registration closes when listeners are checked (end of register). */
static bool protos_closed;

int gn_protocol_register(struct gn_module_ctx *ctx, const struct gn_protocol *proto,
			 void *data, const char **error_r)
{
	const char *module = ctx != NULL ? gn_module_name(ctx) : "core";

	if (protos_closed) {
		*error_r = "protocol handlers can only be registered in the register phase";
		return -1;
	}
	if (proto == NULL || proto->size < offsetof(struct gn_protocol, close) +
					   sizeof(proto->close)) {
		*error_r = "struct gn_protocol too small (size not set?)";
		return -1;
	}
	if (proto->name == NULL || proto->name[0] == '\0') {
		*error_r = "protocol handler without a name";
		return -1;
	}
	if (proto->open == NULL || proto->input == NULL) {
		*error_r = "protocol handler without open() or input()";
		return -1;
	}
	for (size_t i = 0; i < n_protos; i++) {
		if (strcmp(protos[i].proto.name, proto->name) == 0) {
			static char buf[256];
			snprintf(buf, sizeof(buf),
				 "protocol %s is already registered by module %s",
				 proto->name, protos[i].module);
			*error_r = buf;
			return -1;
		}
	}
	protos = gn_realloc(protos, (n_protos + 1) * sizeof(*protos));
	struct proto_entry *e = &protos[n_protos++];
	memset(e, 0, sizeof(*e));
	size_t n = proto->size < sizeof(e->proto) ? proto->size : sizeof(e->proto);
	memcpy(&e->proto, proto, n);
	e->proto.size = sizeof(e->proto);
	e->data = data;
	e->module = gn_strdup(module);
	gn_log(GN_LOG_DEBUG, "core", "event=protocol_registered protocol=%s module=%s",
	       proto->name, module);
	return 0;
}

const struct gn_protocol *protocol_find(const char *name, void **data_r)
{
	for (size_t i = 0; i < n_protos; i++) {
		if (strcmp(protos[i].proto.name, name) == 0) {
			if (data_r != NULL)
				*data_r = protos[i].data;
			return &protos[i].proto;
		}
	}
	return NULL;
}

int listeners_check_protocols(void)
{
	int ret = 0;

	http_protocol_register();
	protos_closed = true;
	if (core_conf == NULL)
		return 0;
	for (size_t i = 0; i < core_conf->n_listeners; i++) {
		const struct listener_conf *l = &core_conf->listeners[i];
		if (protocol_find(l->protocol, NULL) == NULL) {
			conf_error("listener %s: no loaded module provides protocol %s "
				   "(at %s:%d)", l->name, l->protocol, l->file, l->line);
			ret = -1;
		}
		if (l->tls != TLS_MODE_NONE && core_conf->n_certs == 0) {
			conf_error("listener %s: tls = \"%s\" needs a certificate in "
				   "tls.certificates (at %s:%d)", l->name,
				   l->tls == TLS_MODE_IMPLICIT ? "implicit" : "starttls",
				   l->file, l->line);
			ret = -1;
		}
	}
	return ret;
}

/* ---- listening sockets ---- */

static struct net_listener *listeners;
static size_t n_listeners;
/* Accepting paused after EMFILE/ENFILE. */
static ev_timer accept_pause;

static void listener_free_all(void)
{
	for (size_t i = 0; i < n_listeners; i++) {
		if (listeners[i].started && core_loop != NULL)
			ev_io_stop(core_loop, &listeners[i].io);
		if (listeners[i].fd >= 0)
			close(listeners[i].fd);
		gn_free(listeners[i].name);
	}
	gn_free(listeners);
	listeners = NULL;
	n_listeners = 0;
}

static int bind_one(const struct listener_conf *lc, int *fd_r, const char **what_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd, family;

	memset(&ss, 0, sizeof(ss));
	if (strchr(lc->address, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		family = AF_INET6;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)lc->port);
		if (inet_pton(AF_INET6, lc->address, &s6->sin6_addr) != 1) {
			errno = EINVAL;
			*what_r = "bad address";
			return -1;
		}
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		family = AF_INET;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)lc->port);
		if (inet_pton(AF_INET, lc->address, &s4->sin_addr) != 1) {
			errno = EINVAL;
			*what_r = "bad address";
			return -1;
		}
		len = sizeof(*s4);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*what_r = "socket";
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (family == AF_INET6 &&
	     /* "::" means IPv6 only; a listener on 0.0.0.0 is separate. */
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		*what_r = "setsockopt";
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		*what_r = "bind";
		goto fail;
	}
	if (listen(fd, 511) < 0) {
		*what_r = "listen";
		goto fail;
	}
	*fd_r = fd;
	return 0;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

int listeners_bind(const struct core_conf *conf, const char **error_r)
{
	static char errbuf[512];

	listener_free_all();
	listeners = gn_calloc(conf->n_listeners ? conf->n_listeners : 1,
			      sizeof(*listeners));
	for (size_t i = 0; i < conf->n_listeners; i++) {
		const struct listener_conf *lc = &conf->listeners[i];
		struct net_listener *l = &listeners[n_listeners];
		const char *what = NULL;
		int fd;

		if (bind_one(lc, &fd, &what) < 0) {
			bool v6 = strchr(lc->address, ':') != NULL;
			snprintf(errbuf, sizeof(errbuf),
				 "cannot listen on %s%s%s:%u (listener %s at %s:%d): %s",
				 v6 ? "[" : "", lc->address, v6 ? "]" : "", lc->port,
				 lc->name, lc->file, lc->line, strerror(errno));
			*error_r = errbuf;
			listener_free_all();
			return -1;
		}
		memset(l, 0, sizeof(*l));
		l->name = gn_strdup(lc->name);
		l->tls = lc->tls;
		l->conf = lc;
		l->fd = fd;
		l->proto = protocol_find(lc->protocol, &l->proto_data);
		n_listeners++;
		gn_log(GN_LOG_INFO, "core", "event=listening listener=%s address=%s port=%u "
		       "protocol=%s tls=%s", lc->name, lc->address, lc->port, lc->protocol,
		       lc->tls == TLS_MODE_IMPLICIT ? "implicit" :
		       lc->tls == TLS_MODE_STARTTLS ? "starttls" : "none");
	}
	return 0;
}

static void accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	for (size_t i = 0; i < n_listeners; i++) {
		if (listeners[i].started && listeners[i].fd >= 0)
			ev_io_start(loop, &listeners[i].io);
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct net_listener *l = w->data;
	(void)revents;

	/* A bounded batch, so one busy listener cannot starve the others. */
	for (int n = 0; n < 64 && l->fd >= 0; n++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED || errno == EPROTO)
				return;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: pause accepting for a moment
				 * instead of spinning on a readable socket. */
				gn_log(GN_LOG_WARN, "core", "event=accept_failed listener=%s "
				       "reason=%s", l->name, gn_log_quote(0, strerror(errno)));
				for (size_t i = 0; i < n_listeners; i++) {
					if (listeners[i].started)
						ev_io_stop(loop, &listeners[i].io);
				}
				ev_timer_stop(loop, &accept_pause);
				ev_timer_set(&accept_pause, 0.5, 0.0);
				ev_timer_start(loop, &accept_pause);
				return;
			}
			gn_log(GN_LOG_WARN, "core", "event=accept_failed listener=%s reason=%s",
			       l->name, gn_log_quote(0, strerror(errno)));
			return;
		}
		conn_accepted(l, fd, (struct sockaddr *)&ss, len);
	}
}

void listeners_start(void)
{
	loop_init();
	ev_timer_init(&accept_pause, accept_resume_cb, 0.5, 0.0);
	for (size_t i = 0; i < n_listeners; i++) {
		struct net_listener *l = &listeners[i];
		if (l->fd < 0 || l->started)
			continue;
		if (l->proto == NULL)
			l->proto = protocol_find(l->conf->protocol, &l->proto_data);
		if (l->proto == NULL) {
			gn_log(GN_LOG_ERROR, "core", "event=listener_unusable listener=%s "
			       "reason=\"no protocol %s\"", l->name, l->conf->protocol);
			continue;
		}
		if (l->tls != TLS_MODE_NONE && !tls_ready()) {
			gn_log(GN_LOG_ERROR, "core", "event=listener_unusable listener=%s "
			       "reason=\"no TLS certificate\"", l->name);
			continue;
		}
		ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
		l->io.data = l;
		ev_io_start(core_loop, &l->io);
		l->started = true;
	}
}

void listeners_stop(void)
{
	if (core_loop != NULL)
		ev_timer_stop(core_loop, &accept_pause);
	for (size_t i = 0; i < n_listeners; i++) {
		struct net_listener *l = &listeners[i];
		if (l->started && core_loop != NULL)
			ev_io_stop(core_loop, &l->io);
		l->started = false;
		if (l->fd >= 0) {
			close(l->fd);
			l->fd = -1;
		}
	}
	/* The structs stay: connections point at them until they end. */
}

void listeners_close(void)
{
	listeners_stop();
}
