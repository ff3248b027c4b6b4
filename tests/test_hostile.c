/* Hostile memory: a peer with write access rewrites one word of a segment, then this
 * process uses the segment through every call. Each result must be an error or valid
 * data: never a crash, never a write outside what the caller handed in or a read
 * outside the mapping, never a wait past the call's own bound.
 *
 * Deterministic: for every word of the segment header (and its name), of the blob
 * control block (its mutex too, also while a victim holds it), of the channel control
 * block, and for the record headers in the ring, a fixed list of values (bit flips,
 * zero, one, all ones, huge, off by one, misaligned, a lap away) is stored, each in
 * a fresh copy of the segment. Two ways to meet the corruption:
 *   victim: handles opened before the store (some words are only read after open);
 *   fresh:  opens after the store, as a newcomer would.
 * Each trial runs in a forked child; every call inside it runs under alarm() with a
 * bound a little above its own timeout, so a child killed by a signal (SIGALRM for a
 * hang, SIGSEGV/SIGBUS/SIGABRT for a crash, an ASan report in the sanitizer build) is
 * a failure naming the word, the value and the call. Outputs handed to the library
 * carry canaries, so an overflow of a caller's struct is caught in the release build
 * too. The segments are made by a child that then exits, so a header rewritten to
 * "still initializing" names a dead creator and opens give up at once.
 *
 * Word offsets of the blob and channel control blocks mirror src/blob.c and
 * src/chan.c only for the labels: the sweep covers every 8-byte word of each block,
 * so a layout change moves names, not coverage. */
#include "common.h"
#include "internal.h"

#include <sys/mman.h>
#include <sys/uio.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define BLOB_SIZE 200u
#define CHAN_CAP 4096u
#define RING_OFF 4096u    /* src/chan.c: the ring follows the control block's page */
#define CHAN_CTL_BYTES 512u
#define BLOB_CTL_BYTES 1792u /* src/blob.c: struct blob_ctl: mutex, version line, bell, poll table */
#define TAG_BIT 0x80000000u
#define PAD_BIT 0x80000000u

/* Per-call bounds: the call's own timeout plus slack for a loaded machine (alarm()
 * counts whole seconds). */
#define SLACK_S 3u
#define OPEN_S (2u + SLACK_S)   /* shmkit_seg_open() waits up to 2 s for a creator */
#define WRITE_S (10u + SLACK_S) /* shmkit_blob_write() waits up to 10 s for the lock */
/* A writer that waits longer than this returned within its bound but waited on a
 * holder that is not there: noted (and the word's other values skipped, each would
 * cost as much), not failed. */
#define SLOW_NS (3 * SHMKIT_SEC)
#define T_SLOW 3 /* a trial child's exit code for that */
#define CALL_S SLACK_S          /* calls with timeout 0, or a few milliseconds */
/* Failures per region before the rest of it is skipped (a hang costs its bound). */
#define MAX_HANGS_PER_REGION 4
#define MAX_HANGS_PER_WORD 1
/* Failures printed per region; the rest are counted. */
#define MAX_SHOWN_PER_REGION 12

enum phase { VICTIM, FRESH, HELD };
static const char *phase_name[] = {"victim", "fresh", "victim holding the mutex"};

struct target {
	const char *label; /* "blob/posix" */
	unsigned kind;     /* SHMKIT_KIND_BLOB or SHMKIT_KIND_CHAN */
	unsigned sysv;     /* 0 or SHMKIT_SEG_SYSV */
	const char *name;
	shmkit_seg *raw;    /* the parent's raw handle, open for the whole run */
	unsigned char *mem; /* its view of the whole object: children write through it */
	unsigned char *snap; /* the pristine object */
	size_t size;
};

struct corruption {
	const struct target *t;
	size_t off;         /* bytes into the object */
	int fill;           /* 0: store the 8-byte value; 1: fill len bytes with value */
	size_t len;
	uint64_t value;
	int ring;           /* the ring's contents are touched: message bytes may differ */
	char what[80];      /* the word, for people */
};

/* What a child is doing, for the parent's report when it dies. */
static char *stage;
/* Message and snapshot patterns that count as valid data. */
static unsigned char pat_a[BLOB_SIZE], pat_c[BLOB_SIZE], pat_b[BLOB_SIZE];

#define STEP(bound, ...)                                                                   \
	do {                                                                               \
		snprintf(stage, 256, __VA_ARGS__);                                         \
		alarm(bound);                                                              \
	} while (0)

/* A failed check inside a trial child: say what and leave; the parent adds the word. */
#define TCHECK(cond, ...)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "    in %s: check failed: %s: ", stage, #cond);     \
			fprintf(stderr, __VA_ARGS__);                                      \
			fprintf(stderr, "\n");                                             \
			_exit(T_FAIL);                                                     \
		}                                                                          \
	} while (0)

/* An error is any -errno; valid data is checked by each caller. */
static int is_err(long long r)
{
	return r < 0 && r >= -4095;
}

static void apply(const struct corruption *c)
{
	unsigned char *p = c->t->mem + c->off;
	if (c->fill)
		memset(p, (int)c->value, c->len);
	else
		memcpy(p, &c->value, sizeof c->value);
}

/* ---- uses, shared by the victim and fresh phases ---- */

