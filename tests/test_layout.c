/* Segment layouts (shmkit(7), COMPATIBILITY): when a shmkit of another layout made the
 * segment, every open is refused with -EPROTO, never misread; shmkit_seg_inspect() and
 * shmkit_seg_stat() report the segment's layout words and shmkit_seg_layout() this
 * library's; the tool's error line names both. A segment "of another version" is made
 * here by rewriting the version word of one this library made, which is exactly what
 * a newer or older library would have written there.
 *
 * It also ties src/seg.c's table of the kinds' version words to the kinds themselves:
 * a fresh channel, topic and blob must carry, at the offset the table gives, the
 * version the table gives. When a kind's version changes (CHAN_VERSION in chan.c),
 * this test fails until the table says the same. */
#include <sys/wait.h>

#include "common.h"
#include "internal.h"

static const unsigned backends[2] = {0, SHMKIT_SEG_SYSV};

/* The kinds with a layout of their own, where their version word is (the data area's
 * offset; the table in src/seg.c must agree) and what the tool calls them. */
static const struct {
	unsigned kind;
	uint32_t off;
	const char *word;
} kinds[] = {
	{SHMKIT_KIND_CHAN, 8, "channel"},
	{SHMKIT_KIND_TOPIC, 8, "topic"},
	{SHMKIT_KIND_BLOB, 120, "blob"},
};

/* Creates a segment of @kind under @name and closes it (the segment stays). */
static void make(unsigned kind, const char *name, unsigned b)
{
	unsigned f = SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | b;
	if (kind == SHMKIT_KIND_CHAN) {
		shmkit_chan *ch;
		CHECK_OK(shmkit_chan_open(name, SHMKIT_CHAN_OBSERVER, 1 << 16, 0600, f, &ch));
		shmkit_chan_close(ch);
	} else if (kind == SHMKIT_KIND_TOPIC) {
		shmkit_topic *t;
		CHECK_OK(shmkit_topic_open(name, SHMKIT_TOPIC_OBSERVER, 1 << 16, 0600, f, &t));
		shmkit_topic_close(t);
	} else if (kind == SHMKIT_KIND_BLOB) {
		shmkit_blob *bl;
		CHECK_OK(shmkit_blob_open(name, 256, 0600, f, &bl));
		shmkit_blob_close(bl);
	} else {
		shmkit_seg *s;
		CHECK_OK(shmkit_seg_open(name, kind, 4096, 0600, f, &s));
		shmkit_seg_close(s);
	}
}

/* Opens @name as a handle of @kind, as a user of that kind would; closes it again. */
static int open_kind(unsigned kind, const char *name, unsigned b)
{
	int r;
	if (kind == SHMKIT_KIND_CHAN) {
		shmkit_chan *ch;
		r = shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, 0, 0, b, &ch);
		if (r == 0)
			shmkit_chan_close(ch);
	} else if (kind == SHMKIT_KIND_TOPIC) {
		shmkit_topic *t;
		r = shmkit_topic_open(name, SHMKIT_TOPIC_SUBSCRIBER, 0, 0, b, &t);
		if (r == 0)
			shmkit_topic_close(t);
	} else if (kind == SHMKIT_KIND_BLOB) {
		shmkit_blob *bl;
		r = shmkit_blob_open(name, 0, 0, b, &bl);
		if (r == 0)
			shmkit_blob_close(bl);
	} else {
		shmkit_seg *s;
		r = shmkit_seg_open(name, kind, 0, 0, b, &s);
		if (r == 0)
			shmkit_seg_close(s);
	}
	return r;
}

/* The whole object, header included, mapped without trusting it. */
static shmkit_seg *raw(const char *name, unsigned b)
{
	shmkit_seg *s;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b | SHMKIT_SEG_RAW, &s));
	CHECK(shmkit_seg_size(s) >= SHMKIT_DATA_OFF + 128); /* every version word */
	return s;
}

static void check_reserved_zero(const struct shmkit_seg_info *in)
{
	for (size_t i = 0; i < sizeof in->reserved / sizeof in->reserved[0]; i++)
		CHECK_EQ(in->reserved[i], 0);
}

/* Runs the tool (stdout discarded) and returns its first line on stderr; *status is
 * its exit status. */
