/* test_json: the JSON writer and the text escape that the tool and the benchmark share
 * (tools/json.c), byte for byte: valid UTF-8 (1 to 4 bytes) passes through, each byte
 * that is not valid UTF-8 (stray continuation, overlong form, surrogate, past U+10FFFF,
 * truncated sequence, F5..FF) becomes \udcXX, control characters (C0, DEL, C1) are
 * escaped, quotes and backslashes too; numbers are %.6g or null. The text escape makes
 * the same decision about every byte and never cuts a character or an escape. */
#include <math.h>

#include "common.h"
#include "json.h"

/* What f wrote, as a NUL-terminated string the caller frees. */
static char *json_of(const char *s)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	CHECK(f != NULL);
	shmkit__json_str(f, s);
	CHECK_EQ(fclose(f), 0);
	return out;
}

static char *num_of(double v)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	CHECK(f != NULL);
	shmkit__json_num(f, v);
	CHECK_EQ(fclose(f), 0);
	return out;
}

static int n_fail;

#define EXPECT_STR(what, got, want)                                                        \
	do {                                                                               \
		if (strcmp((got), (want)) != 0) {                                          \
			fprintf(stderr, "%s:%d: %s: got [%s], want [%s]\n", __FILE__, __LINE__, \
				(what), (got), (want));                                    \
			n_fail++;                                                          \
		}                                                                          \
	} while (0)

static void json_is(const char *in, const char *want)
{
	char *got = json_of(in);
	EXPECT_STR("json", got, want);
	free(got);
}

static void text_is(const char *in, const char *want)
{
	char out[256];
	size_t n = shmkit__text_str(out, sizeof out, in);
	CHECK_EQ(n, strlen(out));
	EXPECT_STR("text", out, want);
}

static void test_json_valid_utf8(void)
{
	json_is("", "\"\"");
	json_is("plain /name-1", "\"plain /name-1\"");
	/* Two, three and four bytes, and the last code point of each length. */
	json_is("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	json_is("\xdf\xbf", "\"\xdf\xbf\"");
	json_is("\xe2\x82\xac \xef\xbf\xbd", "\"\xe2\x82\xac \xef\xbf\xbd\"");
	json_is("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
	json_is("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");
	/* Around the surrogates: U+D7FF and U+E000 are characters. */
	json_is("\xed\x9f\xbf\xee\x80\x80", "\"\xed\x9f\xbf\xee\x80\x80\"");
}

static void test_json_invalid_bytes(void)
{
	json_is("bad\xff", "\"bad\\udcff\"");
	json_is("\x80", "\"\\udc80\"");			  /* a lone continuation byte */
	json_is("\xc0\x80", "\"\\udcc0\\udc80\"");	  /* overlong NUL */
	json_is("\xc1\xbf", "\"\\udcc1\\udcbf\"");	  /* overlong, C1 lead */
	json_is("\xe0\x80\xaf", "\"\\udce0\\udc80\\udcaf\""); /* overlong 3-byte */
	json_is("\xf0\x8f\xbf\xbf", "\"\\udcf0\\udc8f\\udcbf\\udcbf\""); /* overlong 4-byte */
	json_is("\xed\xa0\x80", "\"\\udced\\udca0\\udc80\"");	/* U+D800, a surrogate */
	json_is("\xf4\x90\x80\x80", "\"\\udcf4\\udc90\\udc80\\udc80\""); /* past U+10FFFF */
	json_is("\xf5\xfe", "\"\\udcf5\\udcfe\"");
	/* A truncated sequence: its bytes escaped, the next character kept whole. */
	json_is("\xe2\x82x", "\"\\udce2\\udc82x\"");
	json_is("\xf0\x9f\x98", "\"\\udcf0\\udc9f\\udc98\"");
	json_is("\xc3\xc3\xa9", "\"\\udcc3\xc3\xa9\"");
}

static void test_json_controls(void)
{
	json_is("a\"b\\c", "\"a\\\"b\\\\c\"");
	json_is("l1\nl2\tx", "\"l1\\nl2\\tx\"");
	json_is("\r\x01\x1f", "\"\\u000d\\u0001\\u001f\"");
	json_is("\x7f", "\"\\u007f\"");
	json_is("\x1b[31m", "\"\\u001b[31m\"");
	json_is("\xc2\x85\xc2\x9f\xc2\xa0", "\"\\u0085\\u009f\xc2\xa0\""); /* C1; NBSP is not */
	json_is("/", "\"/\"");
	char *null = json_of(NULL);
	EXPECT_STR("json NULL", null, "null");
	free(null);
}

static void test_json_numbers(void)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {0, "0"}, {1.5, "1.5"}, {-2, "-2"}, {1234567, "1.23457e+06"}, {0.000125, "0.000125"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = num_of(cases[i].v);
		EXPECT_STR("num", got, cases[i].want);
		free(got);
	}
	const double bad[] = {NAN, INFINITY, -INFINITY};
	for (size_t i = 0; i < 3; i++) {
		char *got = num_of(bad[i]);
		EXPECT_STR("num not finite", got, "null");
		free(got);
	}
}

