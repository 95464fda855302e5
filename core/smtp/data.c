/*
 * core/smtp/data.c: the message, as DATA text or BDAT chunks
 * (gannet/smtp.h).
 *
 *   smtp_data_feed()   the DATA parser (RFC 5321 4.1.1.4, 4.5.2): a byte
 *                      machine kept in the session, so a read may end
 *                      anywhere; it undoes dot-stuffing and finds the end.
 *   smtp_chunk_feed()  BDAT chunk octets (RFC 3030), counted, not parsed.
 *   feed()             what both hand on: the size limit, the Received
 *                      count, then the policy's data_chunk().
 *   message_done()     the end: the engine's own refusals, else the
 *                      policy's data_end().
 *
 * Deliberate choices, with the standards they follow:
 *
 *   - SMTP smuggling: in DATA only CRLF "." CRLF ends the message (RFC 5321
 *     4.1.1.4); a bare CR or a bare LF anywhere in the message (RFC 5321
 *     2.3.8 forbids them) makes the whole message be refused with 554 5.6.0
 *     once its real end has come.  Refused, not normalised: a normalising
 *     server and the next hop could still disagree about where a message
 *     ends, and a refusal tells the sender's administrator at once.  This
 *     is the "reject" mode of Postfix's smtpd_forbid_bare_newline, except
 *     that the session goes on (only the message is refused, nothing that
 *     followed the bare line ending is read as a command).  BDAT chunks are
 *     checked the same way (BINARYMIME is not offered, so the content must
 *     be CRLF lines there too).
 *   - Text lines in DATA longer than 1000 octets (RFC 5321 4.5.3.1.6) are
 *     accepted as they are: RFC 5321 4.5.3.1 asks servers to impose no
 *     length limits where they can, the parser never buffers a line, and
 *     real mail does carry such lines.  The message size limit still holds.
 *   - A BDAT chunk larger than the whole message size limit is answered
 *     552 5.3.4 and the connection closes, since staying in step would mean
 *     reading all of it; smaller chunks that take the message over the
 *     limit are read, dropped and answered 552 5.3.4.  A BDAT whose size
 *     does not parse is answered 501 and the connection closes: the server
 *     can no longer tell where the chunk ends (RFC 3030 2).
 *   - Mail loops (RFC 5321 6.3): the "Received:" fields of the message's
 *     header are counted as the message streams by; past
 *     max_received_headers the message is refused, 554 5.4.6, at its end.
 *     A field name written with white space before its colon (RFC 5322
 *     4.5's obsolete syntax) is not counted.
 */
#include "smtp/internal.h"

#include <stdint.h>
#include <string.h>

/* ---- what DATA and BDAT hand on ---- */

/* Counts the Received fields of the header in p[0..n) (dot-unstuffed
 * message octets); stops at the end of the header. */
static void count_received(struct gn_smtp_tx *tx, unsigned max, const char *p, size_t n)
{
	static const char name[] = "received:";

	for (size_t i = 0; i < n && tx->hstate != H_BODY; i++) {
		char c = p[i];
		char lc = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;

		switch (tx->hstate) {
		case H_BOL:
			if (c == '\r') {
				tx->hstate = H_BLANK;
			} else if (c == '\n') {
				tx->hstate = H_BODY;
			} else if (lc == name[0]) {
				tx->hmatch = 1;
				tx->hstate = H_NAME;
			} else {
				tx->hstate = H_LINE;
			}
			break;
		case H_NAME:
			if (lc == name[tx->hmatch]) {
				if (++tx->hmatch == sizeof(name) - 1) {
					if (++tx->received > max)
						tx->loop = true;
					tx->hstate = H_LINE;
				}
			} else {
				tx->hstate = c == '\n' ? H_BOL : H_LINE;
			}
			break;
		case H_LINE:
			if (c == '\n')
				tx->hstate = H_BOL;
			break;
		case H_BLANK:
			/* An empty line ends the header (RFC 5322 2.1). */
			tx->hstate = c == '\n' ? H_BODY : H_LINE;
			break;
		case H_BODY:
			break;
		}
	}
}

