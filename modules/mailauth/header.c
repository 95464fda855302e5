/*
 * modules/mailauth/header.c: the end of a message's header section as the
 * message arrives in chunks (header.h).
 */
#include "header.h"

#include <stdint.h>
#include <string.h>

/* The byte at k of kept (n bytes) followed by buf. */
static char byte_at(const char *kept, size_t n, const char *buf, size_t k)
{
	return k < n ? kept[k] : buf[k - n];
}

size_t mailauth_header_end(const char *kept, size_t n, const char *buf, size_t len)
{
	size_t total = n + len;
	if (total >= 2 && byte_at(kept, n, buf, 0) == '\r' && byte_at(kept, n, buf, 1) == '\n')
		return 0;
	/* Across the two: a CRLF CRLF that starts in the last three kept
	 * bytes (one that starts earlier was looked for with them). */
	for (size_t i = n >= 3 ? n - 3 : 0; i < n && i + 3 < total; i++)
		if (byte_at(kept, n, buf, i) == '\r' && byte_at(kept, n, buf, i + 1) == '\n' &&
		    byte_at(kept, n, buf, i + 2) == '\r' && byte_at(kept, n, buf, i + 3) == '\n')
			return i + 2;
	const char *e = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
	return e != NULL ? n + (size_t)(e - buf) + 2 : SIZE_MAX;
}
