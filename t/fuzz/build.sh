#!/bin/sh
# t/fuzz/build.sh: builds the libFuzzer targets with clang, AddressSanitizer
# and UBSan, straight from the core's and the modules' sources (no
# configure needed).
#
#   t/fuzz/build.sh [OUTDIR]        (default: ./fuzz-build)
#
# Needs clang and its fuzzer runtime (Debian: clang, libclang-rt-14-dev), the
# json-c and libpq headers (libjson-c-dev, libpq-dev: the internal headers
# reach them through gannet/*.h), libev-dev, and for fuzz_addr and fuzz_smtp
# (core/mail/addr.c) libidn2-dev and libunistring-dev, for fuzz_dkim
# libgnutls28-dev.  Builds fuzz_mime, fuzz_addr, fuzz_dkim, fuzz_smtp,
# fuzz_smtp_reply, fuzz_imap, fuzz_imap_decode, fuzz_imap_search,
# fuzz_imap_thread, fuzz_spf, fuzz_dmarc, fuzz_dsn, fuzz_mtasts and fuzz_compose;
# t/fuzz/replay.sh runs them over their corpora.
# UBSan stops at its first finding (-fno-sanitize-recover), so that it
# counts as a crash.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-fuzz-build}
mkdir -p "$out"
out=$(cd "$out" && pwd)
CC=${CC:-clang}
# core.h includes the configure-made config.h; the parser needs none of it.
: > "$out/config.h"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -fno-omit-frame-pointer -D_GNU_SOURCE \
  -I$out -I$src/core -I$src/core/include $(pkg-config --cflags json-c libpq)"
libs="$(pkg-config --libs json-c)"
# The MIME parser and the SMTP engine are several files each: take them
# all, so that a file added to either needs no change here.
mime=$(ls "$src"/core/mail/mime*.c)
# The engine only: the client (client*.c, cli-*.c) runs on real
# connections and has a target of its own for its parser.
smtp=$(ls "$src"/core/smtp/*.c | grep -v -e /client -e /cli-)
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_mime" "$src/t/fuzz/fuzz_mime.c" $mime "$src/core/base/mem.c" "$src/core/base/text.c" -lunistring $libs
echo "built $out/fuzz_mime"
# Addresses, paths, address headers and PRECIS (t/fuzz/fuzz_addr.c).
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_addr" "$src/t/fuzz/fuzz_addr.c" "$src/core/mail/addr.c" \
  $mime "$src/core/base/mem.c" "$src/core/base/text.c" -lidn2 -lunistring $libs
echo "built $out/fuzz_addr"
# DKIM's tag lists, canonical forms, signer and verifier (t/fuzz/fuzz_dkim.c), with
# GnuTLS for the hashes and the signature.
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_dkim" "$src/t/fuzz/fuzz_dkim.c" "$src/core/mail/dkim.c" \
  "$src/core/mail/dkim-sign.c" "$src/core/mail/dkim-verify.c" $mime "$src/core/base/mem.c" "$src/core/base/text.c" \
  -lunistring $(pkg-config --libs gnutls) $libs
echo "built $out/fuzz_dkim"
# The SMTP engine against fakes of the connection, loop and config
# (t/fuzz/fuzz_smtp.c says how); core/mail/addr.c for the paths.
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_smtp" "$src/t/fuzz/fuzz_smtp.c" $smtp \
  "$src/core/mail/addr.c" $mime "$src/core/base/mem.c" "$src/core/base/text.c" \
  "$src/core/base/pid.c" -lidn2 -lunistring $libs
echo "built $out/fuzz_smtp"
# The SMTP client's reply parser and DATA encoder (core/smtp/client-reply.c).
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_smtp_reply" "$src/t/fuzz/fuzz_smtp_reply.c" \
  "$src/core/smtp/client-reply.c" "$src/core/base/mem.c" "$src/core/base/text.c" -lunistring $libs
echo "built $out/fuzz_smtp_reply"
# The imap module's command reader and parser (modules/imap/parser.c).
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_imap" "$src/t/fuzz/fuzz_imap.c" "$src/modules/imap/parser.c" \
  "$src/core/base/mem.c" $libs
echo "built $out/fuzz_imap"
# The transfer decoders of FETCH BINARY (modules/imap/decode.c).
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_imap_decode" "$src/t/fuzz/fuzz_imap_decode.c" "$src/modules/imap/decode.c" \
  "$src/core/base/mem.c" $libs
echo "built $out/fuzz_imap_decode"
# The imap module's search keys (modules/imap/search-parse.c) behind its
# command parser.
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_imap_search" "$src/t/fuzz/fuzz_imap_search.c" \
  "$src/modules/imap/search-parse.c" "$src/modules/imap/parser.c" "$src/modules/imap/seqset.c" \
  "$src/core/base/mem.c" $libs
echo "built $out/fuzz_imap_search"
# THREAD's and SORT's base subjects, msg-ids and threading
# (modules/imap/thread.c, base-subject.c).
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_imap_thread" "$src/t/fuzz/fuzz_imap_thread.c" "$src/modules/imap/thread.c" \
  "$src/modules/imap/base-subject.c" "$src/core/base/mem.c" $libs
echo "built $out/fuzz_imap_thread"
# The mailauth module's SPF records and macros (modules/mailauth/spf-record.c).
# shellcheck disable=SC2086
$CC $cflags -I"$src/modules/mailauth" -o "$out/fuzz_spf" "$src/t/fuzz/fuzz_spf.c" \
  "$src/modules/mailauth/spf-record.c" "$src/core/base/mem.c" $libs
echo "built $out/fuzz_spf"
# The mailauth module's DMARC records (modules/mailauth/dmarc-record.c).
# shellcheck disable=SC2086
$CC $cflags -I"$src/modules/mailauth" -o "$out/fuzz_dmarc" "$src/t/fuzz/fuzz_dmarc.c" \
  "$src/modules/mailauth/dmarc-record.c" "$src/core/base/mem.c" $libs
echo "built $out/fuzz_dmarc"
# The delivery-status part of a returned DSN (core/queue/dsn-read.c).
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_dsn" "$src/t/fuzz/fuzz_dsn.c" "$src/core/queue/dsn-read.c" \
  "$src/core/base/mem.c" $libs
echo "built $out/fuzz_dsn"

# MTA-STS's TXT records, policies and mx patterns (core/queue/mtasts-policy.c).
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_mtasts" "$src/t/fuzz/fuzz_mtasts.c" "$src/core/queue/mtasts-policy.c" \
  "$src/core/base/mem.c" $libs
echo "built $out/fuzz_mtasts"

# The message composer (core/mail/compose.c), read back with the MIME
# parser; core/mail/addr.c for the addresses.
# shellcheck disable=SC2086
$CC $cflags -o "$out/fuzz_compose" "$src/t/fuzz/fuzz_compose.c" "$src/core/mail/compose.c" \
  "$src/core/mail/addr.c" $mime "$src/core/base/mem.c" "$src/core/base/text.c" -lidn2 -lunistring $libs
echo "built $out/fuzz_compose"
