/* Channels, peeking ahead: shmkit_chan_peek_next() / shmkit_chan_release_to() /
 * shmkit_chan_position(), the calls a consumer uses to keep messages until they are
 * safe elsewhere (the JetStream bridge). Peeked messages are never overwritten before
 * they are released; positions identify messages across consumers and producers; a
 * consumer that dies or closes with messages peeked leaves them to its successor, at
 * the same positions; bad positions and a hostile producer get errors. */
#include "chan_common.h"
#include "fuzz/fuzz_targets.h"

#define N_MSGS 64

static ssize_t peek_next(shmkit_chan *c, const void **b, size_t *l, uint64_t *pos)
{
	return shmkit_chan_peek_next(c, b, l, pos, 0);
}

/* The calls themselves on one ring: order, contents, the refusals while peeked, the
 * counters, and what release_to accepts. */
static void test_basic(unsigned sysv)
{
	const char *name = track(sysv ? "ahead-sysv" : "ahead", sysv);
	shmkit_chan *p = t_chan_open_ok(name, P, 16384, C_CREATE | sysv);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, sysv);
	shmkit_chan *o = t_chan_open_ok(name, O, 0, sysv);
	unsigned char buf[8192];
	uint64_t pos[10], q;
	const void *b;
	size_t l;

	CHECK_EQ(shmkit_chan_position(o, &q), -EINVAL);
	CHECK_EQ(shmkit_chan_position(NULL, &q), -EINVAL);
	CHECK_EQ(shmkit_chan_position(c, NULL), -EINVAL);
	CHECK_EQ(shmkit_chan_peek_next(p, &b, &l, &q, 0), -EINVAL);
	CHECK_EQ(shmkit_chan_peek_next(c, &b, &l, NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_chan_release_to(c, 0), -EINVAL); /* nothing peeked */
	CHECK_EQ(shmkit_chan_release_to(p, 0), -EINVAL);
	CHECK_EQ(peek_next(c, &b, &l, &q), -EAGAIN);

	for (uint64_t i = 0; i < 10; i++) {
		size_t len = msg_len(i, 2048);
		fill(i, buf, len);
		void *d;
		CHECK_OK(shmkit_chan_reserve(p, len, 0, &d));
		uint64_t at;
		CHECK_OK(shmkit_chan_position(p, &at));
		memcpy(d, buf, len);
		CHECK_OK(shmkit_chan_commit(p, len));
		CHECK_OK(shmkit_chan_position(p, &q));
		CHECK(q > at);
		/* The consumer sees the message at the position the producer reserved. */
		CHECK_EQ(peek_next(c, &b, &l, &pos[i]), len);
		CHECK_EQ(pos[i], at);
		CHECK_MSG(i, b, l, 2048);
		if (i > 0)
			CHECK(pos[i] > pos[i - 1]);
	}
	CHECK_EQ(peek_next(c, &b, &l, &q), -EAGAIN);
	/* Nothing released yet: the head has not moved, recv and peek are refused. */
	CHECK_OK(shmkit_chan_position(c, &q));
	CHECK_EQ(q, 0);
	CHECK_EQ(stats_of(c).msgs_recv, 0);
	CHECK(stats_of(o).used >= pos[9]);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EINVAL);
	CHECK_EQ(shmkit_chan_peek(c, &b, &l, 0), -EINVAL);
	CHECK_EQ(shmkit_chan_release(c), -EINVAL);

	/* Positions that are not a peeked message's start. */
	CHECK_EQ(shmkit_chan_release_to(c, pos[3] + 8), -EINVAL);
	CHECK_EQ(shmkit_chan_release_to(c, pos[9] + 8), -EINVAL);
	CHECK_EQ(shmkit_chan_release_to(c, pos[9] + 1000000), -EINVAL);
	CHECK_EQ(shmkit_chan_release_to(c, pos[0] - 8), -EINVAL);
	CHECK_EQ(stats_of(c).msgs_recv, 0);

	/* Release four: the counters and the head follow, the rest stays peeked. */
	CHECK_OK(shmkit_chan_release_to(c, pos[3]));
	struct shmkit_chan_stats st = stats_of(c);
	CHECK_EQ(st.msgs_recv, 4);
	uint64_t bytes = 0;
	for (uint64_t i = 0; i < 4; i++)
		bytes += msg_len(i, 2048);
	CHECK_EQ(st.bytes_recv, bytes);
	CHECK_OK(shmkit_chan_position(c, &q));
	CHECK(q > pos[3] && q <= pos[4]);
	CHECK_EQ(shmkit_chan_release_to(c, pos[3]), -EINVAL); /* released already */
	CHECK_EQ(shmkit_chan_release_to(c, pos[1]), -EINVAL);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EINVAL);
	CHECK_OK(shmkit_chan_release_to(c, pos[9]));
	CHECK_EQ(stats_of(c).msgs_recv, 10);
	CHECK_EQ(stats_of(c).used, 0);
	/* All released: the plain calls work again, and peek_next continues after. */
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
	CHECK_OK(shmkit_chan_send(p, "plain", 5, 0));
	CHECK_EQ(shmkit_chan_peek(c, &b, &l, 0), 5);
	CHECK_EQ(peek_next(c, &b, &l, &q), -EINVAL); /* a plain peek is pending */
	CHECK_OK(shmkit_chan_release(c));
	CHECK_OK(shmkit_chan_send(p, "ahead", 5, 0));
	CHECK_EQ(peek_next(c, &b, &l, &q), 5);
	CHECK(memcmp(b, "ahead", 5) == 0);
	CHECK(q > pos[9]);
	/* End-of-stream comes after what is peeked; the peeked message stays. */
	shmkit_chan_close(p);
	CHECK_EQ(shmkit_chan_peek_next(c, &b, &l, &pos[0], -1), 0);
	CHECK_OK(shmkit_chan_release_to(c, q));
	CHECK_EQ(stats_of(c).msgs_recv, 12);
	shmkit_chan_close(o);
	shmkit_chan_close(c);
}

