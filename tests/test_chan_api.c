/* Channels, the API: bad arguments and their errors, send/recv/sendv/reserve/commit/
 * peek/release on one ring (POSIX and System V), large payloads on a cache line, timeouts on empty and full rings,
 * end-of-stream, roles (one producer, one consumer, takeover from a dead holder),
 * handles inherited through fork(), and no descriptor or mapping leaked. */
#include "chan_common.h"
#include "fuzz/fuzz_targets.h" /* the layout offsets, for the role words */

static void test_bad_arguments(void)
{
	const char *name = track("bad", 0);
	const char *other = track("bad-data", 0);
	shmkit_chan *ch = (shmkit_chan *)1;
	const struct {
		const char *name;
		unsigned role;
		size_t cap;
		unsigned flags;
		int err;
	} rows[] = {
		{NULL, P, 4096, C_CREATE, -EINVAL},
		{name, 3, 4096, C_CREATE, -EINVAL},
		{name, P, 4096, C_CREATE | SHMKIT_SEG_RAW, -EINVAL},
		{name, P, 4096, SHMKIT_SEG_RDONLY, -EINVAL},
		{name, P, 4096, C_CREATE | (1u << 20), -EINVAL},
		{name, P, (size_t)1 << 31, C_CREATE, -EINVAL},
		{name, P, SIZE_MAX, C_CREATE, -EINVAL},
		{name, P, 4096, SHMKIT_SEG_EXCL, -EINVAL},
		{"", P, 4096, C_CREATE, -EINVAL},
		{"/a/b", P, 4096, C_CREATE, -EINVAL},
		{name, P, 4096, 0, -ENOENT},
		{name, C, 0, 0, -ENOENT},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		ch = (shmkit_chan *)1;
		int r = shmkit_chan_open(rows[i].name, rows[i].role, rows[i].cap, 0, rows[i].flags, &ch);
		if (r != rows[i].err) {
			fprintf(stderr, "open row %zu: got %d (%s), want %d\n", i, r, shmkit_strerror(r),
				rows[i].err);
			exit(T_FAIL);
		}
		CHECK(ch == NULL);
	}
	CHECK_EQ(shmkit_chan_open(name, P, 4096, 0, C_CREATE, NULL), -EINVAL);

	/* A segment of another kind is not a channel. */
	shmkit_seg *seg;
	CHECK_OK(shmkit_seg_open(other, SHMKIT_KIND_DATA, 8192, 0, C_CREATE, &seg));
	CHECK_EQ(shmkit_chan_open(other, C, 0, 0, 0, &ch), -EPROTO);
	shmkit_seg_close(seg);

	/* Capacities round up to a power of two, at least 4096; max_msg is half. */
	shmkit_chan *p = t_chan_open_ok(name, P, 5000, C_CREATE);
	struct shmkit_chan_stats st = stats_of(p);
	CHECK_EQ(st.capacity, 8192);
	CHECK_EQ(st.max_msg, 4096);
	CHECK_EQ(st.producer_pid, getpid());
	CHECK_EQ(st.consumer_pid, 0);
	CHECK_EQ(shmkit_chan_open(name, C, 4096, 0, 0, &ch), -EINVAL); /* another capacity */
	CHECK_EQ(shmkit_chan_open(name, C, 8192, 0, C_CREATE, &ch), -EEXIST);
	shmkit_chan *c = t_chan_open_ok(name, C, 8000, 0);
	shmkit_chan *o = t_chan_open_ok(name, O, 0, 0);
	CHECK(shmkit_chan_seg(c) != NULL);
	CHECK(shmkit_chan_seg(NULL) == NULL);

	unsigned char buf[8192] = {0};
	const void *pb;
	size_t pl;
	void *q;
	struct iovec iov[2] = {{buf, 10}, {buf, 0}};
	const struct {
		const char *what;
		long long got, want;
	} calls[] = {
		{"send NULL", shmkit_chan_send(NULL, buf, 1, 0), -EINVAL},
		{"send by consumer", shmkit_chan_send(c, buf, 1, 0), -EINVAL},
		{"send by observer", shmkit_chan_send(o, buf, 1, 0), -EINVAL},
		{"send NULL buf", shmkit_chan_send(p, NULL, 1, 0), -EINVAL},
		{"send len 0", shmkit_chan_send(p, buf, 0, 0), -EINVAL},
		{"send too big", shmkit_chan_send(p, buf, 4097, 0), -EMSGSIZE},
		{"send huge", shmkit_chan_send(p, buf, SIZE_MAX, 0), -EMSGSIZE},
		{"sendv NULL", shmkit_chan_sendv(p, NULL, 1, 0), -EINVAL},
		{"sendv n 0", shmkit_chan_sendv(p, iov, 0, 0), -EINVAL},
		{"sendv n -1", shmkit_chan_sendv(p, iov, -1, 0), -EINVAL},
		{"sendv len 0", shmkit_chan_sendv(p, iov, 2, 0), -EINVAL},
		{"sendv by consumer", shmkit_chan_sendv(c, iov, 1, 0), -EINVAL},
		{"recv NULL", shmkit_chan_recv(NULL, buf, 1, 0), -EINVAL},
		{"recv by producer", shmkit_chan_recv(p, buf, 1, 0), -EINVAL},
		{"recv by observer", shmkit_chan_recv(o, buf, 1, 0), -EINVAL},
		{"recv NULL buf", shmkit_chan_recv(c, NULL, 1, 0), -EINVAL},
		{"reserve by consumer", shmkit_chan_reserve(c, 1, 0, &q), -EINVAL},
		{"reserve len 0", shmkit_chan_reserve(p, 0, 0, &q), -EINVAL},
		{"reserve too big", shmkit_chan_reserve(p, 4097, 0, &q), -EMSGSIZE},
		{"reserve NULL out", shmkit_chan_reserve(p, 1, 0, NULL), -EINVAL},
		{"commit unreserved", shmkit_chan_commit(p, 1), -EINVAL},
		{"commit by consumer", shmkit_chan_commit(c, 1), -EINVAL},
		{"commit NULL", shmkit_chan_commit(NULL, 1), -EINVAL},
		{"peek by producer", shmkit_chan_peek(p, &pb, &pl, 0), -EINVAL},
		{"peek NULL buf", shmkit_chan_peek(c, NULL, &pl, 0), -EINVAL},
		{"peek NULL len", shmkit_chan_peek(c, &pb, NULL, 0), -EINVAL},
		{"release unpeeked", shmkit_chan_release(c), -EINVAL},
		{"release by producer", shmkit_chan_release(p), -EINVAL},
		{"fd by observer", shmkit_chan_fd(o), -EINVAL},
		{"fd NULL", shmkit_chan_fd(NULL), -EINVAL},
		{"set_spin NULL", shmkit_chan_set_spin(NULL, 0), -EINVAL},
		{"stats NULL", shmkit_chan_stats(NULL, &st), -EINVAL},
		{"stats NULL out", shmkit_chan_stats(p, NULL), -EINVAL},
		{"close NULL", shmkit_chan_close(NULL), 0},
		{"empty recv", shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN},
	};
	for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		if (calls[i].got != calls[i].want) {
			fprintf(stderr, "%s: got %lld (%s), want %lld\n", calls[i].what, calls[i].got,
				shmkit_strerror((int)calls[i].got), calls[i].want);
			exit(T_FAIL);
		}
	}

	/* Commit checks its length against the reservation. */
	CHECK_OK(shmkit_chan_reserve(p, 10, 0, &q));
	CHECK(q != NULL);
	CHECK_EQ(shmkit_chan_commit(p, 11), -EINVAL);
	CHECK_EQ(shmkit_chan_commit(p, 0), -EINVAL);
	memcpy(q, "abcdefghij", 10);
	CHECK_OK(shmkit_chan_commit(p, 4));
	CHECK_EQ(shmkit_chan_commit(p, 4), -EINVAL); /* nothing reserved any more */
	/* Too small a buffer leaves the message queued. */
	CHECK_EQ(shmkit_chan_recv(c, buf, 3, 0), -EMSGSIZE);
	CHECK_EQ(shmkit_chan_recv(c, buf, 4, 0), 4);
	CHECK(memcmp(buf, "abcd", 4) == 0);
	/* The largest message, both ways. */
	memset(buf, 7, 4096);
	CHECK_OK(shmkit_chan_send(p, buf, 4096, 0));
	CHECK_EQ(shmkit_chan_peek(c, &pb, &pl, 0), 4096);
	CHECK(pl == 4096 && ((const unsigned char *)pb)[4095] == 7);
	CHECK_OK(shmkit_chan_release(c));
	CHECK_EQ(shmkit_chan_set_spin(p, -5), 0);
	CHECK_EQ(shmkit_chan_set_spin(c, 1000), 0);

	shmkit_chan_close(o);
	shmkit_chan_close(c);
	shmkit_chan_close(p);

	/* Capacity 0: creating picks the default, opening accepts any. */
	const char *def = track("default", 0);
	p = t_chan_open_ok(def, P, 0, SHMKIT_SEG_CREATE);
	/* Half the L2 cache, a power of two from 64 KiB to 4 MiB (the sysfs fallback
	 * when sysconf() knows nothing: any such power of two). */
	uint64_t cap0 = stats_of(p).capacity, want = 64 << 10;
	long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
	while (l2 > 0 && want < (4 << 20) && want * 2 <= (uint64_t)l2 / 2)
		want *= 2;
	CHECK(cap0 >= 64 << 10 && cap0 <= 4 << 20 && (cap0 & (cap0 - 1)) == 0);
	if (l2 > 0)
		CHECK_EQ(cap0, want);
	c = t_chan_open_ok(def, C, 0, SHMKIT_SEG_CREATE);
	CHECK_EQ(stats_of(c).capacity, cap0);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	CHECK_OK(shmkit_seg_unlink(def, 0));
	CHECK_OK(shmkit_seg_unlink(name, 0));
	CHECK_OK(shmkit_seg_unlink(other, 0));
}

