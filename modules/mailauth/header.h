/*
 * modules/mailauth/header.h: the end of a message's header section as the
 * message arrives in chunks (inbound.c keeps the header section to look
 * for forged fields and to read From, and only it).
 */
#ifndef MAILAUTH_HEADER_H
#define MAILAUTH_HEADER_H

#include <stddef.h>

/* Where the header section ends in the bytes kept so far (kept, n of
 * them, in which it did not end) followed by the next chunk (buf, len):
 * the offset, in those bytes as one, just past the header section's last
 * field and its CRLF, which is where the empty line (CRLF) that ends it
 * starts (RFC 5322 2.1; 0 for a message that starts with the empty
 * line).  SIZE_MAX when it does not end in them. */
size_t mailauth_header_end(const char *kept, size_t n, const char *buf, size_t len);

#endif