static void feed(struct gn_smtp_session *s, const char *p, size_t n)
{
	struct gn_smtp_tx *tx = s->tx;

	if (n == 0 || tx == NULL)
		return;
	if (tx->size + n > s->srv->set.max_message_size)
		tx->too_big = true;
	tx->size += n;
	if (tx->hstate != H_BODY)
		count_received(tx, s->srv->set.max_received_headers, p, n);
	if (tx->too_big || tx->bad_newline || tx->loop || tx->chunks_stopped)
		return;
	smtp_taps_chunk(s, p, n);
	if (s->srv->policy.data_chunk != NULL &&
	    s->srv->policy.data_chunk(s, p, n, s->srv->data) < 0)
		tx->chunks_stopped = true;
}

/* The engine refuses the message: the transaction is over. */
static void message_refused(struct gn_smtp_session *s, int code, const char *enh,
			    const char *text)
{
	smtp_tx_end(s, true);
	smtp_set_state(s, smtp_idle_state(s));
	smtp_reply(s, code, enh, "%s", text);
}

/* The message is complete: refuse what the engine found wrong, or ask the
 * policy. */
static void message_done(struct gn_smtp_session *s)
{
	struct gn_smtp_tx *tx = s->tx;

	smtp_data_timer_stop(s);
	if (tx->too_big) {
		gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_too_big id=%s tx=%s size=%llu",
		       gn_conn_id(s->conn), tx->id, tx->size);
		message_refused(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	if (tx->bad_newline) {
		gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_bare_newline id=%s tx=%s remote=%s",
		       gn_conn_id(s->conn), tx->id, gn_conn_remote_ip(s->conn));
		message_refused(s, 554, "5.6.0", "Message refused: bare CR or LF found; lines "
				"must end with CRLF (RFC 5321 2.3.8, SMTP smuggling defence)");
		return;
	}
	if (tx->loop) {
		gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_mail_loop id=%s tx=%s remote=%s "
		       "received=%u", gn_conn_id(s->conn), tx->id, gn_conn_remote_ip(s->conn),
		       tx->received);
		/* RFC 5321 6.3; RFC 3463 5.4.6: routing loop detected. */
		message_refused(s, 554, "5.4.6", "Too many Received header fields: mail loop "
				"(RFC 5321 6.3)");
		return;
	}
	gn_conn_set_idle_timeout(s->conn, s->srv->set.timeout_data_term_ms);
	smtp_policy_call(s, GN_SMTP_STAGE_DATA_END);
}

/* ---- DATA (RFC 5321 4.1.1.4, 4.5.2) ---- */

/* Parses DATA text from p[0..n); returns the octets used.  Stops after the
 * end of data. */
size_t smtp_data_feed(struct gn_smtp_session *s, const char *p, size_t n)
{
	struct gn_smtp_tx *tx = s->tx;
	size_t i = 0, span = 0;	/* span: start of octets not yet fed */

	if (!s->data_started && n > 0) {
		s->data_started = true;
		gn_conn_set_idle_timeout(s->conn, s->srv->set.timeout_data_block_ms);
	}
	while (i < n) {
		char c = p[i];
		switch (s->dstate) {
		case D_BOL:
			if (c == '.') {
				/* A dot at the start of a line: feed what came
				 * before, hold the dot back. */
				feed(s, p + span, i - span);
				s->dstate = D_DOT;
				span = i + 1;
			} else if (c == '\r') {
				s->dstate = D_CR;
			} else {
				/* A bare LF here starts no line: only CRLF
				 * does, or "<CRLF><LF>.<CRLF>" would end the
				 * data where the sender's server saw text. */
				if (c == '\n')
					tx->bad_newline = true;
				s->dstate = D_TEXT;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				/* Held back too: it ends the data when LF
				 * follows, and the input may end here. */
				s->dstate = D_DOTCR;
				span = i + 1;
			} else {
				/* RFC 5321 4.5.2: the first dot of a line
				 * with more on it is dropped (already: span
				 * starts after it). */
				if (c == '\n')
					tx->bad_newline = true;	/* ".<LF>": no line end */
				s->dstate = D_TEXT;
			}
			break;
		case D_DOTCR:
			if (c == '\n') {
				/* CRLF "." CRLF: the end.  The dot and its CRLF
				 * are not part of the message. */
				i++;
				message_done(s);
				return i;
			}
			/* ".\r" and more: a bare CR (and the dot was a
			 * stuffing dot; the CR is message text). */
			tx->bad_newline = true;
			feed(s, "\r", 1);
			span = i;
			s->dstate = c == '\r' ? D_CR : D_TEXT;
			break;
		case D_TEXT:
			if (c == '\r') {
				s->dstate = D_CR;
			} else if (c == '\n') {
				tx->bad_newline = true;	/* bare LF */
			} else {
				/* The rest of the line: eight octets at a
				 * time while none is under 0x0e (CR and LF
				 * are); a word with one goes octet by octet. */
				size_t k = i + 1;
				while (k + 8 <= n) {
					uint64_t w;
					memcpy(&w, p + k, 8);
					if (((w - 0x0e0e0e0e0e0e0e0eULL) & ~w & 0x8080808080808080ULL) != 0)
						break;
					k += 8;
				}
				i = k - 1;
			}
			break;
		case D_CR:
			if (c == '\n') {
				s->dstate = D_BOL;
			} else {
				tx->bad_newline = true;	/* bare CR */
				if (c != '\r')
					s->dstate = D_TEXT;
			}
			break;
		}
		i++;
	}
	feed(s, p + span, n - span);
	return n;
}

