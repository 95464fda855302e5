/*
 * modules/smtp/localserve.h: the failures `gannet localserve` simulates
 * on request (modules/smtp/localserve.c).
 */
#ifndef SMTP_LOCALSERVE_H
#define SMTP_LOCALSERVE_H

#include <stdbool.h>

/* The failure a localpart asks for. */
struct ls_error {
	int code;			/* 400 to 599 */
	const char *enhanced;		/* static */
	const char *text;		/* static */
	bool timeout;			/* answer only after the delay */
};

/* Whether localpart asks for a failure (see localserve.c), filling *e. */
bool smtp_localserve_error(const char *localpart, struct ls_error *e);
/* Whether s starts with prefix, in any case. */
bool smtp_localserve_prefix(const char *s, const char *prefix);

#endif
