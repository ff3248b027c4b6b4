/* Topics with processes SIGKILLed at random moments.
 *
 * Part 1, hundreds of trials (default 200, alternately lossy and reliable): two
 * publishers (publish, loan/commit, publishv at random) and two subscribers (receive,
 * peek/release at random) on a small ring; one or two of the four are SIGKILLed after
 * a random delay. Nobody may hang (every process and the whole trial run under
 * alarms), the survivors must finish: surviving publishers publish everything,
 * surviving subscribers end with end-of-stream (or -EPIPE when a publisher was
 * killed) and never see a torn, duplicated or reordered message; in reliable mode they
 * receive every message of each surviving publisher and a gapless prefix of each
 * killed one's.
 *
 * Part 2, reliable mode: a publisher asleep on a ring held full by a subscriber that
 * never reads; that subscriber is SIGKILLed, and the publisher must resume within
 * 250 ms (the header's bound) plus a tolerance: STALL_TOLERANCE_MS covers what the
 * library cannot: the kernel's teardown of the killed process and the scheduling delay
 * of a woken publisher on a loaded 2-vCPU machine where half a dozen builds and tests
 * run (tens of ms each at worst, seen up to ~100 ms). The distribution is printed.
 *
 * 200 trials (60 under ThreadSanitizer), stopping after 40 s on a slow machine; 20 + 5
 * stall measurements. SHMKIT_TEST_SCALE multiplies the trial counts. */
#include <sched.h>

#include "test_topic_common.h"

#define MAXLEN 512
#define CAPACITY 8192
#define STALL_BOUND_MS 250
#define STALL_TOLERANCE_MS 250

struct shared {
	_Atomic int ready;
	_Atomic int go;
	_Atomic int stop;          /* publishers finish their message and close */
	_Atomic uint64_t published[2]; /* each publisher's count, final once it closed */
	uint64_t per_pub;          /* at most this many each */
	int reliable;
	/* Per subscriber: how many of each publisher's messages it received in order, and
	 * how it ended. */
	uint64_t got[2][2];
	int end[2];
	uint64_t abandoned;
	/* Part 2 */
	_Atomic int64_t killed_at;
};

static const char *name;
static struct shared *sh;

static int publisher(unsigned me, uint64_t seed)
{
	static unsigned char b[4][MAXLEN];
	shmkit_topic *p = tp_open_ok(name, TP_PUB, 0, 0);
	t_guard(25, "kill trial: publisher");
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		sched_yield();
	uint64_t s = 0;
	while (s < sh->per_pub && !atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		unsigned op = (unsigned)(t_rand(&seed) % 3);
		if (op == 0) {
			size_t len = tp_fill(b[0], TP_ID(me, s), MAXLEN);
			CHECK_OK(shmkit_topic_publish(p, b[0], len, 10 * SHMKIT_SEC));
			s++;
		} else if (op == 1) {
			void *lb;
			size_t len = tp_len(TP_ID(me, s), MAXLEN);
			CHECK_OK(shmkit_topic_loan(p, MAXLEN, 10 * SHMKIT_SEC, &lb));
			t_msg_fill(lb, len, TP_ID(me, s));
			/* Now and then linger inside the claim, where a kill leaves it BUSY. */
			if ((t_rand(&seed) & 7) == 0)
				sched_yield();
			CHECK_OK(shmkit_topic_commit(p, len));
			s++;
		} else {
			struct iovec iov[4];
			int k = 1 + (int)(t_rand(&seed) % 4);
			if ((uint64_t)k > sh->per_pub - s)
				k = (int)(sh->per_pub - s);
			for (int j = 0; j < k; j++) {
				iov[j].iov_base = b[j];
				iov[j].iov_len = tp_fill(b[j], TP_ID(me, s + (uint64_t)j), MAXLEN);
			}
			int r = shmkit_topic_publishv(p, iov, k, 10 * SHMKIT_SEC);
			if (r < 1 || r > k) {
				fprintf(stderr, "publishv: %d (%s)\n", r, shmkit_strerror(r));
				return T_FAIL;
			}
			s += (uint64_t)r;
		}
		atomic_store_explicit(&sh->published[me], s, memory_order_relaxed);
	}
	atomic_store(&sh->published[me], s);
	CHECK_OK(shmkit_topic_close(p));
	return T_PASS;
}

