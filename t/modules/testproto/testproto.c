/*
 * t/modules/testproto/testproto.c: a line protocol for the listener and TLS
 * tests (t/integration/030-tls.t, 031-limits.t), built like any module:
 * <gannet/gannet.h> only, one exported symbol.
 *
 * Protocol "test-echo" (asks for client certificates):
 *   greeting   "* hello <TLS version or plain>"
 *   STARTTLS   "* go ahead", then the handshake (client speaks first after)
 *   SNI        "* sni <name or none>"
 *   PUBKEY     "* pubkey <hex SHA-256 of the client's SubjectPublicKeyInfo
 *              or none>"
 *   TLS        "* tls <version> <cipher>" or "* tls none"
 *   CB <type>  "* cb <type> <length in bytes or none>"
 *   QUIT       "* bye", then close
 *   else       "= <the line>"
 * A line longer than max_input (1024): "* error line too long", close.
 * Idle timeout: "* idle timeout", close.
 */
#include <gannet/gannet.h>

#include <stdint.h>
#include <string.h>

/* ---- SHA-256 (FIPS 180-4), small and slow: for test output only ---- */

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t n;
};

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(struct sha256 *s, const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h;
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
	e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
			      ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
			      ((a & b) ^ (a & c) ^ (b & c));
		h = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
	s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sha256_hex(const unsigned char *data, size_t len, char out[65])
{
	static const uint32_t init[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	struct sha256 s;
	unsigned char pad[72];
	size_t padlen;
	uint64_t bits = (uint64_t)len * 8;

	memcpy(s.h, init, sizeof(init));
	s.n = 0;
	while (len >= 64) {
		sha256_block(&s, data);
		data += 64;
		len -= 64;
	}
	memcpy(s.buf, data, len);
	s.n = len;
	/* 0x80, zeroes, then the length in bits, big-endian. */
	padlen = (s.n < 56 ? 56 : 120) - s.n;
	memset(pad, 0, sizeof(pad));
	pad[0] = 0x80;
	for (int i = 0; i < 8; i++)
		pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
	unsigned char last[128];
	memcpy(last, s.buf, s.n);
	memcpy(last + s.n, pad, padlen + 8);
	sha256_block(&s, last);
	if (s.n + padlen + 8 == 128)
		sha256_block(&s, last + 64);
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 4; j++) {
			unsigned v = (s.h[i] >> (24 - 8 * j)) & 0xff;
			out[8 * i + 2 * j] = "0123456789abcdef"[v >> 4];
			out[8 * i + 2 * j + 1] = "0123456789abcdef"[v & 15];
		}
	out[64] = '\0';
}

/* ---- the protocol ---- */

static bool is_cmd(const char *line, size_t len, const char *cmd)
{
	size_t n = strlen(cmd);
	return len == n && strncmp(line, cmd, n) == 0;
}

static int echo_open(struct gn_conn *conn, void *data)
{
	const char *v = gn_conn_tls_version(conn);
	(void)data;
	gn_conn_printf(conn, "* hello %s\r\n", v != NULL ? v : "plain");
	return 0;
}

static void echo_input(struct gn_conn *conn, void *data)
{
	const char *line;
	size_t len;
	(void)data;

	while (!gn_conn_is_closed(conn) && gn_conn_read_line(conn, &line, &len) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (is_cmd(line, len, "STARTTLS")) {
			if (!gn_conn_can_starttls(conn)) {
				gn_conn_printf(conn, "* no tls here\r\n");
				continue;
			}
			gn_conn_printf(conn, "* go ahead\r\n");
			if (gn_conn_starttls(conn) < 0)
				gn_conn_close(conn, "starttls failed");
			return;	/* the rest of the input was dropped */
		} else if (is_cmd(line, len, "SNI")) {
			const char *sni = gn_conn_tls_sni(conn);
			gn_conn_printf(conn, "* sni %s\r\n", sni != NULL ? sni : "none");
		} else if (is_cmd(line, len, "PUBKEY")) {
			const unsigned char *der;
			size_t dlen;
			char hex[65];
			if (gn_conn_peer_spki(conn, &der, &dlen) == 1) {
				sha256_hex(der, dlen, hex);
				gn_conn_printf(conn, "* pubkey %s\r\n", hex);
			} else {
				gn_conn_printf(conn, "* pubkey none\r\n");
			}
		} else if (is_cmd(line, len, "TLS")) {
			if (gn_conn_is_tls(conn))
				gn_conn_printf(conn, "* tls %s %s\r\n", gn_conn_tls_version(conn),
					       gn_conn_tls_cipher(conn));
			else
				gn_conn_printf(conn, "* tls none\r\n");
		} else if (len > 3 && strncmp(line, "CB ", 3) == 0) {
			char type[64];
			const unsigned char *cb;
			size_t cblen;
			size_t n = len - 3 < sizeof(type) - 1 ? len - 3 : sizeof(type) - 1;
			memcpy(type, line + 3, n);
			type[n] = '\0';
			if (gn_conn_tls_channel_binding(conn, type, &cb, &cblen) == 1)
				gn_conn_printf(conn, "* cb %s %zu\r\n", type, cblen);
			else
				gn_conn_printf(conn, "* cb %s none\r\n", type);
		} else if (is_cmd(line, len, "QUIT")) {
			gn_conn_printf(conn, "* bye\r\n");
			gn_conn_close(conn, "quit");
			return;
		} else {
			gn_conn_printf(conn, "= %.*s\r\n", (int)len, line);
		}
	}
}

static void echo_input_full(struct gn_conn *conn, void *data)
{
	(void)data;
	gn_conn_printf(conn, "* error line too long\r\n");
	gn_conn_close(conn, "line too long");
}

static void echo_timeout(struct gn_conn *conn, void *data)
{
	(void)data;
	gn_conn_printf(conn, "* idle timeout\r\n");
}

static void echo_close(struct gn_conn *conn, void *data)
{
	(void)conn;
	(void)data;
}

static const struct gn_protocol echo_proto = {
	.size = sizeof(struct gn_protocol),
	.name = "test-echo",
	.flags = GN_PROTO_CLIENT_CERT,
	.max_input = 1024,
	.open = echo_open,
	.input = echo_input,
	.input_full = echo_input_full,
	.timeout = echo_timeout,
	.close = echo_close,
};

static int testproto_register(struct gn_module_ctx *ctx, const char **error_r)
{
	return gn_protocol_register(ctx, &echo_proto, NULL, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "testproto",
	.version = "1.0",
	.register_fn = testproto_register,
};
