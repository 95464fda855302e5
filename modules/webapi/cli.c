/*
 * modules/webapi/cli.c: `gannet webapi [METHOD [URL]]`, a client as mox's
 * `mox webapi`: without METHOD it lists the methods; with one it reads the
 * request JSON on stdin, POSTs it form-encoded to URL (default
 * http://localhost:1080/webapi/v0/ as mox, plain HTTP only) with Basic auth from the
 * URL's user:password@ or GANNET_WEBAPI_USER / GANNET_WEBAPI_PASSWORD, and
 * prints the response body.  Exit 0 on 200, 1 on an API error (400: the
 * JSON on stdout, "CODE: message" on stderr) or any other failure, 2 on
 * bad usage.
 */
#include "webapi.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <json-c/json.h>

#define STDIN_MAX (64u << 20)
#define RESPONSE_MAX (256u << 20)

static void buf_add(char **b, size_t *n, size_t *cap, const void *d, size_t len)
{
	if (*n + len + 1 > *cap) {
		*cap = (*n + len + 1) * 2;
		*b = gn_realloc(*b, *cap);
	}
	memcpy(*b + *n, d, len);
	*n += len;
	(*b)[*n] = '\0';
}

static void urlencode(char **b, size_t *n, size_t *cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			buf_add(b, n, cap, &s[i], 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			buf_add(b, n, cap, e, 3);
		}
	}
}

static char *pct_decode(const char *s, size_t len)
{
	char *out = gn_malloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len) {
			char h[3] = { s[i + 1], s[i + 2], 0 };
			out[n++] = (char)strtol(h, NULL, 16);
			i += 2;
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	return out;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64(const char *s, size_t len)
{
	char *out = gn_malloc(len / 3 * 4 + 5);
	size_t n = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;
		if (i + 1 < len)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)s[i + 2];
		out[n++] = B64[(v >> 18) & 63];
		out[n++] = B64[(v >> 12) & 63];
		out[n++] = i + 1 < len ? B64[(v >> 6) & 63] : '=';
		out[n++] = i + 2 < len ? B64[v & 63] : '=';
	}
	out[n] = '\0';
	return out;
}

static int list_methods(void)
{
	for (const struct webapi_method *m = webapi_methods; m->name != NULL; m++)
		printf("%s\n", m->name);
	return 0;
}

