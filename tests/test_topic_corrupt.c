/* Topics over corrupt memory: every word of the control block, of the publisher and
 * subscriber slots in use, and of every record header between reclaim and tail
 * (src/topic.c documents them: struct topic_ctl, struct pub_slot, struct sub_slot and
 * the 32-byte record header w0..w3) is overwritten with values a bug or a hostile
 * peer could leave (bits flipped low, middle and high, 0, all ones, off by a record),
 * before the victim opens and after it opened, in a lossy and a reliable topic,
 * through the subscriber's and the publisher's calls (the fuzz target's harness,
 * tests/fuzz/fuzz_topic.c, which checks every return value, that a message or a loan
 * lies inside the segment and fits the largest message, and that a poisoned handle
 * stays poisoned). Every run is bounded by alarm(): a hang fails the test.
 * Then the fields that open validates must give -EPROTO whatever their new value,
 * and a claim lock or a slot that names a live process must not make a call with
 * timeout 0, nor an open, wait for ever. */
#include "test_topic_common.h"
#include "internal.h"
#include "fuzz/fuzz_targets.h"
#include "fuzz/replay.h"

/* Offsets in the data area (src/topic.c's _Static_asserts pin the control block). */
#define CTL_SIZE 448u
#define OFF_MAGIC 0u
#define OFF_VERSION 8u /* u32 version, u32 flags */
#define OFF_CAPACITY 16u
#define OFF_MAX_MSG 24u
#define OFF_RING 32u
#define OFF_LIMITS 40u /* u32 max_pubs, u32 max_subs */
#define OFF_PUBS 48u
#define OFF_SUBS 56u
#define OFF_LOCK 64u
#define PUB_SLOT 64u
#define SUB_SLOT 128u
#define SUB_OWNER 64u
#define HDR 32u

static uint64_t rd64(const unsigned char *a, size_t off)
{
	uint64_t v;
	memcpy(&v, a + off, 8);
	return v;
}

/* An input for the harness: ops, then one patch of @n bytes at @off (phase 1 sets bit
 * 15 of the offset: after the subscriber opened). */
static size_t make_input(uint8_t *in, unsigned ops, size_t off, const void *val, size_t n,
			 int phase)
{
	unsigned o = (unsigned)off | (phase ? 0x8000u : 0);
	in[0] = (uint8_t)ops;
	in[1] = (uint8_t)o;
	in[2] = (uint8_t)(o >> 8);
	in[3] = (uint8_t)n;
	memcpy(in + 4, val, n);
	return 4 + n;
}

static unsigned long runs;

/* Every hostile value for the 8-byte word at @off of topic @k, both phases, a few
 * operation mixes each. */
static void sweep_word(int k, size_t off)
{
	static const unsigned ops_mix[] = {0x00, 0x95, 0xa1, 0x1e};
	uint64_t x = rd64(ft_snapshot[k], off);
	uint64_t vals[] = {x ^ 1,       x ^ (UINT64_C(1) << 5), x ^ (UINT64_C(1) << 30),
			   x ^ (UINT64_C(1) << 31), x ^ (UINT64_C(1) << 63), 0, ~UINT64_C(0),
			   x + 32,      x - 32,     x ^ 0xffffffffu, UINT64_C(1) << 62};
	static char what[160];
	for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
		if (vals[v] == x)
			continue;
		for (int phase = 0; phase < 2; phase++)
			for (size_t m = 0; m < sizeof ops_mix / sizeof ops_mix[0]; m++) {
				uint8_t in[16];
				unsigned ops = ops_mix[m] | (unsigned)k << 6;
				size_t n = make_input(in, ops, off, &vals[v], 8, phase);
				snprintf(what, sizeof what,
					 "topic %d word %zu = %#" PRIx64 " (was %#" PRIx64
					 "), phase %d, ops %#x", k, off, vals[v], x, phase, ops);
				snprintf(replay_what, sizeof replay_what, "%s", what);
				replay_one(in, n, 5);
				runs++;
			}
	}
}

/* The words to corrupt in topic @k: the control block, the slots in use, and every
 * record header word from reclaim to tail. */