static void test_basic(unsigned sysv)
{
	const char *name = track(sysv ? "basic-sysv" : "basic", sysv);
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE | sysv);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, sysv);
	unsigned char buf[4096];
	/* Many laps of the small ring, with pads. */
	for (uint64_t i = 0; i < 20000; i++) {
		size_t len = 1 + (size_t)(mix64(i) % 2048);
		fill(i, buf, len);
		CHECK_OK(shmkit_chan_send(p, buf, len, 0));
		ssize_t r = shmkit_chan_recv(c, buf, sizeof buf, 0);
		CHECK_EQ(r, len);
		CHECK(memcmp(buf, &i, len < 8 ? len : 8) == 0);
	}
	struct iovec iov[3] = {{"one", 3}, {"two!", 4}, {"three", 5}};
	CHECK_EQ(shmkit_chan_sendv(p, iov, 3, 0), 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), iov[i].iov_len);
		CHECK(memcmp(buf, iov[i].iov_base, iov[i].iov_len) == 0);
	}
	struct shmkit_chan_stats st = stats_of(c);
	CHECK_EQ(st.msgs_sent, 20003);
	CHECK_EQ(st.msgs_recv, 20003);
	CHECK_EQ(st.bytes_sent, st.bytes_recv);
	CHECK_EQ(st.used, 0); /* published when recv found the ring empty... */
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
	CHECK_EQ(stats_of(c).used, 0);
	/* End-of-stream after the last message, and it lasts. */
	CHECK_OK(shmkit_chan_send(p, "last", 4, 0));
	shmkit_chan_close(p);
	CHECK_EQ(stats_of(c).producer_closed, 1);
	CHECK_EQ(stats_of(c).producer_pid, 0);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, -1), 4);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, -1), 0);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 0);
	const void *pb;
	size_t pl;
	CHECK_EQ(shmkit_chan_peek(c, &pb, &pl, 0), 0);
	CHECK(pb == NULL && pl == 0);
	/* A new producer continues the stream. */
	p = t_chan_open_ok(name, P, 0, sysv);
	CHECK_EQ(stats_of(c).producer_closed, 0);
	CHECK_OK(shmkit_chan_send(p, "again", 5, 0));
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 5);
	/* Deleted: both ends get -EIDRM. */
	CHECK_OK(shmkit_seg_delete(shmkit_chan_seg(p)));
	CHECK_EQ(shmkit_chan_send(p, "x", 1, 0), -EIDRM);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EIDRM);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 50 * SHMKIT_MSEC), -EIDRM);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
}

