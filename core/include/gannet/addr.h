/*
 * gannet/addr.h: email addresses and PRECIS password preparation.
 *
 * One parsed, normalised form for every address, whichever way it came in:
 *
 *   - the localpart is the localpart's value (quotes and backslash escapes
 *     removed), Unicode NFC (RFC 6531/6532 allow UTF-8), its case kept as
 *     given: RFC 5321 2.4 says localparts are case-sensitive;
 *   - the domain is IDNA2008 (libidn2, UTS #46 non-transitional mapping, so
 *     upper case and NFD input are accepted) in A-label form, lower case,
 *     with the U-label form kept for display; or an address literal,
 *     "[192.0.2.1]" or "[IPv6:2001:db8::1]" (inet_ntop's canonical form).
 *
 * So `"é"@Bücher.Example` with é precomposed, `e\u0301@xn--bcher-kva.example`
 * and `é@BÜCHER.example` all parse to the same struct and compare equal with
 * gn_addr_equal().  Every gn_addr satisfies the limits of RFC 5321 4.5.3.1:
 * localpart at most 64 octets, domain at most 255, the whole address at most
 * 254 (so that "<" address ">" fits the 256 octets of a path); the localpart
 * and domain are measured in their canonical form.  (Reverse paths parsed
 * with GN_ADDR_PATH_LONG_LOCALPART are the exception: longer localparts,
 * below.)
 *
 * Memory: everything returned comes from the struct gn_pool the caller passes
 * (error strings too, or they are static), and lives as long as the pool.
 * Nothing here keeps state: every function may be called from any process
 * and phase, and concurrently on different pools.
 *
 * Errors are short English phrases for protocol replies and logs
 * ("localpart too long", "invalid character in domain"); they never contain
 * the input itself.
 */
#ifndef GANNET_ADDR_H
#define GANNET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An address.  Frozen on purpose (its size is part of ABI 1.0 forever):
 * modules read it everywhere and may build one to pass to the core, and an
 * RFC 5321 Mailbox is a localpart and a domain, nothing more, so there is
 * nothing to add.  Anything else about an address (a display name, where
 * it came from) belongs in the struct that carries the address. */
struct gn_addr {
	/* The localpart's value: unquoted, UTF-8 NFC, case as given.  May be
	 * "" (from `""@example.com`) and may contain any printable character
	 * (from a quoted localpart); never a control character. */
	const char *localpart;
	/* A-labels, lower case ("xn--bcher-kva.example"), or an address literal
	 * in brackets.  "" only for the bare <Postmaster> of
	 * gn_addr_parse_path(). */
	const char *domain;
	/* For display: U-labels ("bücher.example"); equal to domain when the
	 * domain is ASCII or a literal. */
	const char *domain_utf8;
};

/* Parses an address "localpart@domain" (RFC 5321 4.1.2 Mailbox with the
 * UTF-8 of RFC 6531), the whole of s[0..len).  The localpart is a dot-string
 * or a quoted string; as a deliberate leniency (real senders such as some
 * Japanese mobile carriers use them) dot-strings may have leading, trailing
 * or doubled dots; such localparts are written quoted in canonical form.
 * No comments, no surrounding whitespace, no angle brackets.
 * Returns 0 and *addr_r, or -1 with *error_r. */
int gn_addr_parse(struct gn_pool *pool, const char *s, size_t len,
		  struct gn_addr **addr_r, const char **error_r);

/* Flags for gn_addr_parse_path(). */
#define GN_ADDR_PATH_NULL	0x1u	/* accept the null path "<>" (MAIL FROM) */
#define GN_ADDR_PATH_POSTMASTER	0x2u	/* accept "<Postmaster>" without domain (RCPT TO, RFC 5321 4.1.1.3) */
#define GN_ADDR_PATH_ASCII	0x4u	/* reject non-ASCII: the client did not ask for SMTPUTF8 (RFC 6531 3.4) */
#define GN_ADDR_PATH_NO_BRACKETS 0x8u	/* also accept a path without "<" ">" (ends at a space or the end), as
					   some broken clients send; the address then ends at the first space */
#define GN_ADDR_PATH_LONG_LOCALPART 0x10u /* a reverse path (MAIL FROM): the localpart may have up to
					   GN_ADDR_LONG_LOCALPART_MAX octets and the path up to
					   GN_ADDR_LONG_PATH_MAX, since SRS and VERP return paths are
					   longer than RFC 5321 4.5.3.1.1 allows and 4.5.3.1 asks servers
					   not to enforce its limits where they can avoid it */