static void check_canary(const unsigned char *c, size_t n, const char *what)
{
	size_t last = n;
	while (last > 0 && c[last - 1] == 0x5a)
		last--;
	TCHECK(last == 0, "wrote %zu bytes past the %s it was given", last, what);
}

static void use_stat(const shmkit_seg *s, const char *who)
{
	/* Canary after the struct: an unbounded name copy overruns into it. */
	struct box {
		struct shmkit_seg_info info;
		unsigned char canary[8192];
	} *b = malloc(sizeof *b);
	TCHECK(b != NULL, "malloc");
	memset(b->canary, 0x5a, sizeof b->canary);
	STEP(CALL_S, "shmkit_seg_stat(%s)", who);
	int r = shmkit_seg_stat(s, &b->info);
	alarm(0);
	check_canary(b->canary, sizeof b->canary, "struct shmkit_seg_info");
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0)
		TCHECK(memchr(b->info.name, '\0', sizeof b->info.name) != NULL, "name not terminated");
	free(b);
}

static void use_inspect(const char *name, unsigned sysv)
{
	struct box {
		struct shmkit_seg_info info;
		unsigned char canary[8192];
	} *b = malloc(sizeof *b);
	TCHECK(b != NULL, "malloc");
	memset(b->canary, 0x5a, sizeof b->canary);
	STEP(CALL_S, "shmkit_seg_inspect()");
	int r = shmkit_seg_inspect(name, sysv, &b->info);
	alarm(0);
	check_canary(b->canary, sizeof b->canary, "struct shmkit_seg_info");
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0)
		TCHECK(memchr(b->info.name, '\0', sizeof b->info.name) != NULL, "name not terminated");
	free(b);
}

/* Every byte of the data area a handle reports must be mapped. */
static void use_data(const shmkit_seg *s, const char *who)
{
	STEP(CALL_S, "reading the data area of %s", who);
	const volatile unsigned char *d = shmkit_seg_data(s);
	size_t n = shmkit_seg_size(s);
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += d[i];
	(void)sum;
	STEP(CALL_S, "shmkit_seg_check(%s)", who);
	int r = shmkit_seg_check(s);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	alarm(0);
}

static void use_blob_read(const shmkit_blob *b, const char *who)
{
	unsigned char buf[BLOB_SIZE + 64];
	uint64_t ver = 0;
	memset(buf, 0x5a, sizeof buf);
	STEP(CALL_S, "shmkit_blob_read(%s)", who);
	ssize_t r = shmkit_blob_read(b, buf, BLOB_SIZE, &ver);
	alarm(0);
	/* The size a handle took at open is the control block's, which a peer may have
	 * rewritten within the slot stride: min(cap, that size) bytes, and no more. */
	size_t want = shmkit_blob_size(b) < BLOB_SIZE ? shmkit_blob_size(b) : BLOB_SIZE;
	for (size_t i = want; i < sizeof buf; i++)
		TCHECK(buf[i] == 0x5a, "wrote past the %zu bytes it had", want);
	TCHECK(r == (ssize_t)want || is_err(r), "returned %zd", r);
	/* Valid data: (a prefix of) a snapshot some writer wrote whole, never a mix. */
	if (r > 0)
		TCHECK(!memcmp(buf, pat_a, (size_t)r) || !memcmp(buf, pat_c, (size_t)r) ||
			       !memcmp(buf, pat_b, (size_t)r),
		       "a snapshot nobody wrote");
	STEP(CALL_S, "shmkit_blob_version(%s)", who);
	int64_t v = shmkit_blob_version(b);
	alarm(0);
	TCHECK(v >= 0 || is_err(v), "returned %lld", (long long)v);
}

static void use_mutex(shmkit_mutex *m, const char *who)
{
	static const int64_t timeouts[] = {0, 20 * SHMKIT_MSEC};
	for (int i = 0; i < 2; i++) {
		STEP(CALL_S, "shmkit_mutex_lock(%s, %lld ns)", who, (long long)timeouts[i]);
		int r = shmkit_mutex_lock(m, timeouts[i]);
		TCHECK(r == 0 || is_err(r), "returned %d", r);
		if (r == -EOWNERDEAD) {
			STEP(CALL_S, "shmkit_mutex_consistent(%s)", who);
			r = shmkit_mutex_consistent(m);
			TCHECK(r == 0 || is_err(r), "returned %d", r);
			r = 0;
		}
		if (r == 0) {
			STEP(CALL_S, "shmkit_mutex_unlock(%s)", who);
			r = shmkit_mutex_unlock(m);
			TCHECK(r == 0 || is_err(r), "returned %d", r);
		}
		alarm(0);
	}
}

static int slow_write; /* a write waited more than SLOW_NS: exit T_SLOW when done */

static void use_blob_write(shmkit_blob *b, const char *who)
{
	if (slow_write)
		return; /* noted once; another 10 s would show nothing new */
	STEP(WRITE_S, "shmkit_blob_write(%s)", who);
	int64_t t0 = t_now_ns();
	int r = shmkit_blob_write(b, pat_b, BLOB_SIZE);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (t_now_ns() - t0 > SLOW_NS && !slow_write) {
		slow_write = 1;
		snprintf(stage + 256, 256, "shmkit_blob_write(%s) returned %d after %.1f s", who, r,
			 (double)(t_now_ns() - t0) / 1e9);
	}
}

static shmkit_mutex *blob_mutex(const shmkit_blob *b)
{
	/* struct blob_ctl begins with the writers' lock. */
	return shmkit_seg_data(shmkit_blob_seg(b));
}

