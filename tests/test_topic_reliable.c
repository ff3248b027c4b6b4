/* Topics, reliable mode under load: 3 publisher processes (one through publish, one
 * through loan/commit, one through publishv batches) and 3 subscriber processes (one
 * through receive, one through peek/release, one waiting on its descriptor) move at
 * least 1 M messages of random sizes (16 B .. 4 KiB) through a 64 KiB ring. Every
 * subscriber must receive every message exactly once, each publisher's in order, each
 * intact (length, checksum and every payload byte follow from the message's id), with
 * nothing lost, then end-of-stream.
 *
 * Under ThreadSanitizer (about 10 times slower) the count is 100 000; the release and
 * AddressSanitizer builds move 1 000 002. SHMKIT_TEST_SCALE multiplies it either way. */
#include "test_topic_common.h"

#define NPUB 3
#define NSUB 3
#define MAXLEN 4096
#define CAPACITY (64 * 1024)

struct shared {
	_Atomic int subs_ready;
	_Atomic int pubs_ready;
	_Atomic int go;
	uint64_t per_pub;
	/* What each subscriber saw, for the parent's report. */
	uint64_t received[NSUB];
	uint64_t bytes[NSUB];
	uint64_t eagain_polls[NSUB];
	uint64_t sub_lost[NSUB];
	uint64_t sub_received_stat[NSUB];
};

static const char *name;
static struct shared *sh;

static int publisher(unsigned me)
{
	static unsigned char b[8][MAXLEN];
	uint64_t seed = t_mix64(me + 1);
	shmkit_topic *p = tp_open_ok(name, TP_PUB, 0, 0);
	t_guard(280, "reliable publisher");
	atomic_fetch_add(&sh->pubs_ready, 1);
	while (!atomic_load(&sh->go))
		t_nap_ms(1);
	uint64_t n = sh->per_pub, s = 0;
	while (s < n) {
		uint64_t id = TP_ID(me, s);
		if (me == 0) {
			size_t len = tp_fill(b[0], id, MAXLEN);
			CHECK_OK(shmkit_topic_publish(p, b[0], len, 30 * SHMKIT_SEC));
			s++;
		} else if (me == 1) {
			void *lb;
			size_t len = tp_len(id, MAXLEN);
			/* Loan more than needed now and then: the commit gives the length. */
			size_t ask = (t_rand(&seed) & 3) == 0 ? MAXLEN : len;
			CHECK_OK(shmkit_topic_loan(p, ask, 30 * SHMKIT_SEC, &lb));
			CHECK(lb != NULL && ((uintptr_t)lb & 7) == 0);
			t_msg_fill(lb, len, id);
			CHECK_EQ(shmkit_topic_commit(p, len), 0);
			s++;
		} else {
			struct iovec iov[8];
			int k = 1 + (int)(t_rand(&seed) % 8);
			if ((uint64_t)k > n - s)
				k = (int)(n - s);
			for (int j = 0; j < k; j++) {
				iov[j].iov_base = b[j];
				iov[j].iov_len = tp_fill(b[j], TP_ID(me, s + (uint64_t)j), MAXLEN);
			}
			int r = shmkit_topic_publishv(p, iov, k, 30 * SHMKIT_SEC);
			if (r < 1 || r > k) {
				fprintf(stderr, "publishv(%d): %d (%s)\n", k, r, shmkit_strerror(r));
				return T_FAIL;
			}
			s += (uint64_t)r;
		}
	}
	struct shmkit_topic_stats st = tp_stats(p);
	CHECK_EQ(st.reliable, 1);
	CHECK_OK(shmkit_topic_close(p));
	return T_PASS;
}

static int subscriber(unsigned me)
{
	static unsigned char b[MAXLEN];
	uint64_t expect[NPUB] = {0};
	uint64_t got = 0, bytes = 0, polls = 0;
	shmkit_topic *s = tp_open_ok(name, TP_SUB, 0, 0);
	int fd = -1;
	t_guard(280, "reliable subscriber");
	if (me == 2) {
		fd = shmkit_topic_fd(s);
		CHECK(fd >= 0);
	}
	atomic_fetch_add(&sh->subs_ready, 1);
	while (!atomic_load(&sh->go))
		t_nap_ms(1);
	for (;;) {
		ssize_t r;
		const unsigned char *m;
		if (me == 0) {
			r = shmkit_topic_receive(s, b, sizeof b, 30 * SHMKIT_SEC);
			m = b;
		} else if (me == 1) {
			const void *pb;
			size_t len;
			r = shmkit_topic_peek(s, &pb, &len, 30 * SHMKIT_SEC);
			m = pb;
			if (r > 0)
				CHECK_EQ(len, (size_t)r);
		} else {
			r = shmkit_topic_receive(s, b, sizeof b, 0);
			m = b;
			if (r == -EAGAIN) {
				polls++;
				int rd = tp_readable(fd, 30000);
				if (!rd) {
					fprintf(stderr, "sub 2: descriptor quiet for 30 s after %" PRIu64
						" messages\n", got);
					return T_FAIL;
				}
				continue;
			}
		}
		if (r == 0)
			break;
		if (r < 0) {
			fprintf(stderr, "sub %u: after %" PRIu64 " messages: %s\n", me, got,
				shmkit_strerror((int)r));
			return T_FAIL;
		}
		uint64_t id = tp_check(m, (size_t)r, MAXLEN);
		if (id == UINT64_MAX || TP_PUB_OF(id) >= NPUB ||
		    TP_SEQ_OF(id) != expect[TP_PUB_OF(id)]) {
			fprintf(stderr,
				"sub %u: message %" PRIu64 " (len %zd, claims %#" PRIx64
				") is not the next one expected (%" PRIu64 " %" PRIu64 " %" PRIu64
				") or not intact\n",
				me, got, r, t_msg_seq(m, (size_t)r), expect[0], expect[1], expect[2]);
			return T_FAIL;
		}
		expect[TP_PUB_OF(id)]++;
		got++;
		bytes += (uint64_t)r;
		if (me == 1)
			CHECK_EQ(shmkit_topic_release(s), 0);
	}
	/* End-of-stream stays. */
	CHECK_EQ(shmkit_topic_receive(s, b, sizeof b, 0), 0);
	if (fd >= 0)
		CHECK(tp_readable(fd, 0));
	for (int p = 0; p < NPUB; p++)
		CHECK_EQ(expect[p], sh->per_pub);
	struct shmkit_topic_stats st = tp_stats(s);
	sh->received[me] = got;
	sh->bytes[me] = bytes;
	sh->eagain_polls[me] = polls;
	sh->sub_lost[me] = st.lost;
	sh->sub_received_stat[me] = st.received;
	CHECK_EQ(st.lost, 0);
	CHECK_EQ(st.received, got);
	CHECK_EQ(st.lag, 0);
	CHECK_OK(shmkit_topic_close(s));
	return T_PASS;
}