/* The limits under GN_ADDR_PATH_LONG_LOCALPART: room for an SRS or VERP
 * localpart that holds a whole address (64 + 1 + 255) and a tag. */
#define GN_ADDR_LONG_LOCALPART_MAX 400
#define GN_ADDR_LONG_PATH_MAX 512

/* Parses an RFC 5321 4.1.2 Reverse-path or Forward-path at the start of
 * s[0..len): "<" [ A-d-l ":" ] Mailbox ">".  A source route ("<@a,@b:x@y>")
 * is accepted and ignored (RFC 5321 4.1.1.3 and appendix C).  The path,
 * including its brackets, may be at most 256 octets (RFC 5321 4.5.3.1.3).
 *
 * used_r: when not NULL, receives the number of bytes the path took (the
 * caller goes on with the parameters after it); when NULL, the path must be
 * the whole of s.
 *
 * Returns 1 and *addr_r for an address; 0 for the null path "<>" (only with
 * GN_ADDR_PATH_NULL; *addr_r is set to NULL); 2 for a bare "<Postmaster>" in
 * any case (only with GN_ADDR_PATH_POSTMASTER; *addr_r has localpart
 * "postmaster" and domain ""); -1 with *error_r on a syntax error. */
int gn_addr_parse_path(struct gn_pool *pool, const char *s, size_t len,
		       unsigned flags, struct gn_addr **addr_r, size_t *used_r,
		       const char **error_r);

/* Builds an address from a localpart value (unquoted, as stored in a
 * database) and a domain (ASCII, A-labels, U-labels, or an address literal),
 * checking and normalising both exactly like the parsers.
 * Returns 0 and *addr_r, or -1 with *error_r. */
int gn_addr_from_parts(struct gn_pool *pool, const char *localpart,
		       const char *domain, struct gn_addr **addr_r,
		       const char **error_r);

/* Checks and normalises a domain name (no address literal): IDNA2008 to
 * A-labels in lower case (*ascii_r) and U-labels (*utf8_r); either output
 * pointer may be NULL.  For domain configuration and lookups.
 * Returns 0, or -1 with *error_r. */
int gn_addr_parse_domain(struct gn_pool *pool, const char *s, size_t len,
			 const char **ascii_r, const char **utf8_r,
			 const char **error_r);

/* Whether two addresses are the same: localparts byte for byte (both NFC;
 * case-sensitive) and domains (both lower-case A-labels). */
bool gn_addr_equal(const struct gn_addr *a, const struct gn_addr *b);

/* The address with its localpart lower-cased for lookups, the way hosting
 * providers and mox (which lower-cases localparts unless a domain is set to
 * be case-sensitive) treat addresses: "John.Doe@x" finds "john.doe@x".
 * Unicode full lower-casing (libunistring u8_tolower, no language
 * tailoring), followed by NFC; this is lower-casing, not case folding, so
 * "ß" stays "ß" and does not become "ss".  Returns addr itself when it is
 * already lower case. */
struct gn_addr *gn_addr_fold(struct gn_pool *pool, const struct gn_addr *addr);

/* The localpart cut at the first occurrence of any of the catchall
 * separators (each code point of the UTF-8 string separators is one; "+-"
 * means "+" or "-"): user+tag@example.com gives user@example.com.  A
 * localpart that starts with a separator ("+tag@x") is left alone, as is
 * every address when separators is NULL or "".  Returns addr itself when
 * nothing is cut, else a new address from pool. */
struct gn_addr *gn_addr_strip_catchall(struct gn_pool *pool,
				       const struct gn_addr *addr,
				       const char *separators);

/* The canonical form: localpart (NFC, quoted only when it is not a valid
 * dot-string, with "\" before '"' and '\') "@" A-label domain.  For storage,
 * logs and comparison as strings.  The bare postmaster gives "postmaster". */
char *gn_addr_to_string(struct gn_pool *pool, const struct gn_addr *addr);

/* The same with the U-label domain, for display to people. */
char *gn_addr_to_display(struct gn_pool *pool, const struct gn_addr *addr);

/* Whether the localpart is non-ASCII, so that sending to or from the address
 * needs SMTPUTF8 (RFC 6531); the domain never does (A-labels exist). */
bool gn_addr_needs_smtputf8(const struct gn_addr *addr);