static int cmd_webapi(int argc, char **argv, void *data)
{
	if (argc == 1)
		return list_methods();
	if (argc > 3) {
		fprintf(stderr, "usage: gannet webapi [METHOD [URL]]\n");
		return 2;
	}
	const char *method = argv[1];
	const struct webapi_method *m = NULL;
	for (const struct webapi_method *x = webapi_methods; x->name != NULL; x++)
		if (strcmp(x->name, method) == 0)
			m = x;
	if (m == NULL) {
		fprintf(stderr, "gannet webapi: unknown method %s (see gannet webapi)\n", method);
		return 2;
	}
	const char *url = argc == 3 ? argv[2] : "http://localhost:1080/webapi/v0/";
	if (strncmp(url, "http://", 7) != 0) {
		fprintf(stderr, "gannet webapi: only http:// URLs are supported: %s\n", url);
		return 2;
	}
	const char *hp = url + 7;
	const char *slash = strchr(hp, '/');
	size_t hplen = slash != NULL ? (size_t)(slash - hp) : strlen(hp);
	const char *path = slash != NULL ? slash : "/";
	char *user = NULL, *password = NULL;
	const char *at = memchr(hp, '@', hplen);
	if (at != NULL) {
		const char *colon = memchr(hp, ':', (size_t)(at - hp));
		if (colon == NULL) {
			fprintf(stderr, "gannet webapi: URL credentials must be user:password@\n");
			return 2;
		}
		user = pct_decode(hp, (size_t)(colon - hp));
		password = pct_decode(colon + 1, (size_t)(at - colon - 1));
		hplen -= (size_t)(at + 1 - hp);
		hp = at + 1;
	} else {
		const char *u = getenv("GANNET_WEBAPI_USER"), *p = getenv("GANNET_WEBAPI_PASSWORD");
		if (u == NULL || p == NULL) {
			fprintf(stderr, "gannet webapi: no credentials: user:password@ in the URL, or "
				"GANNET_WEBAPI_USER and GANNET_WEBAPI_PASSWORD\n");
			return 2;
		}
		user = gn_strdup(u);
		password = gn_strdup(p);
	}
	char *host = gn_malloc(hplen + 1);
	memcpy(host, hp, hplen);
	host[hplen] = '\0';
	char *port = strrchr(host, ':');
	if (port != NULL && strchr(port, ']') == NULL)
		*port++ = '\0';
	else
		port = "80";
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		char *e = strchr(host, ']');
		if (e != NULL)
			*e = '\0';
	}

	char *hostport = gn_strdup_printf("%s:%s", host, port);
	/* The request JSON from stdin. */
	char *in = NULL;
	size_t inlen = 0, incap = 0;
	char rb[65536];
	size_t r;
	while ((r = fread(rb, 1, sizeof(rb), stdin)) > 0) {
		if (inlen + r > STDIN_MAX) {
			fprintf(stderr, "gannet webapi: request on stdin too large\n");
			return 1;
		}
		buf_add(&in, &inlen, &incap, rb, r);
	}
	char *body = NULL;
	size_t blen = 0, bcap = 0;
	buf_add(&body, &blen, &bcap, "request=", 8);
	urlencode(&body, &blen, &bcap, in != NULL ? in : "{}", in != NULL ? inlen : 2);
	char *up = gn_strdup_printf("%s:%s", user, password);
	char *auth = b64(up, strlen(up));
	char *head = gn_strdup_printf("POST %s%s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"
				      "Content-Type: application/x-www-form-urlencoded\r\n"
				      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				      path, path[strlen(path) - 1] == '/' ? "" : "/", m->name, hostport, auth,
				      blen);
	int ret = 1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int e = getaddrinfo(host, port, &hints, &ai);
	int fd = -1;
	if (e != 0) {
		fprintf(stderr, "gannet webapi: %s: %s\n", host, gai_strerror(e));
		goto out;
	}
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = 60 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		fprintf(stderr, "gannet webapi: connecting to %s port %s: %s\n", host, port, strerror(errno));
		goto out;
	}
	char *all = NULL;
	size_t alen = 0, acap = 0;
	buf_add(&all, &alen, &acap, head, strlen(head));
	buf_add(&all, &alen, &acap, body, blen);
	for (size_t off = 0; off < alen;) {
		ssize_t w = write(fd, all + off, alen - off);
		if (w <= 0) {
			fprintf(stderr, "gannet webapi: sending: %s\n", strerror(errno));
			gn_free(all);
			goto out;
		}
		off += (size_t)w;
	}
	gn_free(all);
	char *resp = NULL;
	size_t rlen = 0, rcap = 0;
	for (;;) {
		ssize_t n = read(fd, rb, sizeof(rb));
		if (n < 0) {
			fprintf(stderr, "gannet webapi: reading: %s\n", strerror(errno));
			gn_free(resp);
			goto out;
		}
		if (n == 0)
			break;
		if (rlen + (size_t)n > RESPONSE_MAX) {
			fprintf(stderr, "gannet webapi: response too large\n");
			gn_free(resp);
			goto out;
		}
		buf_add(&resp, &rlen, &rcap, rb, (size_t)n);
	}
	char *hend = resp != NULL ? strstr(resp, "\r\n\r\n") : NULL;
	int status = 0;
	if (hend == NULL || sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr, "gannet webapi: malformed HTTP response\n");
		gn_free(resp);
		goto out;
	}
	const char *rbody = hend + 4;
	size_t rblen = rlen - (size_t)(rbody - resp);
	/* Chunked answers are not expected (the server sends a length);
	 * refuse rather than print chunk sizes. */
	*hend = '\0';
	for (char *p = resp; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (strstr(resp, "\r\ntransfer-encoding:") != NULL) {
		fprintf(stderr, "gannet webapi: chunked response not supported\n");
		gn_free(resp);
		goto out;
	}
	fwrite(rbody, 1, rblen, stdout);
	if (status == 200) {
		ret = 0;
	} else if (status == 400) {
		struct json_object *o = json_tokener_parse(rbody);
		struct json_object *code = NULL, *msg = NULL;
		json_object_object_get_ex(o, "Code", &code);
		json_object_object_get_ex(o, "Message", &msg);
		fprintf(stderr, "gannet webapi: error %s: %s\n", code ? json_object_get_string(code) : "?",
			msg ? json_object_get_string(msg) : "?");
		json_object_put(o);
	} else {
		fprintf(stderr, "gannet webapi: HTTP status %d\n", status);
	}
	gn_free(resp);
out:
	if (fd >= 0)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	gn_free(head);
	gn_free(hostport);
	gn_free(auth);
	gn_free(up);
	gn_free(body);
	gn_free(in);
	gn_free(host);
	gn_free(user);
	gn_free(password);
	return ret;
}

int webapi_cli_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_cli_command cmd = {
		.size = sizeof(cmd),
		.words = "webapi",
		.usage = "[METHOD [URL]]",
		.help = "Call a webapi method: the request JSON on stdin, the response on stdout.\n"
			"Credentials: http://user:password@host:port/webapi/ or GANNET_WEBAPI_USER "
			"and GANNET_WEBAPI_PASSWORD.",
		.min_args = 0,
		.max_args = 2,
		.fn = cmd_webapi,
	};
	return gn_cli_command_register(ctx, &cmd, error_r);
}