/* A message as this test sends it: byte j of a message of n bytes is n + j. */
static void fill_msg(unsigned char *p, size_t n)
{
	for (size_t j = 0; j < n; j++)
		p[j] = (unsigned char)(n + j);
}

static void check_msg(const struct corruption *c, const unsigned char *p, size_t n)
{
	if (c->ring)
		return; /* a rewritten length legitimately shows other bytes */
	for (size_t j = 0; j < n; j++)
		TCHECK(p[j] == (unsigned char)(n + j), "message of %zu bytes: byte %zu is %u", n, j,
		       p[j]);
}

static void use_consumer(const struct corruption *c, shmkit_chan *ch, const char *who)
{
	static unsigned char buf[CHAN_CAP + 64];
	const unsigned char *ring =
		(const unsigned char *)shmkit_seg_data(shmkit_chan_seg(ch)) + RING_OFF;
	/* Enough calls to drain what the setup left queued (fewer under sanitizers, where
	 * every call is slower: the corrupt record is always among the first). */
	for (int k = 0; k < (SANITIZED ? 32 : 80); k++) {
		ssize_t r;
		int op = k % 4;
		if (op == 1) {
			const void *p;
			size_t len;
			STEP(CALL_S, "shmkit_chan_peek(%s, 0) #%d", who, k);
			r = shmkit_chan_peek(ch, &p, &len, 0);
			TCHECK(r >= 0 || is_err(r), "returned %zd", r);
			if (r > 0) {
				const unsigned char *q = p;
				TCHECK((size_t)r == len && len <= CHAN_CAP / 2, "length %zd/%zu", r, len);
				TCHECK(q >= ring && q + len <= ring + CHAN_CAP,
				       "message outside the ring (at ring%+td)", q - ring);
				check_msg(c, q, len);
				STEP(CALL_S, "shmkit_chan_release(%s)", who);
				int rr = shmkit_chan_release(ch);
				TCHECK(rr == 0 || is_err(rr), "returned %d", rr);
			}
		} else {
			size_t cap = op == 2 ? 16 : CHAN_CAP / 2;
			int64_t t = op == 3 ? SHMKIT_MSEC : 0;
			memset(buf + cap, 0x5a, 64);
			STEP(CALL_S, "shmkit_chan_recv(%s, cap %zu, %lld ns) #%d", who, cap,
			     (long long)t, k);
			r = shmkit_chan_recv(ch, buf, cap, t);
			for (size_t i = cap; i < cap + 64; i++)
				TCHECK(buf[i] == 0x5a, "wrote past the %zu bytes of the buffer", cap);
			TCHECK(r >= 0 ? (size_t)r <= cap : is_err(r), "returned %zd", r);
			if (r > 0)
				check_msg(c, buf, (size_t)r);
		}
		alarm(0);
		if (r < 0 && r != -EMSGSIZE && r != -EAGAIN)
			break;
	}
	struct shmkit_chan_stats st;
	STEP(CALL_S, "shmkit_chan_stats(%s)", who);
	int r = shmkit_chan_stats(ch, &st);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0)
		TCHECK(st.used <= st.capacity, "used %llu of %llu", (unsigned long long)st.used,
		       (unsigned long long)st.capacity);
}

static void use_producer(shmkit_chan *ch, const char *who)
{
	static unsigned char msg[CHAN_CAP / 2];
	static const size_t lens[] = {24, 1500, 1, 700, CHAN_CAP / 2};
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		int r;
		fill_msg(msg, lens[k]);
		if (k == 1) {
			void *p;
			STEP(CALL_S, "shmkit_chan_reserve(%s, %zu, 0)", who, lens[k]);
			r = shmkit_chan_reserve(ch, lens[k], 0, &p);
			TCHECK(r == 0 || is_err(r), "returned %d", r);
			if (r == 0) {
				STEP(CALL_S, "writing the reservation of %s", who);
				memcpy(p, msg, lens[k]);
				STEP(CALL_S, "shmkit_chan_commit(%s, %zu)", who, lens[k]);
				r = shmkit_chan_commit(ch, lens[k]);
				TCHECK(r == 0 || is_err(r), "returned %d", r);
			}
		} else if (k == 2) {
			struct iovec v[2] = {{msg, lens[k]}, {msg, lens[k]}};
			STEP(CALL_S, "shmkit_chan_sendv(%s, 2, 1 ms)", who);
			r = shmkit_chan_sendv(ch, v, 2, SHMKIT_MSEC);
			TCHECK((r >= 1 && r <= 2) || is_err(r), "returned %d", r);
		} else {
			STEP(CALL_S, "shmkit_chan_send(%s, %zu, %d ms)", who, lens[k], k == 3 ? 1 : 0);
			r = shmkit_chan_send(ch, msg, lens[k], k == 3 ? SHMKIT_MSEC : 0);
			TCHECK(r == 0 || is_err(r), "returned %d", r);
		}
		alarm(0);
	}
	struct shmkit_chan_stats st;
	STEP(CALL_S, "shmkit_chan_stats(%s)", who);
	int r = shmkit_chan_stats(ch, &st);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0)
		TCHECK(st.used <= st.capacity, "used %llu of %llu", (unsigned long long)st.used,
		       (unsigned long long)st.capacity);
}

