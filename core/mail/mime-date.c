/*
 * core/mail/mime-date.c: dates of header fields (RFC 5322 3.3, with the
 * obsolete forms of 4.3) to time_t: gn_mime_parse_date.
 */
#include "mail/internal.h"

#include <string.h>

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01. */
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

struct date_lex {
	const char *s, *end;
};

static void date_skip(struct date_lex *l)
{
	struct mime_lex x = { l->s, l->end };
	mime_lex_cfws(&x);
	l->s = x.s;
}

static int date_number(struct date_lex *l, int max_digits, int *digits_r)
{
	int v = 0, n = 0;
	while (l->s < l->end && *l->s >= '0' && *l->s <= '9' && n < max_digits) {
		v = v * 10 + (*l->s - '0');
		l->s++;
		n++;
	}
	*digits_r = n;
	return v;
}

static size_t date_word(struct date_lex *l, char *w, size_t wsize)
{
	size_t n = 0;
	while (l->s < l->end && ((*l->s >= 'a' && *l->s <= 'z') || (*l->s >= 'A' && *l->s <= 'Z'))) {
		if (n + 1 < wsize)
			w[n++] = (char)(*l->s | 0x20);
		l->s++;
	}
	w[n] = '\0';
	return n;
}

int gn_mime_parse_date(const char *value, size_t len, time_t *date_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	struct date_lex l = { value, value + len };
	char w[16];
	int nd;
	date_skip(&l);
	/* [day-of-week ","]: RFC 5322 4.3 allows CFWS around the comma. */
	if (l.s < l.end && !(*l.s >= '0' && *l.s <= '9')) {
		if (date_word(&l, w, sizeof(w)) < 3)
			return 0;
		date_skip(&l);
		if (l.s < l.end && *l.s == ',')
			l.s++;
		date_skip(&l);
	}
	int day = date_number(&l, 2, &nd);
	if (nd == 0 || day < 1 || day > 31)
		return 0;
	date_skip(&l);
	if (l.s < l.end && *l.s == '-')	/* "1-Jan-2024" as some write it */
		l.s++;
	if (date_word(&l, w, sizeof(w)) < 3)
		return 0;
	const char *mp = NULL;
	for (int i = 0; i < 12 && mp == NULL; i++)
		if (memcmp(months + 3 * i, w, 3) == 0)
			mp = months + 3 * i;
	if (mp == NULL)
		return 0;
	unsigned month = (unsigned)((mp - months) / 3 + 1);
	date_skip(&l);
	if (l.s < l.end && *l.s == '-')
		l.s++;
	int year = date_number(&l, 4, &nd);
	if (nd < 2)
		return 0;
	/* RFC 5322 4.3: two digits: 00-49 are 20xx, 50-99 19xx; three: +1900. */
	if (nd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (nd == 3)
		year += 1900;
	date_skip(&l);
	int hour = date_number(&l, 2, &nd);
	if (nd == 0 || hour > 23)
		return 0;
	date_skip(&l);
	if (l.s >= l.end || *l.s != ':')
		return 0;
	l.s++;
	date_skip(&l);
	int minute = date_number(&l, 2, &nd);
	if (nd == 0 || minute > 59)
		return 0;
	int second = 0;
	date_skip(&l);
	if (l.s < l.end && *l.s == ':') {
		l.s++;
		date_skip(&l);
		second = date_number(&l, 2, &nd);
		if (nd == 0 || second > 60)
			return 0;
		date_skip(&l);
	}
	long offset = 0;	/* seconds east of UTC */
	if (l.s < l.end && (*l.s == '+' || *l.s == '-')) {
		int sign = *l.s == '-' ? -1 : 1;
		l.s++;
		int z = date_number(&l, 4, &nd);
		if (nd != 4 || z % 100 > 59)
			return 0;
		offset = sign * ((z / 100) * 3600L + (z % 100) * 60L);
	} else if (l.s < l.end) {
		(void)date_word(&l, w, sizeof(w));
		/* RFC 5322 4.3: obs-zone. */
		static const struct {
			const char *name;
			int hours;
		} zones[] = {
			{ "ut", 0 }, { "gmt", 0 }, { "utc", 0 }, { "z", 0 },
			{ "est", -5 }, { "edt", -4 }, { "cst", -6 }, { "cdt", -5 },
			{ "mst", -7 }, { "mdt", -6 }, { "pst", -8 }, { "pdt", -7 },
		};
		/* Military zones: RFC 5322 4.3 says to read them as -0000
		 * (their sign was defined backwards), and so is any other
		 * name not in the table. */
		for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
			if (strcmp(w, zones[i].name) == 0)
				offset = zones[i].hours * 3600L;
	}
	/* Anything after the zone (a comment, "(CET)") is ignored. */
	if (second == 60)
		second = 59;
	if (day > 28) {
		static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
		if (day > mdays[month - 1] || (month == 2 && day == 29 && !leap))
			return 0;
	}
	long long t = days_from_civil(year, month, (unsigned)day) * 86400LL + hour * 3600LL +
		      minute * 60LL + second - offset;
	if ((long long)(time_t)t != t)
		return 0;
	*date_r = (time_t)t;
	return 1;
}
