/* shmkit(1) and shmkit bench — the one writer of JSON values, and the text escape of
 * names, over one UTF-8 decoder. A segment name is any bytes but NUL and '/', and a
 * System V name comes from a header that any writer of the segment controls, so a name
 * may hold newlines, terminal escapes or bytes that are not UTF-8. One decoder serves
 * both outputs, so that JSON and text never disagree about which bytes are characters:
 *   JSON: valid UTF-8 kept, control characters as \uXXXX, every byte that is not part
 *     of valid UTF-8 as \udcXX (XX = the byte; Python's "surrogateescape"), which a
 *     reader turns back into the very byte. Valid UTF-8 never encodes U+DC80..U+DCFF,
 *     so the escape cannot be confused with a character of the name.
 *   Text: valid UTF-8 kept, backslash as \\, newline, tab and carriage return as \n,
 *     \t, \r, any other control character and every byte that is not valid UTF-8 as
 *     \xXX, so that a name can neither forge a row nor drive the terminal. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 if the byte at p does not
 * start one. Overlong forms, surrogates and code points past U+10FFFF are invalid, as
 * RFC 3629 says; *cp receives the code point. */
static size_t utf8_seq(const unsigned char *p, unsigned *cp)
{
	unsigned c = p[0], n, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80, c &= 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000, c &= 0x07;
	else
		return 0; /* a continuation byte, C0/C1 (always overlong) or F5..FF */
	/* The terminating NUL is not a continuation byte, so this never reads past it. */
	for (unsigned i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* C0, DEL and C1: characters that move the cursor or start terminal sequences. */
static int is_control(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

void shmkit__json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	while (*p) {
		unsigned cp;
		size_t n = utf8_seq(p, &cp);
		if (n == 0) {
			fprintf(f, "\\udc%02x", *p);
			p++;
			continue;
		}
		if (cp == '"' || cp == '\\')
			fprintf(f, "\\%c", (char)cp);
		else if (cp == '\n')
			fputs("\\n", f);
		else if (cp == '\t')
			fputs("\\t", f);
		else if (is_control(cp))
			fprintf(f, "\\u%04x", cp);
		else
			fwrite(p, 1, n, f);
		p += n;
	}
	fputc('"', f);
}

void shmkit__json_num(FILE *f, double v)
{
	/* JSON has no NaN or infinity: a figure that is missing is null. */
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

size_t shmkit__text_str(char *out, size_t cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0;
	while (*p) {
		char esc[12] = "";
		unsigned cp = 0;
		size_t n = utf8_seq(p, &cp);
		if (n == 0) {
			snprintf(esc, sizeof esc, "\\x%02x", *p);
			n = 1;
		} else if (cp == '\\') {
			strcpy(esc, "\\\\");
		} else if (cp == '\n') {
			strcpy(esc, "\\n");
		} else if (cp == '\t') {
			strcpy(esc, "\\t");
		} else if (cp == '\r') {
			strcpy(esc, "\\r");
		} else if (is_control(cp) && n == 1) {
			snprintf(esc, sizeof esc, "\\x%02x", *p);
		} else if (is_control(cp)) {
			/* A C1 character, valid UTF-8: both of its bytes, escaped. */
			snprintf(esc, sizeof esc, "\\x%02x\\x%02x", p[0], p[1]);
		}
		const char *piece = esc[0] ? esc : (const char *)p;
		size_t m = esc[0] ? strlen(esc) : n;
		/* Never cut an escape or a character in two: stop before what does not fit. */
		if (len + m >= cap)
			break;
		memcpy(out + len, piece, m);
		len += m;
		p += n;
	}
	if (cap)
		out[len] = '\0';
	return len;
}