/* ---- the two phases ---- */

static void blob_victim(const struct corruption *c, int held)
{
	const struct target *t = c->t;
	shmkit_seg *vs;
	shmkit_blob *vrw, *vro;
	int r;
	STEP(OPEN_S, "opening the victims");
	TCHECK((r = shmkit_seg_open(t->name, SHMKIT_KIND_ANY, 0, 0, t->sysv, &vs)) == 0, "%d", r);
	TCHECK((r = shmkit_blob_open(t->name, 0, 0, t->sysv, &vrw)) == 0, "%d", r);
	TCHECK((r = shmkit_blob_open(t->name, 0, 0, t->sysv | SHMKIT_SEG_RDONLY, &vro)) == 0, "%d", r);
	if (held)
		TCHECK((r = shmkit_mutex_lock(blob_mutex(vrw), 0)) == 0, "%d", r);
	alarm(0);
	apply(c);
	if (held) {
		STEP(CALL_S, "shmkit_mutex_unlock(victim holding it)");
		r = shmkit_mutex_unlock(blob_mutex(vrw));
		alarm(0);
		TCHECK(r == 0 || is_err(r), "returned %d", r);
	}
	use_stat(vs, "victim seg");
	use_data(vs, "victim seg");
	use_blob_read(vro, "read-only victim");
	use_blob_read(vrw, "read-write victim");
	use_blob_write(vrw, "victim");
	use_blob_read(vro, "read-only victim, after a write");
	use_mutex(blob_mutex(vrw), "victim's blob lock");
	use_blob_write(vrw, "victim, after the lock calls");
	STEP(CALL_S, "closing the victims");
	shmkit_blob_close(vro);
	shmkit_blob_close(vrw);
	shmkit_seg_close(vs);
	alarm(0);
}

static void blob_fresh(const struct corruption *c)
{
	const struct target *t = c->t;
	shmkit_seg *s;
	shmkit_blob *b;
	apply(c);
	STEP(OPEN_S, "shmkit_seg_open(fresh)");
	int r = shmkit_seg_open(t->name, SHMKIT_KIND_ANY, 0, 0, t->sysv, &s);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0) {
		use_stat(s, "fresh seg");
		use_data(s, "fresh seg");
		shmkit_seg_close(s);
	}
	use_inspect(t->name, t->sysv);
	STEP(OPEN_S, "shmkit_blob_open(fresh, read-only)");
	r = shmkit_blob_open(t->name, 0, 0, t->sysv | SHMKIT_SEG_RDONLY, &b);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0) {
		use_blob_read(b, "fresh read-only");
		shmkit_blob_close(b);
	}
	STEP(OPEN_S, "shmkit_blob_open(fresh)");
	r = shmkit_blob_open(t->name, 0, 0, t->sysv, &b);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0) {
		use_blob_read(b, "fresh");
		use_blob_write(b, "fresh");
		use_blob_read(b, "fresh, after a write");
		use_mutex(blob_mutex(b), "fresh blob's lock");
		use_blob_write(b, "fresh, after the lock calls");
		shmkit_blob_close(b);
	}
}

static void chan_victim(const struct corruption *c)
{
	const struct target *t = c->t;
	shmkit_seg *vs;
	shmkit_chan *vp, *vc;
	int r;
	STEP(OPEN_S, "opening the victims");
	TCHECK((r = shmkit_seg_open(t->name, SHMKIT_KIND_ANY, 0, 0, t->sysv, &vs)) == 0, "%d", r);
	TCHECK((r = shmkit_chan_open(t->name, SHMKIT_CHAN_CONSUMER, 0, 0, t->sysv, &vc)) == 0, "%d", r);
	TCHECK((r = shmkit_chan_open(t->name, SHMKIT_CHAN_PRODUCER, 0, 0, t->sysv, &vp)) == 0, "%d", r);
	alarm(0);
	apply(c);
	use_stat(vs, "victim seg");
	use_data(vs, "victim seg");
	use_consumer(c, vc, "victim consumer");
	use_producer(vp, "victim producer");
	use_consumer(c, vc, "victim consumer, after sends");
	STEP(CALL_S, "shmkit_chan_fd(victim consumer)");
	int fd = shmkit_chan_fd(vc);
	alarm(0);
	TCHECK(fd >= 0 || is_err(fd), "returned %d", fd);
	STEP(CALL_S, "closing the victim producer");
	shmkit_chan_close(vp);
	use_consumer(c, vc, "victim consumer, after the producer closed");
	STEP(CALL_S, "closing the victim consumer");
	shmkit_chan_close(vc);
	shmkit_seg_close(vs);
	alarm(0);
}