/* A ring full of peeked messages stays full until they are released: the producer
 * never overwrites one, and learns of the room as soon as they are. */
static void test_full(void)
{
	const char *name = track("ahead-full", 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	unsigned char buf[512];
	uint64_t n = 0, pos[64];
	const void *b;
	size_t l;
	for (;; n++) {
		fill(n, buf, 200);
		int r = shmkit_chan_send(p, buf, 200, 0);
		if (r == -EAGAIN)
			break;
		CHECK_OK(r);
	}
	CHECK(n > 4 && n < 64);
	for (uint64_t i = 0; i < n; i++) {
		CHECK_EQ(peek_next(c, &b, &l, &pos[i]), 200);
		CHECK(memcmp(b, &i, 8) == 0);
	}
	/* The consumer finds nothing more, which publishes its head: still the first
	 * peeked message, so the ring stays full. */
	CHECK_EQ(peek_next(c, &b, &l, &pos[n]), -EAGAIN);
	CHECK_EQ(shmkit_chan_peek_next(c, &b, &l, &pos[n], 20 * SHMKIT_MSEC), -ETIMEDOUT);
	fill(n, buf, 200);
	CHECK_EQ(shmkit_chan_send(p, buf, 200, 0), -EAGAIN);
	CHECK_EQ(shmkit_chan_send(p, buf, 200, 20 * SHMKIT_MSEC), -ETIMEDOUT);
	/* Every peeked message is intact. */
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *m = (const unsigned char *)shmkit_seg_data(shmkit_chan_seg(c)) +
					 FZ_RING_OFF + (pos[i] & 4095) + 8;
		uint64_t seq;
		memcpy(&seq, m, 8);
		CHECK_EQ(seq, i);
	}
	/* Releasing two makes room for one more at once. */
	CHECK_OK(shmkit_chan_release_to(c, pos[1]));
	CHECK_OK(shmkit_chan_send(p, buf, 200, 0));
	CHECK_EQ(peek_next(c, &b, &l, &pos[n]), 200);
	CHECK(memcmp(b, &n, 8) == 0);
	CHECK_OK(shmkit_chan_release_to(c, pos[n]));
	shmkit_chan_close(c);
	shmkit_chan_close(p);
}