/* Whether the NUL-terminated s is an address already in canonical form (as
 * login addresses must be).  Returns 1 when it is; 0 when it is a valid
 * address in another form, with *canonical_r (may be NULL) set to the
 * canonical form; -1 when it is no address, with *error_r. */
int gn_addr_is_canonical(struct gn_pool *pool, const char *s,
			 const char **canonical_r, const char **error_r);

/* ---- RFC 5322 address headers ---- */

enum gn_addr_item_kind {
	GN_ADDR_MAILBOX = 0,
	GN_ADDR_GROUP_START,	/* "name:" of a group (RFC 5322 3.4) */
	GN_ADDR_GROUP_END,	/* its ";" (implied at the end when missing) */
};

/* One element of an address header.  Allocated by the core only and handed
 * out by pointer (never as an array), read-only for modules: members may
 * be added at the end. */
struct gn_addr_item {
	enum gn_addr_item_kind kind;
	/* MAILBOX: the display name decoded to UTF-8 (RFC 2047 encoded words,
	 * also inside quotes, as mail clients do), "" when there is none; an
	 * old-style "x@y (Name)" gives the comment's text.
	 * GROUP_START: the group's name, decoded.  GROUP_END: "". */
	const char *name;
	/* The same without RFC 2047 decoding: quotes and escapes removed,
	 * comments dropped, white space collapsed to single spaces (what IMAP
	 * ENVELOPE shows). */
	const char *name_raw;
	/* MAILBOX: the address, or NULL when this mailbox did not parse. */
	struct gn_addr *addr;
	/* MAILBOX: the mailbox's text as in the header, white space trimmed. */
	const char *text;
	/* MAILBOX with addr == NULL: why; else NULL. */
	const char *error;
	/* MAILBOX inside a group: the group's decoded name; else NULL. */
	const char *group;
};

/* Filled by gn_addr_parse_header() in the caller's memory.  Frozen on
 * purpose: a count and an array of pointers, which will do for any later
 * item (items are pointed to, so their size is free to grow). */
struct gn_addr_list {
	struct gn_addr_item **items;	/* count pointers, from the pool */
	size_t count;
};

/* Parses the value of an address header (From, Sender, Reply-To, To, Cc,
 * Bcc, ...): RFC 5322 3.4 address-list with groups, display names of atoms,
 * quoted strings and comments, the UTF-8 of RFC 6532, and the obsolete forms
 * of RFC 5322 4.4 that real mail uses: routes in angle addresses, white space
 * and comments around dots, empty list elements, periods in display names.
 * Leniently also unquoted specials in display names ("a@b.c <a@b.c>").
 * value may be folded (CRLF or LF followed by white space); a line break
 * not followed by white space, or a NUL, makes the mailbox containing it
 * invalid.
 *
 * Every mailbox is listed, those that do not parse with addr == NULL and an
 * error, so one bad address does not hide the others.  Returns 0 when all
 * parsed, -1 when at least one did not (*error_r: the first problem).
 * *list_r is filled in both cases. */
int gn_addr_parse_header(struct gn_pool *pool, const char *value, size_t len,
			 struct gn_addr_list *list_r, const char **error_r);

/* ---- PRECIS (RFC 8264, RFC 8265) ---- */

/* Prepares and enforces a password with the OpaqueString profile (RFC 8265
 * 4.2): non-ASCII spaces (general category Zs) become U+0020, then NFC, then
 * the string must hold only code points the FreeformClass (RFC 8264 4.3)
 * allows, and must not be empty.  No width or case mapping.
 *
 * The FreeformClass is decided with libunistring's Unicode data (its
 * version, not the latest Unicode: code points assigned later count as
 * unassigned and are refused): refused are unassigned code points, controls
 * (Cc), default-ignorable and noncharacter code points, old Hangul jamo,
 * private use, surrogates, line and paragraph separators and other format
 * characters (Cf), and the DISALLOWED exceptions of RFC 5892 2.6.  The
 * CONTEXTO rules of RFC 5892 appendix A are applied.  Approximation: for
 * the CONTEXTJ code points ZWNJ and ZWJ only the virama rule is checked, so
 * ZWNJ in a joining context (Arabic script) without a virama is refused.
 *
 * Same input, same output: apply it both when setting and when checking a
 * password.  Returns 0 and *out_r, a NUL-terminated string allocated with
 * gn_malloc (the caller wipes and gn_free()s it), or -1 with a static
 * *error_r that never contains the password. */
int gn_precis_opaque(const char *in, size_t len, char **out_r,
		     const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