static void chan_fresh(const struct corruption *c)
{
	const struct target *t = c->t;
	shmkit_seg *s;
	shmkit_chan *o, *p = NULL, *cs = NULL;
	apply(c);
	STEP(OPEN_S, "shmkit_seg_open(fresh)");
	int r = shmkit_seg_open(t->name, SHMKIT_KIND_ANY, 0, 0, t->sysv, &s);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0) {
		use_stat(s, "fresh seg");
		use_data(s, "fresh seg");
		shmkit_seg_close(s);
	}
	use_inspect(t->name, t->sysv);
	STEP(OPEN_S, "shmkit_chan_open(fresh observer)");
	r = shmkit_chan_open(t->name, SHMKIT_CHAN_OBSERVER, 0, 0, t->sysv, &o);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0) {
		struct shmkit_chan_stats st;
		STEP(CALL_S, "shmkit_chan_stats(fresh observer)");
		r = shmkit_chan_stats(o, &st);
		TCHECK(r == 0 || is_err(r), "returned %d", r);
		if (r == 0)
			TCHECK(st.used <= st.capacity, "used %llu", (unsigned long long)st.used);
		shmkit_chan_close(o);
		alarm(0);
	}
	STEP(OPEN_S, "shmkit_chan_open(fresh consumer)");
	r = shmkit_chan_open(t->name, SHMKIT_CHAN_CONSUMER, 0, 0, t->sysv, &cs);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0)
		use_consumer(c, cs, "fresh consumer");
	STEP(OPEN_S, "shmkit_chan_open(fresh producer)");
	r = shmkit_chan_open(t->name, SHMKIT_CHAN_PRODUCER, 0, 0, t->sysv, &p);
	alarm(0);
	TCHECK(r == 0 || is_err(r), "returned %d", r);
	if (r == 0)
		use_producer(p, "fresh producer");
	if (cs)
		use_consumer(c, cs, "fresh consumer, after sends");
	STEP(CALL_S, "closing the fresh channel ends");
	shmkit_chan_close(p);
	shmkit_chan_close(cs);
	alarm(0);
}

/* ---- the parent: targets, corruptions, trials ---- */

static int total_trials, total_fails, total_slow;

/* Runs one trial in a child; returns 0 if it passed, 1 if it failed, 2 if it hung.
 * @quiet: count a failure without printing it. */
static int trial(const struct corruption *c, enum phase ph, int quiet)
{
	const struct target *t = c->t;
	memcpy(t->mem, t->snap, t->size);
	stage[0] = '\0';
	fflush(stdout);
	fflush(stderr);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (t->kind == SHMKIT_KIND_BLOB) {
			if (ph == FRESH)
				blob_fresh(c);
			else
				blob_victim(c, ph == HELD);
		} else {
			if (ph == FRESH)
				chan_fresh(c);
			else
				chan_victim(c);
		}
		_exit(slow_write ? T_SLOW : T_PASS);
	}
	int st = t_wait(pid);
	total_trials++;
	if (st == T_PASS)
		return 0;
	if (st == T_SLOW) {
		total_slow++;
		if (!quiet)
			printf("NOTE %s: %s = %#llx, %s: %s\n", t->label, c->what,
			       (unsigned long long)c->value, phase_name[ph], stage + 256);
		return 3;
	}
	total_fails++;
	if (quiet)
		return st == 128 + SIGALRM ? 2 : 1;
	const char *how = st == T_FAIL ? "a check failed" : NULL;
	char sig[64];
	if (!how) {
		int s = st - 128;
		snprintf(sig, sizeof sig, "killed by signal %d (%s%s)", s, strsignal(s),
			 s == SIGALRM ? ": a hang" : "");
		how = sig;
	}
	if (c->fill)
		fprintf(stderr, "FAIL %s: %s filled with %#llx (%zu bytes), %s: %s during %s\n",
			t->label, c->what, (unsigned long long)c->value, c->len, phase_name[ph], how,
			stage);
	else
		fprintf(stderr, "FAIL %s: %s = %#llx (was %#llx), %s: %s during %s\n", t->label,
			c->what, (unsigned long long)c->value,
			(unsigned long long)(*(const uint64_t *)(const void *)(t->snap + c->off)),
			phase_name[ph], how, stage);
	return st == 128 + SIGALRM ? 2 : 1;
}

/* The values a word gets: flips, extremes, off-by-ones, misalignment, a lap away. */
static int word_values(uint64_t o, uint64_t *v)
{
	const uint64_t cand[] = {
		o ^ 1, o ^ (UINT64_C(1) << 31), o ^ (UINT64_C(1) << 32), o ^ (UINT64_C(1) << 63),
		0, 1, UINT64_MAX, INT64_MAX, UINT64_C(1) << 63, UINT32_MAX,
		UINT64_C(0xffffffff00000000), UINT64_C(1) << 32, UINT64_C(1) << 44,
		o + 1, o + 3, o - 8, o + 8, o + CHAN_CAP, o - CHAN_CAP,
	};
	int n = 0;
	/* Under memcheck every trial is about 100 times slower: a flip, zero, all ones
	 * and a misalignment per word keep make valgrind to minutes. */
	int few = RUNNING_ON_VALGRIND != 0;
	/* Under sanitizers (several times slower), the rarer flips and extremes go. */
	const unsigned skip_sanitized = 1u << 1 | 1u << 2 | 1u << 9 | 1u << 10 | 1u << 11 |
					1u << 16 | 1u << 18;
	for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
		if (few && i != 0 && i != 4 && i != 6 && i != 14)
			continue;
		if (SANITIZED && (skip_sanitized >> i & 1))
			continue;
		int dup = cand[i] == o;
		for (int j = 0; j < n && !dup; j++)
			dup = v[j] == cand[i];
		if (!dup)
			v[n++] = cand[i];
	}
	return n;
}

struct region_state {
	int fails;
	int hangs;
	int word_hangs; /* these two are reset for each word */
	int word_fails;
	int slow;
	int skipped;
	int shown;
};

