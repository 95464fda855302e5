/*
 * core/base/internal.h: the base layer's internals, for the rest of the
 * core.
 *
 * The lowest layer of libgannet: memory (mem.c), logging (log.c), the
 * process's id (pid.c), and small text helpers (text.c: hex, control
 * characters).  No I/O beyond writing log lines, no state beyond the log
 * settings and the pid; every other layer may use it, it uses none of
 * them.
 *
 * Layers, lowest first (DESIGN.md "Layout"): base, runtime, net, db, mail,
 * auth, store, smtp; main.c and localserve.c wire them together.  Each
 * layer has one internal header like this one and includes only its own
 * and those of the layers below it.
 *
 * Names here carry their area as prefix without "gn_", so the linker
 * version script (gn_* only) keeps them out of the exported ABI.
 */
#ifndef GANNET_BASE_INTERNAL_H
#define GANNET_BASE_INTERNAL_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <gannet/module.h>
#include <gannet/mem.h>
#include <gannet/log.h>

/* ---- the process (pid.c) ---- */

/* This process's id without a system call each time (a child of fork()
 * reads its own). */
pid_t base_pid(void);

/* ---- log (log.c) ---- */

void log_init(const char *ident);
/* destination "stderr" or "syslog". */
void log_set_destination(const char *destination);
/* area NULL sets the global level. */
void log_set_level(const char *area, enum gn_log_level level);
/* Drops every line above level, whatever log.level and log.levels say:
 * the command line (core/main.c) keeps info lines out of a CLI command's
 * output unless asked for them with -v. */
void log_set_ceiling(enum gn_log_level level);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *name);

/* ---- text helpers (text.c) ---- */

/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);
/* Writes 2 * len lower-case hex digits and a NUL to out. */
void hex_encode(char *out, const unsigned char *in, size_t len);
/* The same into a string from pool. */
char *hex_encode_pool(struct gn_pool *pool, const unsigned char *in, size_t len);
/* Decodes exactly len hex digits (either case) into out (len / 2 bytes).
 * Returns 0, or -1 when len is odd or a character is no hex digit. */
int hex_decode(unsigned char *out, const char *in, size_t len);

/* s[0..len) cut to at most max bytes (never inside a UTF-8 sequence) with
 * every control character (C0, DEL, C1) and every byte that is not valid
 * UTF-8 replaced by '?': text from outside made safe to store and show.
 * From pool, NUL-terminated. */
char *text_clean(struct gn_pool *pool, const char *s, size_t len, size_t max);

#endif
