/*
 * modules/imap/decode.c: undoing a Content-Transfer-Encoding (RFC 2045 6)
 * for FETCH BINARY, in chunks of any size and with any boundaries: the
 * state between chunks is a few bits of base64, a pending "=" escape, and
 * white space that may end a line.  Never fails: bytes that break an
 * encoding's rules are passed on or skipped as RFC 2045 suggests, so a
 * damaged attachment still comes through.  No I/O, no allocation but the
 * output buffer's (t/fuzz/fuzz_imap_decode.c feeds it garbage).
 */
#include "imap.h"

#include <string.h>

enum {
	QP_TEXT = 0,
	QP_EQ,		/* after "=" */
	QP_EQ_HEX,	/* after "=" and one hex digit */
	QP_EQ_WS,	/* after "=" and white space: a soft line break with
			   trailing space (RFC 2045 6.7 rule 3) */
	QP_EQ_CR,	/* after "=" (and white space) and CR */
};

void imap_decoder_init(struct imap_decoder *d, enum imap_cte cte)
{
	memset(d, 0, sizeof(*d));
	d->cte = cte;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')	/* not allowed, but sent (RFC 2045 6.7 (1)) */
		return c - 'a' + 10;
	return -1;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* White space held back: it is dropped when the line ends after it
 * (RFC 2045 6.7 rule 3), written when anything else follows. */
static void qp_flush_ws(struct imap_decoder *d, struct gn_buf *out)
{
	if (d->n_ws > 0)
		(void)gn_buf_append(out, d->ws, d->n_ws);
	d->n_ws = 0;
}

static void qp_byte(struct imap_decoder *d, unsigned char c, struct gn_buf *out)
{
	switch (d->state) {
	case QP_EQ:
		if (hexval(c) >= 0) {
			d->hex = c;
			d->state = QP_EQ_HEX;
		} else if (c == ' ' || c == '\t') {
			d->state = QP_EQ_WS;
			d->ws[d->n_ws++] = (char)c;	/* empty since the "=" */
		} else if (c == '\r') {
			d->state = QP_EQ_CR;
		} else if (c == '\n') {
			d->state = QP_TEXT;	/* a soft line break */
		} else {
			/* "=" that starts nothing: kept as it is (RFC 2045
			 * 6.7, note (2)). */
			(void)gn_buf_append(out, "=", 1);
			d->state = QP_TEXT;
			qp_byte(d, c, out);
		}
		return;
	case QP_EQ_HEX:
		d->state = QP_TEXT;
		if (hexval(c) >= 0) {
			unsigned char v = (unsigned char)(hexval(d->hex) << 4 | hexval(c));
			(void)gn_buf_append(out, &v, 1);
		} else {
			(void)gn_buf_append(out, "=", 1);
			(void)gn_buf_append(out, &d->hex, 1);
			qp_byte(d, c, out);
		}
		return;
	case QP_EQ_WS:
		if ((c == ' ' || c == '\t') && d->n_ws < sizeof(d->ws)) {
			d->ws[d->n_ws++] = (char)c;
			return;
		}
		if (c == '\r') {
			d->state = QP_EQ_CR;
			return;
		}
		d->state = QP_TEXT;
		if (c == '\n') {
			d->n_ws = 0;	/* a soft line break */
			return;
		}
		/* "=" and white space inside a line: no encoding, both
		 * stay. */
		(void)gn_buf_append(out, "=", 1);
		qp_flush_ws(d, out);
		qp_byte(d, c, out);
		return;
	case QP_EQ_CR:
		/* "=" (white space) CR: a soft line break, with or without
		 * its LF. */
		d->state = QP_TEXT;
		d->n_ws = 0;
		if (c == '\n')
			return;
		qp_byte(d, c, out);
		return;
	default:
		break;
	}
	if (d->cr) {
		/* A CR seen before this byte. */
		d->cr = false;
		if (c == '\n') {
			d->n_ws = 0;
			(void)gn_buf_append(out, "\r\n", 2);
			return;
		}
		qp_flush_ws(d, out);
		(void)gn_buf_append(out, "\r", 1);
	}
	if (c == ' ' || c == '\t') {
		if (d->n_ws == sizeof(d->ws))
			qp_flush_ws(d, out);	/* a very long run: kept */
		d->ws[d->n_ws++] = (char)c;
	} else if (c == '\r') {
		d->cr = true;
	} else if (c == '\n') {
		d->n_ws = 0;
		(void)gn_buf_append(out, "\n", 1);
	} else if (c == '=') {
		qp_flush_ws(d, out);
		d->state = QP_EQ;
	} else {
		qp_flush_ws(d, out);
		(void)gn_buf_append(out, &c, 1);
	}
}

void imap_decode(struct imap_decoder *d, const void *data, size_t len, struct gn_buf *out)
{
	const unsigned char *in = data;
	switch (d->cte) {
	case IMAP_CTE_BASE64:
		for (size_t i = 0; i < len; i++) {
			int v = b64val(in[i]);
			if (v < 0) {
				/* Padding ends a group: what is left over
				 * is no byte.  Anything else outside the
				 * alphabet is ignored (RFC 2045 6.8). */
				if (in[i] == '=')
					d->nbits = 0;
				continue;
			}
			d->bits = (d->bits << 6 | (unsigned)v) & 0xffffu;
			d->nbits += 6;
			if (d->nbits >= 8) {
				d->nbits -= 8;
				unsigned char c = (unsigned char)(d->bits >> d->nbits);
				(void)gn_buf_append(out, &c, 1);
			}
		}
		return;
	case IMAP_CTE_QP:
		for (size_t i = 0; i < len; i++)
			qp_byte(d, in[i], out);
		return;
	default:
		(void)gn_buf_append(out, in, len);
		return;
	}
}

void imap_decode_finish(struct imap_decoder *d, struct gn_buf *out)
{
	if (d->cte != IMAP_CTE_QP)
		return;
	/* The end of the body ends its last line: trailing white space
	 * goes, an "=" that started nothing stays. */
	if (d->state == QP_EQ)
		(void)gn_buf_append(out, "=", 1);
	else if (d->state == QP_EQ_HEX) {
		(void)gn_buf_append(out, "=", 1);
		(void)gn_buf_append(out, &d->hex, 1);
	}
	if (d->cr)
		(void)gn_buf_append(out, "\r", 1);
	d->state = QP_TEXT;
	d->cr = false;
	d->n_ws = 0;
}