static void run(struct corruption *c, const enum phase *phases, int nph, struct region_state *rs)
{
	for (int i = 0; i < nph; i++) {
		/* Each hang costs its whole bound: after a few, skip the region's rest. */
		if (rs->hangs >= MAX_HANGS_PER_REGION || rs->word_hangs >= MAX_HANGS_PER_WORD) {
			rs->skipped++;
			continue;
		}
		int r = trial(c, phases[i],
			      rs->fails >= MAX_SHOWN_PER_REGION || rs->word_fails >= 2);
		if (r == 3) {
			/* Slow but within bound: not a failure; the word's rest would be as slow. */
			rs->slow++;
			rs->word_hangs++;
			continue;
		}
		rs->shown += r != 0 && rs->fails < MAX_SHOWN_PER_REGION && rs->word_fails < 2;
		rs->fails += r != 0;
		rs->word_fails += r != 0;
		rs->hangs += r == 2;
		rs->word_hangs += r == 2;
	}
}

/* Every 8-byte word of [from, to) of the object, every value. */
static void sweep(const struct target *t, size_t from, size_t to, const char *(*label)(size_t),
		  const enum phase *phases, int nph, struct region_state *rs)
{
	for (size_t off = from; off + 8 <= to; off += 8) {
		uint64_t o, v[32];
		memcpy(&o, t->snap + off, 8);
		rs->word_hangs = rs->word_fails = 0;
		int n = word_values(o, v);
		for (int i = 0; i < n; i++) {
			struct corruption c = {.t = t, .off = off, .value = v[i]};
			snprintf(c.what, sizeof c.what, "%s", label(off));
			run(&c, phases, nph, rs);
		}
	}
}

static const char *hdr_label(size_t off)
{
	static const struct {
		const char *name;
		size_t off, size;
	} f[] = {
		{"magic", offsetof(struct shmkit__hdr, magic), 8},
		{"layout", offsetof(struct shmkit__hdr, layout), 4},
		{"kind", offsetof(struct shmkit__hdr, kind), 4},
		{"state", offsetof(struct shmkit__hdr, state), 4},
		{"hdr_size", offsetof(struct shmkit__hdr, hdr_size), 4},
		{"total_size", offsetof(struct shmkit__hdr, total_size), 8},
		{"data_off", offsetof(struct shmkit__hdr, data_off), 8},
		{"data_size", offsetof(struct shmkit__hdr, data_size), 8},
		{"creator_pid", offsetof(struct shmkit__hdr, creator_pid), 4},
		{"flags", offsetof(struct shmkit__hdr, flags), 4},
		{"creator_token", offsetof(struct shmkit__hdr, creator_token), 8},
		{"ctime_ns", offsetof(struct shmkit__hdr, ctime_ns), 8},
	};
	static char buf[80];
	int n = snprintf(buf, sizeof buf, "header +%zu", off);
	const char *sep = " (";
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].off < off + 8 && off < f[i].off + f[i].size) {
			n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%s", sep, f[i].name);
			sep = ", ";
		}
	if (*sep == ',')
		snprintf(buf + n, sizeof buf - (size_t)n, ")");
	return buf;
}

/* Names as src/blob.c lays the control block out today (labels only). */
static const char *blob_label(size_t off)
{
	static const char *f[] = {"version", "seq[0]", "seq[1]", "slot_ver[0]", "slot_ver[1]",
				  "size", "stride", "reserved"};
	static char buf[80];
	off -= SHMKIT_DATA_OFF;
	if (off < 64)
		snprintf(buf, sizeof buf, "blob mutex +%zu (%s)", off,
			 off == 0    ? "owner"
			 : off == 8  ? "seq, waiters"
			 : off == 16 ? "tid, pid"
			 : off == 24 ? "state, magic"
				     : "reserved");
	else
		snprintf(buf, sizeof buf, "blob control +%zu (%s)", off,
			 off / 8 - 8 < 8 ? f[off / 8 - 8] : "?");
	return buf;
}

/* Names as src/chan.c lays the control block out today (labels only). */
static const char *chan_label(size_t off)
{
	static const struct {
		size_t off;
		const char *name;
	} f[] = {{0, "magic"}, {8, "version, hdr_size"}, {16, "capacity"}, {24, "max_msg"},
		 {32, "ring_off"}, {64, "p_owner"}, {72, "p_closed"}, {80, "p_who.tok"},
		 {88, "p_who.ns"}, {96, "p_who.pid"}, {128, "c_owner"}, {136, "c_token"},
		 {144, "c_closed"}, {152, "c_who.tok"}, {160, "c_who.ns"}, {168, "c_who.pid"},
		 {192, "tail"}, {200, "msgs_sent"},
		 {208, "bytes_sent"}, {216, "p_sleeps"}, {224, "p_wakes"}, {256, "head"},
		 {320, "msgs_recv"}, {328, "bytes_recv"}, {336, "c_sleeps"}, {344, "c_wakes"},
		 {384, "c_state"}, {448, "p_state"}};
	static char buf[80];
	off -= SHMKIT_DATA_OFF;
	const char *name = "reserved";
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].off == off)
			name = f[i].name;
	snprintf(buf, sizeof buf, "channel control +%zu (%s)", off, name);
	return buf;
}

/* The header's name: its first byte, its terminator, and fills that leave it
 * unterminated (up to the header's end, and up to the data area). */