static char *tool_err(const char *args, int *status)
{
	static char line[512];
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' %s 2>&1 >/dev/null", SHMKIT_TOOL, args);
	FILE *p = popen(cmd, "r");
	CHECK(p);
	line[0] = '\0';
	if (fgets(line, sizeof line, p))
		line[strcspn(line, "\n")] = '\0';
	char rest[512];
	while (fgets(rest, sizeof rest, p))
		;
	int w = pclose(p);
	*status = WIFEXITED(w) ? WEXITSTATUS(w) : 128;
	return line;
}

static void test_queries(void)
{
	CHECK_EQ(shmkit_seg_layout(SHMKIT_KIND_ANY), SHMKIT_LAYOUT);
	CHECK_EQ(shmkit_seg_layout(SHMKIT_KIND_DATA), 0);
	CHECK_EQ(shmkit_seg_layout(SHMKIT_KIND_RAW), 0);
	CHECK_EQ(shmkit_seg_layout(99), 0);
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
		CHECK(shmkit_seg_layout(kinds[k].kind) != 0);

	/* A data segment has the header's layout only; a raw object neither. */
	const char *name = t_name("data");
	make(SHMKIT_KIND_DATA, name, 0);
	struct shmkit_seg_info in;
	memset(&in, 0xa5, sizeof in);
	CHECK_OK(shmkit_seg_inspect(name, 0, &in));
	CHECK_EQ(in.kind, SHMKIT_KIND_DATA);
	CHECK_EQ(in.layout, SHMKIT_LAYOUT);
	CHECK_EQ(in.kind_layout, 0);
	check_reserved_zero(&in);
	const char *rname = t_name("raw");
	shmkit_seg *s;
	CHECK_OK(shmkit_seg_open(rname, SHMKIT_KIND_DATA, 8192, 0600,
				 SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &s));
	shmkit_seg_close(s);
	memset(&in, 0xa5, sizeof in);
	CHECK_OK(shmkit_seg_inspect(rname, 0, &in));
	CHECK_EQ(in.kind, SHMKIT_KIND_RAW);
	CHECK_EQ(in.layout, 0);
	CHECK_EQ(in.kind_layout, 0);
	check_reserved_zero(&in);
}

/* One kind on one backend: what this library writes, then a segment of another kind
 * layout, then the same segment restored. */
static void test_kind(size_t k, unsigned b)
{
	unsigned kind = kinds[k].kind;
	char tag[64];
	snprintf(tag, sizeof tag, "%s-%u", kinds[k].word, b ? 1u : 0u);
	const char *name = t_name(tag);
	uint32_t ours = shmkit_seg_layout(kind);
	make(kind, name, b);

	shmkit_seg *r = raw(name, b);
	uint32_t *word = (uint32_t *)((unsigned char *)shmkit_seg_data(r) + SHMKIT_DATA_OFF +
				      kinds[k].off);
	if (*word != ours) {
		fprintf(stderr, "test_layout: a new %s records layout %u at data offset %u, but "
				"shmkit_seg_layout() says %u: update kind_layouts[] in src/seg.c\n",
			kinds[k].word, *word, kinds[k].off, ours);
		exit(T_FAIL);
	}
	struct shmkit_seg_info in;
	CHECK_OK(shmkit_seg_inspect(name, b, &in));
	CHECK_EQ(in.kind, kind);
	CHECK_EQ(in.layout, SHMKIT_LAYOUT);
	CHECK_EQ(in.kind_layout, ours);
	check_reserved_zero(&in);
	/* The same through a handle. */
	shmkit_seg *s;
	CHECK_OK(shmkit_seg_open(name, kind, 0, 0, b, &s));
	CHECK_OK(shmkit_seg_stat(s, &in));
	CHECK_EQ(in.layout, SHMKIT_LAYOUT);
	CHECK_EQ(in.kind_layout, ours);
	shmkit_seg_close(s);
	CHECK_OK(open_kind(kind, name, b));

	/* A later library's segment: refused, and both numbers reported. */
	*word = ours + 1;
	CHECK_EQ(open_kind(kind, name, b), -EPROTO);
	CHECK_OK(shmkit_seg_inspect(name, b, &in));
	CHECK_EQ(in.kind, kind);
	CHECK_EQ(in.state, SHMKIT_STATE_READY);
	CHECK_EQ(in.layout, SHMKIT_LAYOUT);
	CHECK_EQ(in.kind_layout, ours + 1);
	/* The tool's line names both layouts. */
	const char *cmd = kind == SHMKIT_KIND_CHAN ? "recv" : kind == SHMKIT_KIND_TOPIC ? "sub" : "cat";
	char args[256], want[512];
	snprintf(args, sizeof args, "%s %s%s%s", cmd, kind == SHMKIT_KIND_BLOB ? "" : "--timeout 0 ",
		 b ? "--sysv " : "", name);
	snprintf(want, sizeof want, "shmkit %s: %s: %s layout %u, this library reads layout %u", cmd,
		 name, kinds[k].word, ours + 1, ours);
	int st;
	const char *got = tool_err(args, &st);
	if (strcmp(got, want) != 0 || st != 1) {
		fprintf(stderr, "test_layout: shmkit %s: exit %d, said\n  '%s'\nwant\n  '%s'\n", args,
			st, got, want);
		exit(T_FAIL);
	}
	/* And an earlier library's. */
	*word = ours - 1;
	CHECK_EQ(open_kind(kind, name, b), -EPROTO);
	CHECK_OK(shmkit_seg_inspect(name, b, &in));
	CHECK_EQ(in.kind_layout, ours - 1);

	/* Restored, it opens: the word alone was refused. */
	*word = ours;
	CHECK_OK(open_kind(kind, name, b));
	shmkit_seg_close(r);
}

