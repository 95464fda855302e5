# t/mk/net.mk: the event loop, listeners, connections, TLS and per-IP limits
# (core/runtime/loop.c, core/net/listener.c, core/net/conn.c, core/net/tls.c, core/net/iplimit.c,
# core/net/compress.c).
TESTPROGS += t/unit/test_loop
t_unit_test_loop_SOURCES = t/unit/test_loop.c
t_unit_test_loop_CPPFLAGS = $(UNITCPP)
t_unit_test_loop_CFLAGS = $(UNITCC)
t_unit_test_loop_LDADD = $(UNITLIBS)

TESTPROGS += t/unit/test_iplimit
t_unit_test_iplimit_SOURCES = t/unit/test_iplimit.c
t_unit_test_iplimit_CPPFLAGS = $(UNITCPP)
t_unit_test_iplimit_CFLAGS = $(UNITCC)
t_unit_test_iplimit_LDADD = $(UNITLIBS)

# A connection's DEFLATE layer (core/net/compress.c) against zlib.
TESTPROGS += t/unit/test_compress
t_unit_test_compress_SOURCES = t/unit/test_compress.c
t_unit_test_compress_CPPFLAGS = $(UNITCPP)
t_unit_test_compress_CFLAGS = $(UNITCC)
t_unit_test_compress_LDADD = $(UNITLIBS)

# Connections and TLS in one process, without the master: a server loop in
# a child, GnuTLS clients in the test.
TESTPROGS += t/unit/test_net
t_unit_test_net_SOURCES = t/unit/test_net.c
t_unit_test_net_CPPFLAGS = $(UNITCPP)
t_unit_test_net_CFLAGS = $(UNITCC)
t_unit_test_net_LDADD = $(UNITLIBS)

# The "test-echo" protocol for t/integration/030-tls.t and 031-limits.t.
check_LTLIBRARIES += t/modules/testproto/testproto.la
t_modules_testproto_testproto_la_SOURCES = t/modules/testproto/testproto.c
t_modules_testproto_testproto_la_CFLAGS = $(GN_MODCC)
t_modules_testproto_testproto_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_testproto_testproto_la_LIBADD = core/libgannet.la

# Outbound connections and client TLS (gn_conn_connect(),
# gn_conn_starttls_client()) against a small GnuTLS server in a child.
TESTPROGS += t/unit/test_net_client
t_unit_test_net_client_SOURCES = t/unit/test_net_client.c
t_unit_test_net_client_CPPFLAGS = $(UNITCPP)
t_unit_test_net_client_CFLAGS = $(UNITCC)
t_unit_test_net_client_LDADD = $(UNITLIBS)

# Client certificates (gn_conn_tls_identity_*()): the certificate made for
# an Ed25519 seed (RFC 8032 vector), PEM key and certificate.
TESTPROGS += t/unit/test_tls_identity
t_unit_test_tls_identity_SOURCES = t/unit/test_tls_identity.c
t_unit_test_tls_identity_CPPFLAGS = $(UNITCPP)
t_unit_test_tls_identity_CFLAGS = $(UNITCC)
t_unit_test_tls_identity_LDADD = $(UNITLIBS)

# The HTTP mounts of t/integration/280-http.t (core/net/http.c).
check_LTLIBRARIES += t/modules/testhttp/testhttp.la
t_modules_testhttp_testhttp_la_SOURCES = t/modules/testhttp/testhttp.c
t_modules_testhttp_testhttp_la_CFLAGS = $(GN_MODCC) $(JSONC_CFLAGS)
t_modules_testhttp_testhttp_la_LDFLAGS = $(GN_TESTMODLINK)
t_modules_testhttp_testhttp_la_LIBADD = core/libgannet.la $(JSONC_LIBS)