static void name_probes(const struct target *t, const enum phase *phases, int nph,
			struct region_state *rs)
{
	size_t at = offsetof(struct shmkit__hdr, name);
	size_t len = strlen((const char *)t->snap + at);
	struct corruption c = {.t = t, .fill = 1};
	c.off = at, c.len = 1, c.value = t->snap[at] ^ 1;
	snprintf(c.what, sizeof c.what, "header name[0]");
	run(&c, phases, nph, rs);
	c.off = at + len, c.len = 1, c.value = 'x';
	snprintf(c.what, sizeof c.what, "header name[%zu] (its NUL)", len);
	run(&c, phases, nph, rs);
	c.off = at, c.len = SHMKIT_NAME_MAX + 1, c.value = 'A';
	snprintf(c.what, sizeof c.what, "header name (all %d bytes)", SHMKIT_NAME_MAX + 1);
	run(&c, phases, nph, rs);
	c.off = at, c.len = SHMKIT_DATA_OFF - at, c.value = 'A';
	snprintf(c.what, sizeof c.what, "header name up to the data area");
	run(&c, phases, nph, rs);
}

static uint64_t tag_of(uint64_t pos)
{
	return TAG_BIT | (uint32_t)(pos >> 3);
}

/* Record headers in the ring: the records waiting at head, a pad if there is one,
 * and the free slot at tail (given a valid tag, it looks committed). */
static void ring_probes(const struct target *t, const enum phase *phases, int nph,
			struct region_state *rs)
{
	const unsigned char *ctl = t->snap + SHMKIT_DATA_OFF;
	uint64_t head, tail, pos;
	memcpy(&head, ctl + 256, 8);
	memcpy(&tail, ctl + 192, 8);
	CHECK(tail - head <= CHAN_CAP && tail > head);
	uint64_t probe[8];
	int np = 0, pad_seen = 0;
	for (pos = head; pos < tail && np < 6;) {
		uint64_t h;
		memcpy(&h, t->snap + SHMKIT_DATA_OFF + RING_OFF + (pos & (CHAN_CAP - 1)), 8);
		uint32_t n = (uint32_t)h;
		CHECK((h >> 32) == tag_of(pos));
		if (np < 3 || ((n & PAD_BIT) && !pad_seen))
			probe[np++] = pos;
		if (n & PAD_BIT) {
			pad_seen = 1;
			pos += n & ~PAD_BIT; /* a lap-end pad or a short alignment pad */
		} else {
			pos += (8 + n + 7) & ~(uint64_t)7;
		}
	}
	CHECK(pos == tail);
	probe[np++] = tail;
	for (int i = 0; i < np; i++) {
		uint64_t p = probe[i], off = p & (CHAN_CAP - 1);
		size_t at = SHMKIT_DATA_OFF + RING_OFF + off;
		uint64_t o;
		memcpy(&o, t->snap + at, 8);
		uint64_t tag = tag_of(p) << 32, otag = o & UINT64_C(0xffffffff00000000);
		uint32_t len = (uint32_t)o, rest = (uint32_t)(CHAN_CAP - off);
		uint32_t lens[] = {0, 1, len - 1, len + 1, len + 8, CHAN_CAP / 2, CHAN_CAP / 2 + 1,
				   rest - 8, rest - 7, 0x7fffffffu, PAD_BIT, PAD_BIT | rest,
				   PAD_BIT | (rest + 8), PAD_BIT | 1, UINT32_MAX};
		uint64_t vals[32];
		int nv = 0;
		rs->word_hangs = rs->word_fails = 0;
		/* The free slot at tail gets a valid tag; records keep theirs. */
		for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
			vals[nv++] = (p == tail ? tag : otag) | lens[k];
		vals[nv++] = o ^ (UINT64_C(1) << 32);           /* tag off by one position */
		vals[nv++] = (tag_of(p + CHAN_CAP) << 32) | len; /* the tag a lap later */
		vals[nv++] = len;                                /* no tag */
		vals[nv++] = UINT64_MAX;
		for (int k = 0; k < nv; k++) {
			if (vals[k] == o || (RUNNING_ON_VALGRIND && k % 4 != 0))
				continue;
			struct corruption c = {.t = t, .off = at, .value = vals[k], .ring = 1};
			snprintf(c.what, sizeof c.what, "ring record header at position %llu%s",
				 (unsigned long long)p, p == tail ? " (tail, free)" : "");
			run(&c, phases, nph, rs);
		}
	}
}

/* Makes a blob or a channel in a child that exits, so its creator is dead. */
static int make_target(void *arg)
{
	struct target *t = arg;
	if (t->kind == SHMKIT_KIND_BLOB) {
		shmkit_blob *b;
		CHECK_OK(shmkit_blob_open(t->name, BLOB_SIZE, 0,
					  t->sysv | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &b));
		/* Two writes: both slots hold a whole snapshot, A older, C current. */
		CHECK_OK(shmkit_blob_write(b, pat_a, BLOB_SIZE));
		CHECK_OK(shmkit_blob_write(b, pat_c, BLOB_SIZE));
		shmkit_blob_close(b);
		return T_PASS;
	}
	shmkit_chan *p, *c;
	static unsigned char buf[CHAN_CAP / 2], in[CHAN_CAP / 2];
	CHECK_OK(shmkit_chan_open(t->name, SHMKIT_CHAN_PRODUCER, CHAN_CAP, 0,
				  t->sysv | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &p));
	CHECK_OK(shmkit_chan_open(t->name, SHMKIT_CHAN_CONSUMER, 0, 0, t->sysv, &c));
	/* A few laps done, pads among them, messages of several sizes left queued. */
	for (unsigned i = 0; i < 40; i++) {
		size_t len = 1 + (i * 397u) % 700u;
		fill_msg(buf, len);
		while (shmkit_chan_send(p, buf, len, 0) == -EAGAIN)
			CHECK(shmkit_chan_recv(c, in, sizeof in, 0) > 0);
		if (i % 3 == 0)
			CHECK(shmkit_chan_recv(c, in, sizeof in, 0) > 0);
	}
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	return T_PASS;
}

