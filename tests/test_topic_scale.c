/* Topics at scale: 1 000 subscriber handles across 16 processes on one topic (the
 * default, lossy mode, with its default 1 024 listed slots), each receiving every
 * message and end-of-stream; then subscribers joining and leaving in loops (1 000
 * cycles in this process with a descriptor each time, and concurrently from other
 * processes) must leave no slot, descriptor or mapping behind: /proc/self/fd and
 * /proc/self/maps count the same before and after, stats.subscribers is back to its
 * start, and a reliable topic with only 2 subscriber slots still takes new
 * subscribers and never blocks its publisher after thousands of joins.
 *
 * SHMKIT_TEST_SCALE multiplies the join/leave cycles. */
#include <sched.h>

#include "test_topic_common.h"

#define NPROC 16
#define NHANDLES 1000
#define MAXLEN 1024

struct shared {
	_Atomic int ready;
	_Atomic int go;
	_Atomic int done;
	uint64_t nmsg;
};

static const char *name;
static struct shared *sh;
static unsigned char buf[MAXLEN];

static int many_subs_child(void *arg)
{
	int idx = (int)(intptr_t)arg;
	int first = idx * NHANDLES / NPROC, last = (idx + 1) * NHANDLES / NPROC;
	int n = last - first;
	shmkit_topic **h = calloc((size_t)n, sizeof *h);
	CHECK(h != NULL);
	t_guard(100, "scale: subscriber process");
	for (int i = 0; i < n; i++) {
		h[i] = tp_open_ok(name, TP_SUB, 0, 0);
		/* Every fourth handle waits through its descriptor. */
		if (i % 4 == 0)
			CHECK(shmkit_topic_fd(h[i]) >= 0);
	}
	atomic_fetch_add(&sh->ready, n);
	while (!atomic_load(&sh->go))
		t_nap_ms(1);
	for (int i = 0; i < n; i++) {
		static unsigned char b[MAXLEN];
		for (uint64_t k = 0; k < sh->nmsg; k++) {
			ssize_t r;
			if (i % 4 == 0) {
				/* Wait on the descriptor, then receive until -EAGAIN (a readiness
				 * left from a message already taken is allowed). */
				int fd = shmkit_topic_fd(h[i]);
				int64_t since = t_now_ns();
				CHECK(fd >= 0);
				while ((r = shmkit_topic_receive(h[i], b, sizeof b, 0)) == -EAGAIN) {
					CHECK(tp_readable(fd, 30000));
					if (t_now_ns() - since > 30 * SHMKIT_SEC) {
						struct shmkit_topic_stats st = tp_stats(h[i]);
						fprintf(stderr, "handle %d: message %" PRIu64 " not received "
							"in 30 s of readiness (published %" PRIu64 ", next_seq %"
							PRIu64 ", received %" PRIu64 ", lag %" PRIu64 ")\n",
							first + i, k, st.published, st.next_seq, st.received,
							st.lag);
						return T_FAIL;
					}
				}
			} else {
				r = shmkit_topic_receive(h[i], b, sizeof b, 30 * SHMKIT_SEC);
			}
			if (r < 0) {
				fprintf(stderr, "handle %d: message %" PRIu64 ": %s\n", first + i, k,
					shmkit_strerror((int)r));
				return T_FAIL;
			}
			CHECK_EQ(tp_check(b, (size_t)r, MAXLEN), TP_ID(0, k));
		}
		CHECK_EQ(shmkit_topic_receive(h[i], b, sizeof b, 30 * SHMKIT_SEC), 0);
		struct shmkit_topic_stats st = tp_stats(h[i]);
		CHECK_EQ(st.received, sh->nmsg);
		CHECK_EQ(st.lost, 0);
	}
	for (int i = 0; i < n; i++)
		CHECK_OK(shmkit_topic_close(h[i]));
	free(h);
	return T_PASS;
}