/* Payloads of four cache lines and more start on a line (the producer pads to it),
 * except where aligning would take a pad to the lap's end: at most one message per
 * lap. Peek shows where a payload lies; every message arrives intact, small and
 * large ones mixed, through reserve/commit and send alike. */
static void test_alignment(void)
{
	const char *name = track("align", 0);
	const size_t cap = 64 << 10;
	long line = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
	if (line < 16 || line > 128 || (line & (line - 1)))
		line = 64; /* as the library falls back */
	shmkit_chan *p = t_chan_open_ok(name, P, cap, C_CREATE);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	static unsigned char buf[8192];
	uint64_t bytes = 0, large = 0, unaligned = 0;
	for (uint64_t i = 0; i < 4000; i++) {
		size_t len = i % 3 == 0 ? 1 + (size_t)(mix64(i) % 200) : 4 * (size_t)line + (size_t)(mix64(i) % 6000);
		if (i % 5 == 0) {
			void *d;
			CHECK_OK(shmkit_chan_reserve(p, len, -1, &d));
			fill(i, d, len);
			CHECK_OK(shmkit_chan_commit(p, len));
		} else {
			fill(i, buf, len);
			CHECK_OK(shmkit_chan_send(p, buf, len, -1));
		}
		const void *pb;
		size_t pl;
		CHECK_EQ(shmkit_chan_peek(c, &pb, &pl, 0), len);
		fill(i, buf, len);
		CHECK(pl == len && memcmp(pb, buf, len) == 0);
		if (len >= 4 * (size_t)line) {
			large++;
			unaligned += ((uintptr_t)pb & ((uintptr_t)line - 1)) != 0;
		}
		CHECK_OK(shmkit_chan_release(c));
		bytes += len + 64;
	}
	uint64_t laps = bytes / cap + 1;
	if (unaligned > laps) {
		fprintf(stderr, "%llu of %llu large payloads not on a line, in at most %llu laps\n",
			(unsigned long long)unaligned, (unsigned long long)large,
			(unsigned long long)laps);
		exit(T_FAIL);
	}
	CHECK(large > 2000);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

static void test_timeouts(void)
{
	const char *name = track("timeouts", 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	unsigned char buf[2048] = {0};
	const void *pb;
	size_t pl;
	void *q;
	for (int spin = 0; spin < 2; spin++) {
		int64_t s = spin ? 50000 : 0;
		shmkit_chan_set_spin(p, s);
		shmkit_chan_set_spin(c, s);
		/* Empty. */
		CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
		CHECK_EQ(shmkit_chan_peek(c, &pb, &pl, 0), -EAGAIN);
		int64_t t = t_now_ns();
		CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 20 * SHMKIT_MSEC), -ETIMEDOUT);
		CHECK(t_now_ns() - t >= 20 * SHMKIT_MSEC);
		t = t_now_ns();
		CHECK_EQ(shmkit_chan_peek(c, &pb, &pl, 5 * SHMKIT_MSEC), -ETIMEDOUT);
		CHECK(t_now_ns() - t >= 5 * SHMKIT_MSEC);
		/* Full. */
		int n = 0;
		while (shmkit_chan_send(p, buf, 100, 0) == 0)
			n++;
		CHECK(n >= 4096 / 112 - 1);
		CHECK_EQ(shmkit_chan_send(p, buf, 100, 0), -EAGAIN);
		CHECK_EQ(shmkit_chan_reserve(p, 100, 0, &q), -EAGAIN);
		CHECK(q == NULL);
		struct iovec iov[2] = {{buf, 100}, {buf, 100}};
		CHECK_EQ(shmkit_chan_sendv(p, iov, 2, 0), -EAGAIN);
		t = t_now_ns();
		CHECK_EQ(shmkit_chan_send(p, buf, 100, 20 * SHMKIT_MSEC), -ETIMEDOUT);
		CHECK(t_now_ns() - t >= 20 * SHMKIT_MSEC);
		CHECK_EQ(shmkit_chan_reserve(p, 2048, 5 * SHMKIT_MSEC, &q), -ETIMEDOUT);
		/* sendv sends what fits before the timeout runs out. Room is published
		 * lazily: every capacity/8 bytes released (or when the ring is empty). */
		for (int i = 0; i < 5; i++)
			CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 100);
		/* A send discards a pending reservation, even a send that fails. */
		CHECK_EQ(shmkit_chan_reserve(p, 100, 0, &q), 0);
		CHECK_EQ(shmkit_chan_send(p, buf, 2000, 0), -EAGAIN);
		CHECK_EQ(shmkit_chan_commit(p, 100), -EINVAL);
		struct iovec many[8];
		for (int i = 0; i < 8; i++)
			many[i] = (struct iovec){buf, 100};
		int k = shmkit_chan_sendv(p, many, 8, 0);
		CHECK(k >= 1 && k < 8);
		int drained = 0;
		while (shmkit_chan_recv(c, buf, sizeof buf, 0) == 100)
			drained++;
		CHECK_EQ(drained, n - 5 + k);
	}
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* Producer closes while the consumer sleeps: end-of-stream, after every message. */
static void test_end_of_stream(void)
{
	const char *name = track("eos", 0);
	shmkit_chan *c = t_chan_open_ok(name, C, 8192, C_CREATE);
	size_t max = stats_of(c).max_msg;
	struct shared *sh = shared_new();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_chan_close(c);
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		produce(p, 0, 1000, 5, max, NULL, 0);
		/* Wait until the consumer has everything and sleeps, then close. */
		shmkit_chan *o = t_chan_open_ok(name, O, 0, 0);
		uint64_t s0 = 0;
		for (;;) {
			struct shmkit_chan_stats st = stats_of(o);
			if (st.msgs_recv == 1000 && s0 == 0)
				s0 = st.consumer_sleeps + 1;
			if (s0 && st.consumer_sleeps >= s0)
				break;
			t_nap_ms(1);
		}
		atomic_store(&sh->t0, t_now_ns());
		shmkit_chan_close(p);
		shmkit_chan_close(o);
		_exit(0);
	}
	uint64_t seq = 0;
	CHECK_EQ(consume(c, &seq, 1000, 6, max), 1);
	CHECK_EQ(seq, 1000);
	unsigned char buf[16];
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, -1), 0);
	int64_t dt = t_now_ns() - atomic_load(&sh->t0);
	/* Woken by the close, not by a slice expiring. */
	CHECK(dt < SHMKIT_SEC);
	CHECK_EQ(t_wait(pid), 0);
	shmkit_chan_close(c);
	munmap(sh, sizeof *sh);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* Roles: one producer and one consumer; a live holder gives -EBUSY, a dead one is
 * replaced; observers are unlimited. */