/* The segment header of another layout: no open of any kind, no raw view by the tool;
 * inspect reports the word, and the kind as raw (nothing past the word is known). */
static void test_header(unsigned b)
{
	const char *name = t_name(b ? "hdr-sysv" : "hdr");
	make(SHMKIT_KIND_CHAN, name, b);
	shmkit_seg *r = raw(name, b);
	struct shmkit__hdr *h = shmkit_seg_data(r);
	CHECK_EQ(h->magic, SHMKIT_MAGIC);
	CHECK_EQ(h->layout, SHMKIT_LAYOUT);
	const uint32_t other = SHMKIT_LAYOUT + (1u << 24); /* the next format */
	h->layout = other;

	struct shmkit_seg_info in;
	CHECK_OK(shmkit_seg_inspect(name, b, &in));
	CHECK_EQ(in.kind, SHMKIT_KIND_RAW);
	CHECK_EQ(in.layout, other);
	CHECK_EQ(in.kind_layout, 0);
	shmkit_seg *s;
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b, &s), -EPROTO);
	CHECK_EQ(open_kind(SHMKIT_KIND_CHAN, name, b), -EPROTO);

	if (!b) {
		char args[256], want[512];
		int st;
		snprintf(args, sizeof args, "recv --timeout 0 %s", name);
		snprintf(want, sizeof want,
			 "shmkit recv: %s: segment header layout 0x%08x, this library reads layout "
			 "0x%08x",
			 name, other, SHMKIT_LAYOUT);
		const char *got = tool_err(args, &st);
		if (strcmp(got, want) != 0 || st != 1) {
			fprintf(stderr, "test_layout: shmkit %s: exit %d, said\n  '%s'\nwant\n  '%s'\n",
				args, st, got, want);
			exit(T_FAIL);
		}
		/* cat refuses rather than dumping another layout's header as raw bytes. */
		snprintf(args, sizeof args, "cat %s", name);
		snprintf(want, sizeof want,
			 "shmkit cat: %s: segment header layout 0x%08x, this library reads layout "
			 "0x%08x",
			 name, other, SHMKIT_LAYOUT);
		got = tool_err(args, &st);
		if (strcmp(got, want) != 0 || st != 1) {
			fprintf(stderr, "test_layout: shmkit %s: exit %d, said\n  '%s'\nwant\n  '%s'\n",
				args, st, got, want);
			exit(T_FAIL);
		}
	}
	h->layout = SHMKIT_LAYOUT;
	CHECK_OK(open_kind(SHMKIT_KIND_CHAN, name, b));
	shmkit_seg_close(r);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	T_RUN(test_queries());
	for (int i = 0; i < 2; i++) {
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			test_kind(k, backends[i]);
			printf("%s, %s: refused with -EPROTO, both layouts reported\n", kinds[k].word,
			       backends[i] ? "System V" : "POSIX");
		}
		test_header(backends[i]);
		printf("segment header, %s: refused with -EPROTO, both layouts reported\n",
		       backends[i] ? "System V" : "POSIX");
	}
	printf("test_layout: ok (header 0x%08x, channel %u, topic %u, blob %u)\n",
	       shmkit_seg_layout(SHMKIT_KIND_ANY), shmkit_seg_layout(SHMKIT_KIND_CHAN),
	       shmkit_seg_layout(SHMKIT_KIND_TOPIC), shmkit_seg_layout(SHMKIT_KIND_BLOB));
	return T_PASS;
}