static void sweep(int k)
{
	const unsigned char *a = ft_snapshot[k];
	uint64_t cap = rd64(a, OFF_CAPACITY), ring = rd64(a, OFF_RING);
	uint64_t pubs = rd64(a, OFF_PUBS), subs = rd64(a, OFF_SUBS);
	uint64_t tail = rd64(a, 72), reclaim = rd64(a, 128);
	unsigned long before = runs, eproto = ft_eproto;
	CHECK_EQ(cap, FT_CAP);
	CHECK(ring + cap <= ft_area[k] && ring <= 0x7fff);
	for (size_t off = 0; off < CTL_SIZE; off += 8)
		sweep_word(k, off);
	/* Publisher slots 0-1 (the dead publisher's and a free one), subscriber slots 0-2
	 * (the one that read nothing, the dead one, a free one: the victim takes one). */
	for (size_t off = pubs; off < pubs + 2 * PUB_SLOT; off += 8)
		sweep_word(k, off);
	for (size_t off = subs; off < subs + 3 * SUB_SLOT; off += 8)
		sweep_word(k, off);
	unsigned long ctl_runs = runs - before, ctl_eproto = ft_eproto - eproto;
	/* Record headers. */
	int records = 0;
	uint64_t p = reclaim;
	before = runs;
	eproto = ft_eproto;
	while (p != tail && records < 200) {
		size_t at = (size_t)(ring + (p & (cap - 1)));
		uint64_t w0 = rd64(a, at);
		unsigned st = (unsigned)(w0 >> 30 & 3);
		uint64_t size = w0 & 0x3fffffffu;
		uint64_t ext = st == 3 ? size : (HDR + size + 31) & ~(uint64_t)31;
		CHECK((uint32_t)(w0 >> 32) == (0x80000000u | (uint32_t)(p >> 5)));
		CHECK(ext > 0 && ext <= cap);
		for (unsigned w = 0; w < 4; w++)
			sweep_word(k, at + 8 * w);
		p += ext;
		records++;
	}
	CHECK(p == tail && records >= 4);
	/* And the zeroed header after the last record, which a waiting subscriber reads. */
	sweep_word(k, (size_t)(ring + (tail & (cap - 1))));
	printf("  %s topic: %lu runs over the control block and slots (%lu met -EPROTO), "
	       "%lu over %d record headers (%lu met -EPROTO)\n", k ? "reliable" : "lossy",
	       ctl_runs, ctl_eproto, runs - before, records, ft_eproto - eproto);
}

/* The fields open validates: any other value is -EPROTO, for every role. */
static void open_validates(int k)
{
	static const struct {
		size_t off, n;
		const char *name;
	} f[] = {{OFF_MAGIC, 8, "magic"},      {OFF_VERSION, 4, "version"},
		 {OFF_CAPACITY, 8, "capacity"}, {OFF_MAX_MSG, 8, "max_msg"},
		 {OFF_RING, 8, "ring_off"},     {OFF_LIMITS, 4, "max_pubs"},
		 {OFF_PUBS, 8, "pubs_off"},     {OFF_SUBS, 8, "subs_off"}};
	unsigned char *area = shmkit_seg_data(ft_seg[k]);
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		uint64_t x = 0;
		memcpy(&x, ft_snapshot[k] + f[i].off, f[i].n);
		uint64_t vals[] = {x ^ 1, x ^ 4096, x << 1, 0, x + 1, ~x};
		for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
			for (unsigned role = 0; role <= 2; role++) {
				memcpy(area, ft_snapshot[k], ft_area[k]);
				memcpy(area + f[i].off, &vals[v], f[i].n);
				shmkit_topic *t = (shmkit_topic *)&t;
				alarm(5);
				int r = shmkit_topic_open(ft_name[k], role, 0, 0, 0, &t);
				alarm(0);
				if (r != -EPROTO) {
					fprintf(stderr, "%s = %#" PRIx64 " (was %#" PRIx64 "): open as role %u "
						"returned %d, not -EPROTO\n", f[i].name, vals[v], x, role, r);
					exit(T_FAIL);
				}
				CHECK(t == NULL);
			}
		}
	}
	/* Flags other than 0 and 1. */
	uint32_t bad = 2;
	memcpy(area, ft_snapshot[k], ft_area[k]);
	memcpy(area + OFF_VERSION + 4, &bad, 4);
	shmkit_topic *t;
	CHECK_EQ(shmkit_topic_open(ft_name[k], TP_SUB, 0, 0, 0, &t), -EPROTO);
	memcpy(area, ft_snapshot[k], ft_area[k]);
}