static void setup_target(struct target *t)
{
	CHECK_EQ(t_wait(t_fork(make_target, t)), T_PASS);
	CHECK_OK(shmkit_seg_open(t->name, SHMKIT_KIND_ANY, 0, 0, t->sysv | SHMKIT_SEG_RAW, &t->raw));
	t->mem = shmkit_seg_data(t->raw);
	t->size = shmkit_seg_size(t->raw);
	t->snap = malloc(t->size);
	CHECK(t->snap != NULL);
	memcpy(t->snap, t->mem, t->size);
}

static void report(const char *what, const struct region_state *rs, int64_t t0)
{
	printf("%-40s %s, %.1f s", what, rs->fails ? "FAILED" : "ok",
	       (double)(t_now_ns() - t0) / 1e9);
	if (rs->fails)
		printf(": %d failures (%d hangs)", rs->fails, rs->hangs);
	if (rs->fails > rs->shown)
		printf(", %d not shown", rs->fails - rs->shown);
	if (rs->slow)
		printf(", %d slow writes noted", rs->slow);
	if (rs->skipped)
		printf(", %d trials skipped after hangs or slow writes", rs->skipped);
	printf("\n");
	fflush(stdout);
}

/* Regions to run: all, or those whose description holds argv[1] ("mutex", "chan/"). */
static const char *filter;

static int want(const char *what)
{
	return !filter || strstr(what, filter);
}

int main(int argc, char **argv)
{
	static const enum phase both[] = {VICTIM, FRESH};
	static const enum phase held[] = {VICTIM, FRESH, HELD};
	filter = argc > 1 ? argv[1] : NULL;
	stage = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(stage != MAP_FAILED);
	for (unsigned i = 0; i < BLOB_SIZE; i++) {
		pat_a[i] = (unsigned char)(0xa0 + i * 3);
		pat_c[i] = (unsigned char)(0xc0 + i * 5);
		pat_b[i] = (unsigned char)(0xb0 + i * 7);
	}
	struct target targets[] = {
		{"blob/posix", SHMKIT_KIND_BLOB, 0, t_name("blob"), NULL, NULL, NULL, 0},
		{"blob/sysv", SHMKIT_KIND_BLOB, SHMKIT_SEG_SYSV, t_name("blob-sysv"), NULL, NULL, NULL, 0},
		{"chan/posix", SHMKIT_KIND_CHAN, 0, t_name("chan"), NULL, NULL, NULL, 0},
		{"chan/sysv", SHMKIT_KIND_CHAN, SHMKIT_SEG_SYSV, t_name("chan-sysv"), NULL, NULL, NULL, 0},
	};
	const size_t ntargets = sizeof targets / sizeof targets[0];
	for (size_t i = 0; i < ntargets; i++)
		setup_target(&targets[i]);

	int failed_regions = 0;
	for (size_t i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];
		int blob = t->kind == SHMKIT_KIND_BLOB;
		for (int region = 0; region < 3; region++) {
			char what[80];
			struct region_state rs = {0};
			int64_t t0 = t_now_ns();
			/* The layers above read the same words on either backend: System V
			 * gets the header only. */
			if (region > 0 && t->sysv)
				break;
			snprintf(what, sizeof what, "%s: %s", t->label,
				 region == 0 ? "header words and name"
				 : region == 1 ? (blob ? "mutex words" : "control words")
				 : blob ? "control words" : "ring record headers");
			if (!want(what))
				continue;
			if (region == 0) {
				sweep(t, 0, offsetof(struct shmkit__hdr, name), hdr_label, both, 2, &rs);
				name_probes(t, both, 2, &rs);
			} else if (blob && region == 1) {
				sweep(t, SHMKIT_DATA_OFF, SHMKIT_DATA_OFF + 64, blob_label, held, 3, &rs);
			} else if (blob) {
				sweep(t, SHMKIT_DATA_OFF + 64, SHMKIT_DATA_OFF + BLOB_CTL_BYTES,
				      blob_label, both, 2, &rs);
			} else if (region == 1) {
				sweep(t, SHMKIT_DATA_OFF, SHMKIT_DATA_OFF + CHAN_CTL_BYTES, chan_label,
				      both, 2, &rs);
			} else {
				ring_probes(t, both, 2, &rs);
			}
			report(what, &rs, t0);
			failed_regions += rs.fails != 0;
		}
	}
	printf("test_hostile: %d trials, %d failed, in %d regions; %d slow writes\n", total_trials,
	       total_fails, failed_regions, total_slow);
	for (size_t i = 0; i < ntargets; i++) {
		shmkit_seg_close(targets[i].raw);
		free(targets[i].snap);
	}
	return total_fails ? T_FAIL : T_PASS;
}