/* Many laps of a small ring with lap-end and alignment pads, messages peeked in
 * windows and released in random steps: every message arrives once, in order,
 * intact, and the counters agree. */
static void test_laps(void)
{
	const char *name = track("ahead-laps", 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 8192, C_CREATE);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	const size_t max = 2048;
	static unsigned char buf[4096];
	uint64_t sent = 0, got = 0, released = 0, bytes = 0, s = 7;
	uint64_t pos[N_MSGS], seq[N_MSGS];
	unsigned npeeked = 0;
	const uint64_t total = 20000;
	while (released < total) {
		/* Fill what fits. */
		while (sent < total) {
			size_t len = msg_len(sent, max);
			fill(sent, buf, len);
			int r = shmkit_chan_send(p, buf, len, 0);
			if (r == -EAGAIN)
				break;
			CHECK_OK(r);
			sent++;
		}
		/* Peek a random number ahead. */
		unsigned want = 1 + (unsigned)(t_rand(&s) % N_MSGS);
		while (npeeked < want) {
			const void *b;
			size_t l;
			ssize_t r = peek_next(c, &b, &l, &pos[npeeked]);
			if (r == -EAGAIN)
				break;
			CHECK(r > 0);
			CHECK_MSG(got, b, l, max);
			if (npeeked > 0)
				CHECK(pos[npeeked] > pos[npeeked - 1]);
			seq[npeeked++] = got++;
		}
		CHECK(npeeked > 0);
		/* Release a random prefix. */
		unsigned k = (unsigned)(t_rand(&s) % npeeked);
		CHECK_OK(shmkit_chan_release_to(c, pos[k]));
		for (unsigned i = 0; i <= k; i++)
			bytes += msg_len(seq[i], max);
		released = seq[k] + 1;
		memmove(pos, pos + k + 1, (npeeked - k - 1) * sizeof pos[0]);
		memmove(seq, seq + k + 1, (npeeked - k - 1) * sizeof seq[0]);
		npeeked -= k + 1;
		struct shmkit_chan_stats st = stats_of(c);
		CHECK_EQ(st.msgs_recv, released);
		CHECK_EQ(st.bytes_recv, bytes);
	}
	CHECK_EQ(got, total);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
}

/* A consumer that peeked ahead and released part dies (or closes): its successor
 * receives exactly the unreleased messages again, at the same positions. */
struct ahead_shared {
	uint64_t pos[N_MSGS];
	uint64_t n;
};