static int subscriber(unsigned me, uint64_t seed)
{
	static unsigned char b[MAXLEN], copy[MAXLEN];
	uint64_t expect[2] = {0, 0};
	shmkit_topic *s = tp_open_ok(name, TP_SUB, 0, 0);
	t_guard(25, "kill trial: subscriber");
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		sched_yield();
	for (;;) {
		ssize_t r;
		const unsigned char *m = b;
		int peeked = (int)(t_rand(&seed) & 1);
		if (peeked) {
			const void *pb;
			size_t len;
			r = shmkit_topic_peek(s, &pb, &len, 10 * SHMKIT_SEC);
			if (r > 0) {
				CHECK_EQ(len, (size_t)r);
				memcpy(copy, pb, len);
				int rel = shmkit_topic_release(s);
				if (rel == -ESTALE && !sh->reliable)
					continue;
				CHECK_EQ(rel, 0);
				m = copy;
			}
		} else {
			r = shmkit_topic_receive(s, b, sizeof b, 10 * SHMKIT_SEC);
		}
		if (r == -EOVERFLOW && !sh->reliable)
			continue;
		if (r == 0 || r == -EPIPE) {
			sh->end[me] = (int)r;
			break;
		}
		if (r < 0) {
			fprintf(stderr, "kill trial: subscriber %u: %s\n", me, shmkit_strerror((int)r));
			return T_FAIL;
		}
		uint64_t id = tp_check(m, (size_t)r, MAXLEN);
		if (id == UINT64_MAX || TP_PUB_OF(id) > 1) {
			fprintf(stderr, "kill trial: subscriber %u: TORN message (len %zd, claims %#" PRIx64
				", %s)\n", me, r, t_msg_seq(m, (size_t)r), peeked ? "peeked" : "received");
			return T_FAIL;
		}
		unsigned pb = TP_PUB_OF(id);
		uint64_t sq = TP_SEQ_OF(id);
		if (sq < expect[pb] || (sh->reliable && sq != expect[pb])) {
			fprintf(stderr, "kill trial: subscriber %u: publisher %u's #%" PRIu64
				" when #%" PRIu64 " was next (%s)\n", me, pb, sq, expect[pb],
				sh->reliable ? "reliable" : "lossy");
			return T_FAIL;
		}
		expect[pb] = sq + 1;
	}
	sh->got[me][0] = expect[0];
	sh->got[me][1] = expect[1];
	CHECK_OK(shmkit_topic_close(s));
	return T_PASS;
}

/* Part 1: one trial. Returns how many processes were killed. */
static int trial(int t, uint64_t *seed)
{
	pid_t pids[4];
	int killed[4] = {0};
	memset(sh, 0, sizeof *sh);
	sh->reliable = t & 1;
	sh->per_pub = 200000;
	sh->end[0] = sh->end[1] = 99;
	static char tag[32];
	snprintf(tag, sizeof tag, "kill-%d", t % 2);
	name = t_name(tag);
	shmkit_seg_unlink(name, 0);
	shmkit_topic *creator = tp_open_ok(name, TP_PUB, CAPACITY,
					   TP_CREATE | (sh->reliable ? SHMKIT_TOPIC_RELIABLE : 0));
	for (int i = 0; i < 4; i++) {
		uint64_t cs = t_rand(seed);
		pids[i] = t_fork_raw();
		if (pids[i] == 0)
			_exit(i < 2 ? subscriber((unsigned)i, cs) : publisher((unsigned)i - 2, cs));
	}
	tp_await(&sh->ready, 4, 20, "kill trial: children ready");
	CHECK_OK(shmkit_topic_close(creator));
	atomic_store(&sh->go, 1);
	/* One or two victims, each after a random delay up to 15 ms; the others stop
	 * publishing 20 ms after the start. */
	int64_t t0 = t_now_ns();
	int nv = 1 + (int)(t_rand(seed) % 2);
	for (int v = 0; v < nv; v++) {
		int i = (int)(t_rand(seed) % 4);
		usleep((useconds_t)(t_rand(seed) % 15000));
		kill(pids[i], SIGKILL);
		killed[i] = 1;
	}
	int64_t left = 20 * SHMKIT_MSEC - (t_now_ns() - t0);
	if (left > 0)
		t_nap_ms((int)(left / SHMKIT_MSEC));
	atomic_store(&sh->stop, 1);
	static char what[96];
	snprintf(what, sizeof what, "kill trial %d: waiting for the survivors", t);
	t_guard(40, what);
	int st[4], nkilled = 0, pub_killed = 0;
	for (int i = 0; i < 4; i++) {
		st[i] = t_wait(pids[i]);
		if (st[i] == 128 + SIGKILL && killed[i]) {
			nkilled++;
			pub_killed |= i >= 2;
			continue;
		}
		if (st[i] != 0) {
			fprintf(stderr, "kill trial %d (%s, victims %d%d%d%d): %s %d ended with %d\n", t,
				sh->reliable ? "reliable" : "lossy", killed[0], killed[1], killed[2],
				killed[3], i < 2 ? "subscriber" : "publisher", i % 2, st[i]);
			exit(T_FAIL);
		}
	}
	t_guard(0, "");
	for (int i = 0; i < 2; i++) {
		if (st[i] != 0)
			continue;
		if (!pub_killed)
			CHECK_EQ(sh->end[i], 0);
		else
			CHECK(sh->end[i] == 0 || sh->end[i] == -EPIPE);
		for (int p = 0; p < 2; p++) {
			uint64_t pubd = atomic_load(&sh->published[p]);
			/* A killed publisher may have committed a batch (up to 4) it had not counted. */
			CHECK(sh->got[i][p] <= pubd + (st[2 + p] != 0 ? 4 : 0));
			if (sh->reliable && st[2 + p] == 0 && sh->got[i][p] != pubd) {
				fprintf(stderr, "kill trial %d (reliable): subscriber %d got %" PRIu64
					" of surviving publisher %d's %" PRIu64 " messages\n", t, i,
					sh->got[i][p], p, pubd);
				exit(T_FAIL);
			}
		}
	}
	shmkit_topic *o = tp_open_ok(name, TP_OBS, 0, 0);
	sh->abandoned = tp_stats(o).abandoned;
	CHECK_OK(shmkit_topic_close(o));
	shmkit_seg_unlink(name, 0);
	return nkilled;
}