/* A claim lock, or a header's owner, naming a live process that is not writing: calls
 * with timeout 0 answer at once, and open does not wait for ever. Each call runs in a
 * child under alarm(), so a hang is reported by name. */
static int lock_child(void *arg)
{
	int k = (int)(intptr_t)arg;
	static unsigned char b[64];
	shmkit_topic *t;
	snprintf(replay_what, sizeof replay_what,
		 "publish with timeout 0 while a live process holds the claim lock");
	alarm(3);
	int r = shmkit_topic_open(ft_name[k], TP_PUB, 0, 0, 0, &t);
	CHECK(r == 0 || r == -EPROTO);
	if (r == 0) {
		int64_t t0 = t_now_ns();
		r = shmkit_topic_publish(t, b, sizeof b, 0);
		CHECK(r == -EAGAIN || r == -EPROTO || r == 0);
		CHECK(t_now_ns() - t0 < SHMKIT_SEC);
		shmkit_topic_close(t);
	}
	snprintf(replay_what, sizeof replay_what,
		 "open a subscriber while a live process holds the claim lock");
	alarm(3);
	r = shmkit_topic_open(ft_name[k], TP_SUB, 0, 0, 0, &t);
	/* Open has no timeout: it may refuse or succeed, but must answer. */
	CHECK(r == 0 || r < 0);
	if (r == 0)
		shmkit_topic_close(t);
	return T_PASS;
}

static void held_lock(int k, int *failures)
{
	unsigned char *area = shmkit_seg_data(ft_seg[k]);
	memcpy(area, ft_snapshot[k], ft_area[k]);
	/* A live token: our own subscriber's, read from its slot. */
	shmkit_topic *s = tp_open_ok(ft_name[k], TP_SUB, 0, 0);
	uint64_t subs = rd64(area, OFF_SUBS), tok = 0;
	for (unsigned i = 0; i < FT_SUBS; i++) {
		uint64_t o = rd64(area, (size_t)(subs + i * SUB_SLOT + SUB_OWNER));
		if (o && shmkit__live_check(o) == 1)
			tok = o;
	}
	CHECK(tok != 0);
	memcpy(area + OFF_LOCK, &tok, 8);
	pid_t c = t_fork(lock_child, (void *)(intptr_t)k);
	int st = t_wait(c);
	if (st != 0) {
		fprintf(stderr, "%s topic: a claim lock word naming a live process that is not "
			"claiming: a call hung or failed (child status %d)\n", k ? "reliable" : "lossy",
			st);
		(*failures)++;
	}
	shmkit_topic_close(s);
	memcpy(area, ft_snapshot[k], ft_area[k]);
}

int main(void)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Set the harness up (the first input does), with an empty input. */
	uint8_t none = 0;
	LLVMFuzzerTestOneInput(&none, 1);
	CHECK_EQ(ft_state, 1);
	replay_signals();
	int64_t t0 = t_now_ns();
	for (int k = 0; k < 2; k++)
		sweep(k);
	printf("corrupt topics: %lu runs, no crash, no hang, every answer documented (%.1f s)\n",
	       runs, (double)(t_now_ns() - t0) / 1e9);
	for (int k = 0; k < 2; k++)
		open_validates(k);
	printf("open: every validated field changed gives -EPROTO\n");
	int failures = 0;
	for (int k = 0; k < 2; k++)
		held_lock(k, &failures);
	CHECK_EQ(failures, 0);
	printf("test_topic_corrupt: ok\n");
	return T_PASS;
}