static void thousand_subscribers(void)
{
	name = t_name("scale-1000");
	memset(sh, 0, sizeof *sh);
	sh->nmsg = 200;
	/* 1 MiB ring: 200 messages of at most 1 KiB all stay retained. */
	shmkit_topic *p = tp_open_ok(name, TP_PUB, 1 << 20, TP_CREATE);
	pid_t pids[NPROC];
	fflush(stdout);
	for (int i = 0; i < NPROC; i++)
		pids[i] = t_fork(many_subs_child, (void *)(intptr_t)i);
	tp_await(&sh->ready, NHANDLES, 60, "1000 subscriber handles");
	CHECK_EQ(tp_stats(p).subscribers, NHANDLES);
	CHECK_EQ(shmkit_topic_subscribers(p, NULL, 0), NHANDLES);
	struct shmkit_topic_sub_info *info = calloc(NHANDLES, sizeof *info);
	CHECK(info != NULL);
	CHECK_EQ(shmkit_topic_subscribers(p, info, NHANDLES), NHANDLES);
	int alive = 0;
	for (int i = 0; i < NHANDLES; i++)
		alive += info[i].alive == 1;
	CHECK_EQ(alive, NHANDLES);
	free(info);
	int64_t t0 = t_now_ns();
	atomic_store(&sh->go, 1);
	for (uint64_t k = 0; k < sh->nmsg; k++) {
		size_t len = tp_fill(buf, TP_ID(0, k), MAXLEN);
		CHECK_OK(shmkit_topic_publish(p, buf, len, 0));
	}
	CHECK_OK(shmkit_topic_close(p));
	t_guard(120, "scale: 1000 subscribers");
	for (int i = 0; i < NPROC; i++)
		CHECK_EQ(t_wait(pids[i]), 0);
	t_guard(0, "");
	shmkit_topic *o = tp_open_ok(name, TP_OBS, 0, 0);
	CHECK_EQ(tp_stats(o).subscribers, 0);
	CHECK_OK(shmkit_topic_close(o));
	printf("1000 subscriber handles in %d processes received %" PRIu64
	       " messages each in %.2f s\n", NPROC, sh->nmsg, (double)(t_now_ns() - t0) / 1e9);
}

/* One join/leave cycle: open, maybe a descriptor, receive what is published, close. */
static void cycle(const char *n, shmkit_topic *p, uint64_t k, int with_fd)
{
	static unsigned char b[MAXLEN];
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	if (with_fd)
		CHECK(shmkit_topic_fd(s) >= 0);
	size_t len = tp_fill(buf, TP_ID(0, k), MAXLEN);
	CHECK_OK(shmkit_topic_publish(p, buf, len, 5 * SHMKIT_SEC));
	ssize_t r = shmkit_topic_receive(s, b, sizeof b, 0);
	CHECK(r > 0);
	CHECK_EQ(tp_check(b, (size_t)r, MAXLEN), TP_ID(0, k));
	CHECK_OK(shmkit_topic_close(s));
}

static int join_leave_child(void *arg)
{
	long n = (long)(intptr_t)arg;
	static unsigned char b[MAXLEN];
	t_guard(100, "scale: join/leave child");
	for (long i = 0; i < n; i++) {
		shmkit_topic *s = NULL;
		int r = shmkit_topic_open(name, TP_SUB, 0, 0, 0, &s);
		if (r == -EUSERS) {
			/* The reliable topic's 2 slots are busy right now: try again. */
			sched_yield();
			i--;
			continue;
		}
		CHECK_OK(r);
		if (i % 2)
			CHECK(shmkit_topic_fd(s) >= 0);
		ssize_t k = shmkit_topic_receive(s, b, sizeof b, 0);
		CHECK(k == -EAGAIN || k > 0 || k == 0);
		CHECK_OK(shmkit_topic_close(s));
	}
	atomic_fetch_add(&sh->done, 1);
	return T_PASS;
}