static void test_text(void)
{
	text_is("caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80");
	text_is("a\\b\nc\td\re", "a\\\\b\\nc\\td\\re");
	text_is("\x1b[31m\x7f", "\\x1b[31m\\x7f");
	text_is("\xc2\x85", "\\xc2\\x85");
	text_is("bad\xff\xc0\x80", "bad\\xff\\xc0\\x80");
	text_is("\xed\xa0\x80", "\\xed\\xa0\\x80");

	/* Cut short only between characters or escapes: room for "ab" and half of "é"
	 * gives "ab"; room for "a" and part of "\xff" gives "a". */
	char out[8];
	CHECK_EQ(shmkit__text_str(out, 4, "ab\xc3\xa9"), 2);
	EXPECT_STR("text cut", out, "ab");
	CHECK_EQ(shmkit__text_str(out, 4, "a\xff"), 1);
	EXPECT_STR("text cut escape", out, "a");
	CHECK_EQ(shmkit__text_str(out, 1, "abc"), 0);
	EXPECT_STR("text cap 1", out, "");
}

/* Every string of up to 3 bytes from an alphabet of awkward bytes: the JSON is what a
 * reference decoder written here says (every byte kept or escaped exactly once, in
 * order), so the writer neither drops, duplicates nor reorders a byte. */
static void test_json_exhaustive(void)
{
	static const unsigned char alpha[] = {'a', '"', '\\', '\n', 0x01, 0x7f, 0x80, 0xbf,
					      0xc2, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xed, 0xa0,
					      0xf0, 0x9f, 0xf4, 0x90, 0xff};
	const size_t na = sizeof alpha;
	unsigned checked = 0;
	for (size_t len = 1; len <= 3; len++) {
		size_t total = 1;
		for (size_t k = 0; k < len; k++)
			total *= na;
		for (size_t idx = 0; idx < total; idx++) {
			char in[4] = {0};
			size_t x = idx;
			for (size_t k = 0; k < len; k++, x /= na)
				in[k] = (char)alpha[x % na];
			char *got = json_of(in);
			/* Decode the JSON back to bytes (surrogateescape), as Python would. */
			unsigned char back[16];
			size_t nb = 0;
			const char *p = got;
			CHECK(*p == '"');
			p++;
			while (*p && *p != '"') {
				if (*p != '\\') {
					back[nb++] = (unsigned char)*p++;
					continue;
				}
				p++;
				if (*p == 'n')
					back[nb++] = '\n', p++;
				else if (*p == 't')
					back[nb++] = '\t', p++;
				else if (*p == '"' || *p == '\\')
					back[nb++] = (unsigned char)*p++;
				else {
					unsigned cp;
					CHECK(*p == 'u' && sscanf(p + 1, "%4x", &cp) == 1);
					p += 5;
					if (cp >= 0xdc80 && cp <= 0xdcff) {
						back[nb++] = (unsigned char)(cp - 0xdc00);
					} else if (cp < 0x80) {
						back[nb++] = (unsigned char)cp;
					} else { /* a C1 control, U+0080..U+009F */
						CHECK(cp >= 0x80 && cp <= 0x9f);
						back[nb++] = 0xc2;
						back[nb++] = (unsigned char)cp;
					}
				}
				CHECK(nb < sizeof back - 2);
			}
			CHECK(p[0] == '"' && p[1] == '\0');
			if (nb != len || memcmp(back, in, len) != 0) {
				fprintf(stderr, "json round trip: [%s] for %zu bytes %02x %02x %02x\n",
					got, len, (unsigned char)in[0], (unsigned char)in[1],
					(unsigned char)in[2]);
				n_fail++;
			}
			/* The raw bytes kept are valid UTF-8 with no control character:
			 * nothing a terminal or a strict parser would choke on. */
			for (const unsigned char *q = (const unsigned char *)got; *q; q++)
				CHECK(*q >= 0x20 && *q != 0x7f);
			free(got);
			checked++;
		}
	}
	printf("test_json: %u strings round-tripped\n", checked);
}

int main(void)
{
	test_json_valid_utf8();
	test_json_invalid_bytes();
	test_json_controls();
	test_json_numbers();
	test_text();
	test_json_exhaustive();
	if (n_fail) {
		fprintf(stderr, "test_json: %d failures\n", n_fail);
		return T_FAIL;
	}
	printf("test_json: ok\n");
	return T_PASS;
}