static void test_successor(int die)
{
	const char *name = track(die ? "ahead-die" : "ahead-close", 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 65536, C_CREATE);
	unsigned char buf[2048];
	for (uint64_t i = 0; i < N_MSGS; i++) {
		size_t len = msg_len(i, 2048);
		fill(i, buf, len);
		CHECK_OK(shmkit_chan_send(p, buf, len, 0));
	}
	struct ahead_shared *sh = t_shared(sizeof *sh);
	const unsigned peeked = 50, released = 20;
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
		for (unsigned i = 0; i < peeked; i++) {
			const void *b;
			size_t l;
			CHECK(peek_next(c, &b, &l, &sh->pos[i]) > 0);
			CHECK_MSG(i, b, l, 2048);
		}
		CHECK_OK(shmkit_chan_release_to(c, sh->pos[released - 1]));
		sh->n = peeked;
		if (die)
			raise(SIGKILL);
		shmkit_chan_close(c);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(die ? WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL : WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(sh->n, peeked);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	uint64_t q;
	CHECK_OK(shmkit_chan_position(c, &q));
	CHECK(q > sh->pos[released - 1] && q <= sh->pos[released]);
	for (uint64_t i = released; i < N_MSGS; i++) {
		const void *b;
		size_t l;
		uint64_t at;
		CHECK(peek_next(c, &b, &l, &at) > 0);
		CHECK_MSG(i, b, l, 2048);
		if (i < peeked)
			CHECK_EQ(at, sh->pos[i]);
	}
	CHECK_OK(shmkit_chan_release_to(c, sh->pos[peeked - 1]));
	CHECK_EQ(stats_of(c).msgs_recv, peeked);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	munmap(sh, sizeof *sh);
}

/* A producer that takes over continues the positions: its first message starts at
 * or after the position a dead predecessor's last committed one ended. */
static void test_producer_takeover(void)
{
	const char *name = track("ahead-prod", 0);
	shmkit_chan *c = t_chan_open_ok(name, C, 8192, C_CREATE);
	uint64_t *end = t_shared(sizeof *end);
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		for (int i = 0; i < 5; i++)
			CHECK_OK(shmkit_chan_send(p, "abcdefgh", 8, 0));
		void *d;
		CHECK_OK(shmkit_chan_reserve(p, 100, 0, &d)); /* never committed */
		CHECK_OK(shmkit_chan_position(p, end));
		raise(SIGKILL);
		_exit(1);
	}
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	uint64_t q;
	CHECK_OK(shmkit_chan_position(p, &q));
	CHECK_EQ(q, *end); /* the uncommitted reservation's place is the next record's */
	CHECK_OK(shmkit_chan_send(p, "next", 4, 0));
	const void *b;
	size_t l;
	uint64_t at = 0;
	for (int i = 0; i < 6; i++)
		CHECK(peek_next(c, &b, &l, &at) > 0);
	CHECK_EQ(l, 4);
	CHECK_EQ(at, q);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	munmap(end, sizeof *end);
}

/* A hostile producer rewrites the header of a message already peeked: release_to
 * reports -EPROTO, reads nothing outside the ring, and the handle stays poisoned. */
static void test_hostile(void)
{
	const char *name = track("ahead-hostile", 0);
	for (int kind = 0; kind < 3; kind++) {
		shmkit_seg_unlink(name, 0);
		shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
		shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
		uint64_t pos[4];
		char buf[64];
		const void *b;
		size_t l;
		for (int i = 0; i < 4; i++) {
			CHECK_OK(shmkit_chan_send(p, "0123456789abcdef", 16, 0));
			CHECK_EQ(peek_next(c, &b, &l, &pos[i]), 16);
		}
		uint64_t *hdr = (uint64_t *)((unsigned char *)shmkit_seg_data(shmkit_chan_seg(c)) +
					     FZ_RING_OFF + pos[1]);
		uint64_t h = __atomic_load_n(hdr, __ATOMIC_RELAXED);
		if (kind == 0) /* a longer message, ending inside the next one */
			h = (h & ~UINT64_C(0xffffffff)) | 20u;
		else if (kind == 1) /* a stale tag */
			h ^= UINT64_C(1) << 40;
		else /* a length beyond the maximum */
			h = (h & ~UINT64_C(0xffffffff)) | 4000u;
		__atomic_store_n(hdr, h, __ATOMIC_RELAXED);
		CHECK_EQ(shmkit_chan_release_to(c, pos[3]), -EPROTO);
		CHECK_EQ(peek_next(c, &b, &l, &pos[0]), -EPROTO);
		CHECK_EQ(shmkit_chan_recv(c, (void *)buf, sizeof buf, 0), -EPROTO);
		CHECK_EQ(shmkit_chan_release_to(c, pos[3]), -EPROTO);
		shmkit_chan_close(c);
		shmkit_chan_close(p);
	}
}

int main(void)
{
	chan_test_init();
	test_basic(0);
	test_basic(SHMKIT_SEG_SYSV);
	test_full();
	test_laps();
	test_successor(1);
	test_successor(0);
	test_producer_takeover();
	test_hostile();
	return T_PASS;
}