static void test_roles(void)
{
	const char *name = track("roles", 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	shmkit_chan *x = (shmkit_chan *)1;
	CHECK_EQ(shmkit_chan_open(name, P, 0, 0, 0, &x), -EBUSY);
	CHECK(x == NULL);
	CHECK_EQ(shmkit_chan_open(name, C, 0, 0, 0, &x), -EBUSY);
	shmkit_chan *o1 = t_chan_open_ok(name, O, 0, 0), *o2 = t_chan_open_ok(name, O, 0, 0);
	shmkit_chan_close(o1);
	shmkit_chan_close(o2);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	/* Held by children: -EBUSY while they live, taken over once they are killed (and
	 * before they are reaped: a zombie is dead). */
	for (unsigned role = P; role <= C; role++) {
		int pfd[2];
		CHECK(pipe(pfd) == 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			shmkit_chan *h = t_chan_open_ok(name, role, 0, 0);
			char b = 1;
			CHECK(write(pfd[1], &b, 1) == 1);
			for (;;)
				pause();
			shmkit_chan_close(h);
		}
		char b;
		CHECK(read(pfd[0], &b, 1) == 1);
		CHECK_EQ(shmkit_chan_open(name, role, 0, 0, 0, &x), -EBUSY);
		/* The stats say whether a role's holder lives, and nothing of a free one. */
		shmkit_chan *ob = t_chan_open_ok(name, O, 0, 0);
		CHECK_EQ(role == P ? stats_of(ob).producer_alive : stats_of(ob).consumer_alive, 1);
		CHECK_EQ(role == P ? stats_of(ob).consumer_alive : stats_of(ob).producer_alive, 0);
		kill(pid, SIGKILL);
		int dead = 0;
		for (int i = 0; !dead && i < 1000; i++) {
			struct shmkit_chan_stats st = stats_of(ob);
			dead = (role == P ? st.producer_alive : st.consumer_alive) == 0;
			if (dead) /* the pid stays until the role is taken over */
				CHECK(role == P ? st.producer_pid != 0 : st.consumer_pid != 0);
			else
				t_nap_ms(1);
		}
		CHECK(dead);
		shmkit_chan_close(ob);
		/* Killed, maybe not yet a zombie: retry briefly. */
		int r;
		for (int i = 0; (r = shmkit_chan_open(name, role, 0, 0, 0, &x)) == -EBUSY && i < 1000; i++)
			t_nap_ms(1);
		CHECK_OK(r);
		CHECK_EQ(role == P ? stats_of(x).producer_pid : stats_of(x).consumer_pid, getpid());
		shmkit_chan_close(x);
		CHECK_EQ(t_wait(pid), 128 + SIGKILL);
		close(pfd[0]);
		close(pfd[1]);
	}
	/* A role word naming no liveness token (garbage, or a pid-and-start-time word of
	 * the old layout) is free: a pid is never proof of life. One naming the live
	 * token of another process is not. */
	uint64_t *owner = (uint64_t *)((unsigned char *)shmkit_seg_data(shmkit_chan_seg(
					       p = t_chan_open_ok(name, O, 0, 0))) + FZ_OFF_P_OWNER);
	__atomic_store_n(owner, (uint64_t)(uint32_t)getpid() << 32 | 12345u, __ATOMIC_SEQ_CST);
	x = t_chan_open_ok(name, P, 0, 0);
	shmkit_chan_close(x);
	__atomic_store_n(owner, UINT64_C(0xfffffff0) << 32, __ATOMIC_SEQ_CST);
	x = t_chan_open_ok(name, P, 0, 0);
	shmkit_chan_close(x);
	{
		int pfd[2];
		CHECK(pipe(pfd) == 0);
		pid_t pid = t_fork_raw();
		CHECK(pid >= 0);
		if (pid == 0) {
			uint64_t tok;
			CHECK_OK(shmkit__live_token(&tok));
			CHECK(write(pfd[1], &tok, sizeof tok) == sizeof tok);
			for (;;)
				pause();
		}
		uint64_t tok;
		CHECK(read(pfd[0], &tok, sizeof tok) == sizeof tok);
		__atomic_store_n(owner, tok, __ATOMIC_SEQ_CST);
		CHECK_EQ(shmkit_chan_open(name, P, 0, 0, 0, &x), -EBUSY);
		CHECK_EQ(stats_of(p).producer_pid, 0); /* it never said who it is */
		kill(pid, SIGKILL);
		CHECK_EQ(t_wait(pid), 128 + SIGKILL);
		x = t_chan_open_ok(name, P, 0, 0);
		CHECK_EQ(stats_of(x).producer_pid, getpid());
		shmkit_chan_close(x);
		close(pfd[0]);
		close(pfd[1]);
	}
	shmkit_chan_close(p);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* A handle inherited through fork() stays the parent's: the child's close leaves the
 * role, the child cannot take it while the parent lives, and a child that lives on
 * never makes a dead parent look alive (its inherited descriptors prove nothing). */
static void test_fork_inherited(void)
{
	const char *name = track("inherit", 0);
	shmkit_chan *c = t_chan_open_ok(name, C, 4096, C_CREATE);
	int go[2], done[2], life[2];
	CHECK(pipe(go) == 0 && pipe(done) == 0 && pipe(life) == 0);
	/* Orphans come to us, so that the child outliving its parent can be reaped. */
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	pid_t parent = t_fork_raw();
	CHECK(parent >= 0);
	if (parent == 0) {
		close(life[1]);
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		CHECK_OK(shmkit_chan_send(p, "a", 1, 0));
		/* Not t_fork_raw(): this child must outlive its parent. It lives until
		 * the test closes its end of life[] (or exits). */
		pid_t child = fork();
		CHECK(child >= 0);
		if (child == 0) {
			shmkit_chan *x = (shmkit_chan *)1;
			CHECK_EQ(shmkit_chan_open(name, P, 0, 0, 0, &x), -EBUSY);
			CHECK_OK(shmkit_chan_close(p)); /* only unmaps */
			CHECK_EQ(shmkit_chan_open(name, P, 0, 0, 0, &x), -EBUSY);
			char b = 1;
			CHECK(write(done[1], &b, 1) == 1);
			/* Lives on, with the parent's descriptors. */
			while (read(life[0], &b, 1) != 0)
				;
			_exit(0);
		}
		char b;
		CHECK(read(done[0], &b, 1) == 1);
		/* The child's close changed nothing: the role and the stream are ours. */
		CHECK_OK(shmkit_chan_send(p, "b", 1, 0));
		CHECK(write(go[1], &child, sizeof child) == sizeof child);
		for (;;)
			pause();
	}
	close(life[0]);
	pid_t child;
	CHECK(read(go[0], &child, sizeof child) == sizeof child);
	char buf[8];
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, SHMKIT_SEC), 1);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, SHMKIT_SEC), 1);
	CHECK_EQ(buf[0], 'b');
	CHECK_EQ(stats_of(c).producer_pid, parent);
	CHECK_EQ(stats_of(c).producer_closed, 0);
	/* The producer dies; its child lives on: the producer is reported dead. */
	kill(parent, SIGKILL);
	CHECK_EQ(t_wait(parent), 128 + SIGKILL);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 5 * SHMKIT_SEC), -EPIPE);
	CHECK_EQ(kill(child, 0), 0); /* still alive */
	close(life[1]);
	CHECK_EQ(t_wait(child), 0);
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
	shmkit_chan_close(c);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* No descriptor or mapping grows over many open/close cycles. */