/* ---- part 2: a reliable publisher resumes when the subscriber holding it dies ---- */

static int stuck_subscriber(void *arg)
{
	(void)arg;
	shmkit_topic *s = tp_open_ok(name, TP_SUB, 0, 0);
	(void)s;
	atomic_fetch_add(&sh->ready, 1);
	for (;;)
		pause();
	return T_PASS;
}

static int reading_subscriber(void *arg)
{
	static unsigned char b[MAXLEN];
	uint64_t next = 0;
	shmkit_topic *s = tp_open_ok(name, TP_SUB, 0, 0);
	t_guard(30, "stall: reading subscriber");
	atomic_fetch_add(&sh->ready, 1);
	(void)arg;
	for (;;) {
		ssize_t r = shmkit_topic_receive(s, b, sizeof b, 20 * SHMKIT_SEC);
		if (r == 0)
			break;
		CHECK(r > 0);
		CHECK_EQ(tp_check(b, (size_t)r, MAXLEN), TP_ID(0, next));
		next++;
	}
	sh->got[0][0] = next;
	shmkit_topic_close(s);
	return T_PASS;
}

static int killer(void *arg)
{
	pid_t victim = (pid_t)(intptr_t)arg;
	/* Long enough for the publisher to have found the ring full and gone to sleep. */
	t_nap_ms(80);
	atomic_store(&sh->killed_at, t_now_ns());
	kill(victim, SIGKILL);
	return T_PASS;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* @nonblocking: the publisher only ever calls with timeout 0 (an event loop's way),
 * retrying every millisecond: the dead subscriber must be evicted all the same. */
static void stall_after_kill(int n, int nonblocking)
{
	static unsigned char b[MAXLEN];
	int64_t *ms = calloc((size_t)n, sizeof *ms);
	CHECK(ms != NULL);
	for (int t = 0; t < n; t++) {
		memset(sh, 0, sizeof *sh);
		name = t_name("stall");
		shmkit_seg_unlink(name, 0);
		shmkit_topic *p = tp_open_ok(name, TP_PUB, CAPACITY, TP_CREATE | SHMKIT_TOPIC_RELIABLE);
		pid_t stuck = t_fork(stuck_subscriber, NULL);
		pid_t reader = t_fork(reading_subscriber, NULL);
		tp_await(&sh->ready, 2, 20, "stall: subscribers ready");
		t_guard(30, "stall: publisher");
		/* Fill the ring: the stuck subscriber holds it. */
		uint64_t s = 0;
		for (;;) {
			size_t len = tp_fill(b, TP_ID(0, s), MAXLEN);
			int r = shmkit_topic_publish(p, b, len, 0);
			if (r == -EAGAIN)
				break;
			CHECK_OK(r);
			s++;
			CHECK(s < 100000);
		}
		pid_t k = t_fork(killer, (void *)(intptr_t)stuck);
		size_t len = tp_fill(b, TP_ID(0, s), MAXLEN);
		int r;
		if (nonblocking) {
			int64_t give_up = t_now_ns() + 10 * SHMKIT_SEC;
			while ((r = shmkit_topic_publish(p, b, len, 0)) == -EAGAIN &&
			       t_now_ns() < give_up)
				t_nap_ms(1);
		} else {
			r = shmkit_topic_publish(p, b, len, 10 * SHMKIT_SEC);
		}
		int64_t resumed = t_now_ns();
		CHECK_OK(r);
		s++;
		CHECK_EQ(t_wait(k), 0);
		CHECK_EQ(t_wait(stuck), 128 + SIGKILL);
		int64_t killed_at = atomic_load(&sh->killed_at);
		CHECK(killed_at > 0);
		ms[t] = (resumed - killed_at) / SHMKIT_MSEC;
		/* The rest goes through, and the reader gets everything. */
		for (int i = 0; i < 50; i++, s++) {
			len = tp_fill(b, TP_ID(0, s), MAXLEN);
			CHECK_OK(shmkit_topic_publish(p, b, len, 10 * SHMKIT_SEC));
		}
		CHECK(tp_stats(p).evicted >= 1);
		CHECK_EQ(tp_stats(p).subscribers, 1);
		CHECK_OK(shmkit_topic_close(p));
		CHECK_EQ(t_wait(reader), 0);
		CHECK_EQ(sh->got[0][0], s);
		t_guard(0, "");
		shmkit_seg_unlink(name, 0);
	}
	qsort(ms, (size_t)n, sizeof *ms, cmp_i64);
	printf("stall after a reliable subscriber's SIGKILL (%s), %d trials: min %" PRId64 " ms, median %"
	       PRId64 " ms, p90 %" PRId64 " ms, max %" PRId64 " ms (bound %d + %d ms)\n",
	       nonblocking ? "publisher retrying with timeout 0" : "publisher asleep in publish", n, ms[0],
	       ms[n / 2], ms[n * 9 / 10], ms[n - 1], STALL_BOUND_MS, STALL_TOLERANCE_MS);
	for (int t = 0; t < n; t++)
		if (ms[t] > STALL_BOUND_MS + STALL_TOLERANCE_MS) {
			fprintf(stderr, "a publisher stayed stalled %" PRId64 " ms after the subscriber "
				"holding it was killed\n", ms[t]);
			exit(T_FAIL);
		}
	free(ms);
}

int main(void)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = t_shared(sizeof *sh);
	uint64_t seed = (uint64_t)t_now_ns() | 1;
	const char *env = getenv("SHMKIT_TEST_SEED");
	if (env)
		seed = strtoull(env, NULL, 0) | 1;
	printf("seed %#" PRIx64 " (SHMKIT_TEST_SEED reproduces it)\n", seed);
	int n = (int)tp_scaled(TP_TSAN ? 60 : 200, 4);
	fflush(stdout);
	int64_t t0 = t_now_ns();
	int victims = 0;
	uint64_t abandoned = 0;
	int done = 0;
	for (int t = 0; t < n; t++) {
		victims += trial(t, &seed);
		abandoned += sh->abandoned;
		done++;
		/* Bounded time on a machine shared with other builds: stop after 40 s
		 * (the count done is printed; SHMKIT_TEST_SCALE asks for more). */
		if (t >= 50 && !getenv("SHMKIT_TEST_SCALE") && t_now_ns() - t0 > 40 * SHMKIT_SEC)
			break;
	}
	printf("%d of %d kill trials in %.1f s: %d processes killed, %" PRIu64
	       " abandoned claims stepped over\n", done, n, (double)(t_now_ns() - t0) / 1e9, victims,
	       abandoned);
	CHECK(abandoned > 0 || done < 100); /* kills did land inside claims */
	fflush(stdout);
	stall_after_kill((int)tp_scaled(TP_TSAN ? 5 : 20, 3), 0);
	fflush(stdout);
	stall_after_kill((int)tp_scaled(TP_TSAN ? 3 : 5, 2), 1);
	printf("test_topic_kill: ok\n");
	return T_PASS;
}