static int pub_main(void *arg)
{
	return publisher((unsigned)(uintptr_t)arg);
}

static int sub_main(void *arg)
{
	return subscriber((unsigned)(uintptr_t)arg);
}

int main(void)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	long total = tp_scaled(TP_TSAN ? 100000 : 1000000, NPUB);
	name = t_name("reliable");
	sh = t_shared(sizeof *sh);
	sh->per_pub = (uint64_t)(total + NPUB - 1) / NPUB;
	total = (long)sh->per_pub * NPUB;
	printf("reliable: %ld messages (%d publishers x %" PRIu64 "), %d subscribers, ring %d KiB%s\n",
	       total, NPUB, sh->per_pub, NSUB, CAPACITY / 1024,
	       TP_TSAN ? " (ThreadSanitizer build: scaled down)" : "");
	fflush(stdout);

	struct shmkit_topic_opts o;
	memset(&o, 0, sizeof o);
	o.capacity = CAPACITY;
	o.flags = TP_CREATE | SHMKIT_TOPIC_RELIABLE;
	/* The creator holds a publisher slot until every publisher opened, so that no
	 * subscriber can see end-of-stream before the publishers came. */
	shmkit_topic *creator = tp_open_opts_ok(name, TP_PUB, &o);
	CHECK_EQ(tp_stats(creator).reliable, 1);

	pid_t subs[NSUB], pubs[NPUB];
	for (unsigned i = 0; i < NSUB; i++)
		subs[i] = t_fork(sub_main, (void *)(uintptr_t)i);
	tp_await(&sh->subs_ready, NSUB, 30, "subscribers ready");
	for (unsigned i = 0; i < NPUB; i++)
		pubs[i] = t_fork(pub_main, (void *)(uintptr_t)i);
	tp_await(&sh->pubs_ready, NPUB, 30, "publishers ready");
	CHECK_EQ(tp_stats(creator).subscribers, NSUB);
	CHECK_EQ(tp_stats(creator).publishers, NPUB + 1);
	CHECK_OK(shmkit_topic_close(creator));
	shmkit_topic *obs = tp_open_ok(name, TP_OBS, 0, 0);

	int64_t t0 = t_now_ns();
	atomic_store(&sh->go, 1);
	int fail = 0;
	for (unsigned i = 0; i < NPUB; i++) {
		int st = t_wait(pubs[i]);
		if (st != 0) {
			fprintf(stderr, "publisher %u: status %d\n", i, st);
			fail = 1;
		}
	}
	for (unsigned i = 0; i < NSUB; i++) {
		int st = t_wait(subs[i]);
		if (st != 0) {
			fprintf(stderr, "subscriber %u: status %d\n", i, st);
			fail = 1;
		}
	}
	double secs = (double)(t_now_ns() - t0) / 1e9;
	CHECK(!fail);
	struct shmkit_topic_stats st = tp_stats(obs);
	CHECK_EQ(st.published, (uint64_t)total);
	CHECK_EQ(st.evicted, 0);
	CHECK_EQ(st.abandoned, 0);
	CHECK_EQ(st.subscribers, 0);
	CHECK_EQ(st.publishers, 0);
	for (unsigned i = 0; i < NSUB; i++) {
		CHECK_EQ(sh->received[i], (uint64_t)total);
		CHECK_EQ(sh->bytes[i], st.bytes_published);
	}
	printf("reliable: every subscriber got all %ld messages (%.1f MB each) in order, intact, "
	       "none lost, in %.2f s (%.0f deliveries/s); descriptor waits: %" PRIu64 "\n",
	       total, (double)st.bytes_published / 1e6, secs, (double)total * NSUB / secs,
	       sh->eagain_polls[2]);
	CHECK_OK(shmkit_topic_close(obs));
	printf("test_topic_reliable: ok\n");
	return T_PASS;
}