static void join_leave(unsigned mode, uint32_t slots)
{
	long cycles = tp_scaled(1000, 20);
	char tag[32];
	snprintf(tag, sizeof tag, "scale-jl-%u", mode ? 1u : 0u);
	const char *n = t_name(tag);
	name = n;
	memset(sh, 0, sizeof *sh);
	struct shmkit_topic_opts o;
	memset(&o, 0, sizeof o);
	o.capacity = 64 * 1024;
	o.flags = TP_CREATE | mode;
	o.max_subscribers = slots;
	shmkit_topic *p = tp_open_opts_ok(n, TP_PUB, &o);
	uint64_t k = 0;
	/* Warm up: what a process makes once (its liveness file, a socket to signal
	 * descriptors with) is not a leak. */
	for (int i = 0; i < 5; i++)
		cycle(n, p, k++, 1);
	int fds0 = t_count_fds(), maps0 = t_count_maps();
	uint32_t subs0 = tp_stats(p).subscribers;
	CHECK_EQ(subs0, 0);
	for (long i = 0; i < cycles; i++)
		cycle(n, p, k++, (int)(i & 1));
	int fds1 = t_count_fds(), maps1 = t_count_maps();
	CHECK_EQ(fds1, fds0);
	/* ThreadSanitizer maps memory of its own as the program runs: there the mappings
	 * are printed, not compared. */
	if (!TP_TSAN)
		CHECK_EQ(maps1, maps0);
	CHECK_EQ(tp_stats(p).subscribers, subs0);
	CHECK_EQ(shmkit_topic_subscribers(p, NULL, 0), 0);

	/* Other processes join and leave while this one publishes. */
	pid_t c[4];
	long per = cycles / 4;
	fflush(stdout);
	for (int i = 0; i < 4; i++)
		c[i] = t_fork(join_leave_child, (void *)(intptr_t)per);
	t_guard(100, "scale: publishing during joins and leaves");
	while (atomic_load(&sh->done) < 4) {
		size_t len = tp_fill(buf, TP_ID(0, k), MAXLEN);
		/* Reliable mode: a subscriber that left must never hold the ring. */
		CHECK_OK(shmkit_topic_publish(p, buf, len, 5 * SHMKIT_SEC));
		k++;
		t_nap_ms(0);
	}
	for (int i = 0; i < 4; i++)
		CHECK_EQ(t_wait(c[i]), 0);
	t_guard(0, "");
	CHECK_EQ(tp_stats(p).subscribers, 0);
	CHECK_EQ(shmkit_topic_subscribers(p, NULL, 0), 0);
	/* Subscribers SIGKILLed while subscribed leave their slot to the next one
	 * (reliable, 2 slots: the opens below need the dead ones' slots). */
	for (int i = 0; slots == 2 && i < 20; i++) {
		atomic_store(&sh->ready, 0);
		fflush(stdout);
		pid_t v = t_fork_raw();
		if (v == 0) {
			shmkit_topic *vs = tp_open_ok(n, TP_SUB, 0, 0);
			if (i & 1)
				CHECK(shmkit_topic_fd(vs) >= 0);
			atomic_store(&sh->ready, 1);
			for (;;)
				pause();
		}
		tp_await(&sh->ready, 1, 20, "a subscriber to kill");
		CHECK_EQ(kill(v, SIGKILL), 0);
		CHECK_EQ(t_wait(v), 128 + SIGKILL);
	}
	/* Every slot is free: as many subscribers as slots open at once. */
	shmkit_topic *h[2];
	if (slots == 2) {
		for (int i = 0; i < 2; i++)
			h[i] = tp_open_ok(n, TP_SUB, 0, 0);
		CHECK_EQ(tp_stats(p).subscribers, 2);
		for (int i = 0; i < 2; i++)
			CHECK_OK(shmkit_topic_close(h[i]));
	}
	/* Reliable: with nobody subscribed, a full ring's worth and more goes through. */
	for (int i = 0; i < 200; i++, k++) {
		size_t len = tp_fill(buf, TP_ID(0, k), MAXLEN);
		CHECK_OK(shmkit_topic_publish(p, buf, len, 0));
	}
	CHECK_EQ(t_count_fds(), fds0);
	if (!TP_TSAN)
		CHECK_EQ(t_count_maps(), maps0);
	CHECK_OK(shmkit_topic_close(p));
	printf("%s, %u slots: %ld join/leave cycles here and %ld in 4 other processes: "
	       "fds %d -> %d, maps %d -> %d, subscribers %u -> %u\n", mode ? "reliable" : "lossy",
	       slots ? slots : 1024, cycles, per * 4, fds0, fds1, maps0, maps1, subs0, 0u);
}

int main(void)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = t_shared(sizeof *sh);
	T_RUN(thousand_subscribers());
	T_RUN(join_leave(0, 0));
	T_RUN(join_leave(SHMKIT_TOPIC_RELIABLE, 2));
	printf("test_topic_scale: ok\n");
	return T_PASS;
}