static void test_leaks(void)
{
	const char *name = track("leaks", 0);
	const char *sv = track("leaks-sysv", SHMKIT_SEG_SYSV);
	shmkit_chan *keep = t_chan_open_ok(name, O, 4096, SHMKIT_SEG_CREATE);
	shmkit_chan *keep2 = t_chan_open_ok(sv, O, 4096, SHMKIT_SEG_CREATE | SHMKIT_SEG_SYSV);
	int fds = t_count_fds(), maps = t_count_maps();
	unsigned char buf[64] = {0};
	for (int i = 0; i < 2000; i++) {
		unsigned sysv = i % 4 == 3 ? SHMKIT_SEG_SYSV : 0;
		const char *n = sysv ? sv : name;
		shmkit_chan *p = t_chan_open_ok(n, P, 0, sysv);
		shmkit_chan *c = t_chan_open_ok(n, C, 0, sysv);
		if (i % 8 == 0)
			CHECK(shmkit_chan_fd(c) >= 0);
		CHECK_OK(shmkit_chan_send(p, buf, 1 + i % 64, 0));
		CHECK(shmkit_chan_recv(c, buf, sizeof buf, 0) > 0);
		CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
		shmkit_chan_close(c);
		shmkit_chan_close(p);
	}
	CHECK_EQ(t_count_fds(), fds);
	/* Valgrind maps memory of its own into the program as it goes. */
	if (!t_under_valgrind())
		CHECK_EQ(t_count_maps(), maps);
	shmkit_chan_close(keep);
	shmkit_chan_close(keep2);
	CHECK_OK(shmkit_seg_unlink(name, 0));
	CHECK_OK(shmkit_seg_unlink(sv, SHMKIT_SEG_SYSV));
}

int main(void)
{
	chan_test_init();
	test_bad_arguments();
	test_basic(0);
	test_basic(SHMKIT_SEG_SYSV);
	test_alignment();
	test_timeouts();
	test_end_of_stream();
	test_roles();
	test_fork_inherited();
	test_leaks();
	return T_PASS;
}