/* ---- BDAT chunks (RFC 3030) ---- */

void smtp_chunk_discard(struct gn_smtp_session *s, int code, const char *enh,
			const char *text, enum sstate ret, bool ends_tx)
{
	s->chunk_discard = true;
	s->chunk_code = code;
	snprintf(s->chunk_enh, sizeof(s->chunk_enh), "%s", enh != NULL ? enh : "5.5.1");
	gn_free(s->chunk_text);
	s->chunk_text = gn_strdup(text != NULL ? text : "Refused");
	s->chunk_return = ret;
	s->chunk_ends_tx = ends_tx;
	smtp_set_state(s, ST_CHUNK);
}

void smtp_chunk_start(struct gn_smtp_session *s)
{
	s->chunk_discard = false;
	smtp_set_state(s, ST_CHUNK);
}

static void chunk_done(struct gn_smtp_session *s)
{
	struct gn_smtp_tx *tx = s->tx;

	if (s->chunk_discard) {
		s->chunk_discard = false;
		if (s->chunk_ends_tx)
			smtp_tx_end(s, true);
		smtp_set_state(s, s->chunk_ends_tx ? smtp_idle_state(s) : s->chunk_return);
		smtp_reply_text(s, s->chunk_code, s->chunk_enh, s->chunk_text);
		return;
	}
	if (tx->too_big) {
		message_done(s);	/* 552, transaction over */
		return;
	}
	if (!s->chunk_last) {
		smtp_set_state(s, ST_BDAT);
		smtp_reply(s, 250, "2.0.0", "%llu octets received", s->chunk_size);
		return;
	}
	if (s->last_cr)
		tx->bad_newline = true;	/* the message ends in a bare CR */
	message_done(s);
}

/* Takes chunk octets from p[0..n); returns the octets used. */
size_t smtp_chunk_feed(struct gn_smtp_session *s, const char *p, size_t n)
{
	size_t take = n < s->chunk_left ? n : (size_t)s->chunk_left;

	if (take > 0 && !s->data_started) {
		s->data_started = true;
		gn_conn_set_idle_timeout(s->conn, s->srv->set.timeout_data_block_ms);
	}
	if (!s->chunk_discard && take > 0) {
		struct gn_smtp_tx *tx = s->tx;
		/* Line endings: CRLF only (RFC 5321 2.3.8), across chunks. */
		for (size_t i = 0; i < take && !tx->bad_newline; i++) {
			if (s->last_cr && p[i] != '\n')
				tx->bad_newline = true;
			else if (!s->last_cr && p[i] == '\n')
				tx->bad_newline = true;
			s->last_cr = p[i] == '\r';
		}
		feed(s, p, take);
	}
	s->chunk_left -= take;
	if (s->chunk_left == 0)
		chunk_done(s);
	return take;
}
