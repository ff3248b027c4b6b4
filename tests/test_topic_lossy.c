/* Topics, lossy mode: subscribers that stall while publishers overwrite their ring at
 * full speed, then resume. Each must get -EOVERFLOW with shmkit_topic_lost() equal to
 * the exact number of messages it missed (read from the sequence numbers in the
 * payloads), never a torn message (every byte checked), through receive and through
 * peek/release: a message overwritten while peeked must be reported by release
 * (-ESTALE), and one that release accepts must be intact.
 *
 * Part 1: one publisher, so that every gap is checked on its own: after each
 * -EOVERFLOW (and each -ESTALE, which counts one message lost) the next message
 * received is exactly the reported count further on.
 * Part 2: two publishers and three subscribers (stalling with receive, stalling with
 * peek, and one that never stalls): each publisher's messages in order, and in total
 * the losses reported equal the messages missed.
 *
 * 1 M messages in each part (100 000 under ThreadSanitizer); SHMKIT_TEST_SCALE
 * multiplies the counts. */
#include <sched.h>

#include "test_topic_common.h"

#define MAXLEN 1024
#define CAPACITY (16 * 1024)
#define NPUB_MAX 2

struct shared {
	_Atomic int subs_ready;
	_Atomic int go;
	_Atomic int pubs_done;
	_Atomic uint64_t published[NPUB_MAX]; /* messages each publisher committed */
	_Atomic uint64_t bytes;               /* payload bytes committed, all publishers */
	uint64_t per_pub;
	int npub;
	/* Per subscriber, reported back. */
	uint64_t received[4], lost[4], overflows[4], stale[4], held_ok[4], stalls[4];
};

static const char *name;
static struct shared *sh;

static int publisher(unsigned me)
{
	static unsigned char b[MAXLEN];
	shmkit_topic *p = tp_open_ok(name, TP_PUB, 0, 0);
	t_guard(120, "lossy publisher");
	while (!atomic_load(&sh->go))
		t_nap_ms(1);
	for (uint64_t s = 0; s < sh->per_pub; s++) {
		size_t len = tp_fill(b, TP_ID(me, s), MAXLEN);
		/* Lossy publishers never wait for subscribers: timeout 0 must do. */
		int r = shmkit_topic_publish(p, b, len, 0);
		if (r == -EAGAIN) {
			/* Allowed only while another publisher is still copying into the room
			 * needed: retry with a bound. */
			r = shmkit_topic_publish(p, b, len, 5 * SHMKIT_SEC);
		}
		CHECK_OK(r);
		atomic_fetch_add(&sh->bytes, len);
		atomic_store(&sh->published[me], s + 1);
	}
	CHECK_OK(shmkit_topic_close(p));
	atomic_fetch_add(&sh->pubs_done, 1);
	return T_PASS;
}

/* Wait until publishers wrote more than twice the ring since @base bytes (so any
 * message unread at that point is overwritten), or all are done. 1 if the ring was
 * lapped. */
static int stall_until_lapped(uint64_t base)
{
	while (atomic_load(&sh->bytes) - base <= 2 * CAPACITY) {
		if (atomic_load(&sh->pubs_done) == sh->npub)
			return 0;
		sched_yield();
	}
	return 1;
}

/* mode 0: stalls with receive; 1: stalls holding a peeked message; 2: never stalls
 * (receive or peek at random). */
static int subscriber(unsigned me, unsigned mode)
{
	static unsigned char b[MAXLEN], copy[MAXLEN];
	uint64_t expect[NPUB_MAX] = {0};
	uint64_t seed = t_mix64(me + 77);
	uint64_t got = 0, lost_reported = 0, pending = 0, overflows = 0, stale = 0, held_ok = 0;
	uint64_t stalls = 0;
	int exact = sh->npub == 1; /* one publisher: every gap checked on its own */
	int must_overflow = 0, must_stale = 0;
	shmkit_topic *s = tp_open_ok(name, TP_SUB, 0, 0);
	t_guard(120, "lossy subscriber");
	atomic_fetch_add(&sh->subs_ready, 1);
	while (!atomic_load(&sh->go))
		t_nap_ms(1);
	uint64_t run = 1 + t_rand(&seed) % 64;
	for (;;) {
		ssize_t r;
		const unsigned char *m;
		int peeked = mode == 1 || (mode == 2 && (t_rand(&seed) & 1));
		size_t len = 0;
		if (peeked) {
			const void *pb;
			r = shmkit_topic_peek(s, &pb, &len, 10 * SHMKIT_SEC);
			m = pb;
		} else {
			r = shmkit_topic_receive(s, b, sizeof b, 10 * SHMKIT_SEC);
			m = b;
		}
		if (r == 0)
			break;
		if (r == -EOVERFLOW) {
			uint64_t l = shmkit_topic_lost(s);
			CHECK(l > 0);
			pending += l;
			lost_reported += l;
			overflows++;
			must_overflow = 0;
			continue;
		}
		if (must_overflow) {
			fprintf(stderr, "sub %u: the ring was lapped during a stall but the next "
				"call returned %zd, not -EOVERFLOW\n", me, r);
			return T_FAIL;
		}
		if (r < 0) {
			fprintf(stderr, "sub %u: %s\n", me, shmkit_strerror((int)r));
			return T_FAIL;
		}
		if (peeked) {
			CHECK_EQ(len, (size_t)r);
			/* Read it as a user would, possibly while it is overwritten. */
			memcpy(copy, m, len);
			int held = 0;
			if (mode == 1 && --run == 0) {
				held = 1;
				/* Hold it while the publishers lap the ring. */
				stalls++;
				must_stale = stall_until_lapped(atomic_load(&sh->bytes));
				run = 1 + t_rand(&seed) % 64;
			}
			int rel = shmkit_topic_release(s);
			if (rel == -ESTALE) {
				stale++;
				pending++; /* it counts as lost */
				lost_reported++;
				must_stale = 0;
				continue;
			}
			if (rel != 0 || must_stale) {
				fprintf(stderr, "sub %u: release of a message %s: %d (%s)\n", me,
					must_stale ? "overwritten while held" : "peeked", rel,
					shmkit_strerror(rel));
				return T_FAIL;
			}
			held_ok += (uint64_t)held; /* checked below like any other */
			m = copy;
		}
		uint64_t id = tp_check(m, (size_t)r, MAXLEN);
		if (id == UINT64_MAX || TP_PUB_OF(id) >= (unsigned)sh->npub) {
			fprintf(stderr, "sub %u: TORN or foreign message after %" PRIu64
				" good ones: len %zd, claims %#" PRIx64 " (%s)\n", me, got, r,
				t_msg_seq(m, (size_t)r), peeked ? "peeked" : "received");
			return T_FAIL;
		}
		unsigned pb = TP_PUB_OF(id);
		uint64_t sq = TP_SEQ_OF(id);
		if (sq < expect[pb]) {
			fprintf(stderr, "sub %u: publisher %u's #%" PRIu64 " after #%" PRIu64
				" (duplicate or out of order)\n", me, pb, sq, expect[pb] - 1);
			return T_FAIL;
		}
		if (exact && sq - expect[pb] != pending) {
			fprintf(stderr, "sub %u: gap of %" PRIu64 " messages (#%" PRIu64
				" after #%" PRIu64 ") but %" PRIu64 " reported lost\n",
				me, sq - expect[pb], sq, expect[pb] - 1, pending);
			return T_FAIL;
		}
		expect[pb] = sq + 1;
		pending = 0;
		got++;
		if (mode == 0 && --run == 0) {
			stalls++;
			must_overflow = stall_until_lapped(atomic_load(&sh->bytes));
			run = 1 + t_rand(&seed) % 64;
		}
	}
	/* Every message published is either received or reported lost. */
	uint64_t missed = 0;
	for (int p = 0; p < sh->npub; p++) {
		CHECK(expect[p] <= sh->per_pub);
		missed += sh->per_pub - expect[p];
	}
	uint64_t total = sh->per_pub * (uint64_t)sh->npub;
	if (got + lost_reported != total) {
		fprintf(stderr, "sub %u: received %" PRIu64 " + reported lost %" PRIu64
			" != published %" PRIu64 " (trailing gap %" PRIu64 ")\n",
			me, got, lost_reported, total, missed);
		return T_FAIL;
	}
	struct shmkit_topic_stats st = tp_stats(s);
	CHECK_EQ(st.received, got);
	CHECK_EQ(st.lost, lost_reported);
	CHECK_EQ(st.lag, 0);
	if (mode == 0 && stalls > 0 && atomic_load(&sh->bytes) > 4 * CAPACITY)
		CHECK(overflows > 0);
	if (mode == 1 && stalls > 2)
		CHECK(stale > 0);
	sh->received[me] = got;
	sh->lost[me] = lost_reported;
	sh->overflows[me] = overflows;
	sh->stale[me] = stale;
	sh->held_ok[me] = held_ok;
	sh->stalls[me] = stalls;
	CHECK_OK(shmkit_topic_close(s));
	return T_PASS;
}

struct role {
	unsigned me, mode;
	int pub;
};

static int child(void *arg)
{
	const struct role *r = arg;
	return r->pub ? publisher(r->me) : subscriber(r->me, r->mode);
}

static void run(int npub, const unsigned *modes, int nsub, long per_pub)
{
	struct role roles[8];
	pid_t pids[8];
	int n = 0;
	name = t_name(npub == 1 ? "lossy1" : "lossy2");
	fflush(stdout); /* children must not print what the parent buffered */
	memset(sh, 0, sizeof *sh);
	sh->npub = npub;
	sh->per_pub = (uint64_t)per_pub;
	shmkit_topic *creator = tp_open_ok(name, TP_PUB, CAPACITY, TP_CREATE);
	CHECK_EQ(tp_stats(creator).reliable, 0);
	for (int i = 0; i < nsub; i++) {
		roles[n] = (struct role){(unsigned)i, modes[i], 0};
		pids[n] = t_fork(child, &roles[n]);
		n++;
	}
	tp_await(&sh->subs_ready, nsub, 30, "subscribers ready");
	for (int i = 0; i < npub; i++) {
		roles[n] = (struct role){(unsigned)i, 0, 1};
		pids[n] = t_fork(child, &roles[n]);
		n++;
	}
	/* Each publisher opens before go: wait for the slot count. */
	int64_t end = t_now_ns() + 30 * SHMKIT_SEC;
	while (tp_stats(creator).publishers < (uint32_t)npub + 1) {
		CHECK(t_now_ns() < end);
		t_nap_ms(1);
	}
	CHECK_OK(shmkit_topic_close(creator));
	int64_t t0 = t_now_ns();
	atomic_store(&sh->go, 1);
	int fail = 0;
	for (int i = 0; i < n; i++) {
		int st = t_wait(pids[i]);
		if (st != 0) {
			fprintf(stderr, "%s %u: status %d\n", roles[i].pub ? "publisher" : "subscriber",
				roles[i].me, st);
			fail = 1;
		}
	}
	CHECK(!fail);
	printf("lossy, %d publisher(s) x %ld messages, %.2f s:\n", npub, per_pub,
	       (double)(t_now_ns() - t0) / 1e9);
	for (int i = 0; i < nsub; i++)
		printf("  sub %d (%s): received %" PRIu64 ", lost %" PRIu64 " in %" PRIu64
		       " overflows and %" PRIu64 " stale releases, %" PRIu64 " stalls\n",
		       i, modes[i] == 0 ? "stalls, receive" : modes[i] == 1 ? "stalls holding a peek"
		       : "never stalls", sh->received[i], sh->lost[i], sh->overflows[i], sh->stale[i],
		       sh->stalls[i]);
}

int main(void)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = t_shared(sizeof *sh);
	long per = tp_scaled(TP_TSAN ? 100000 : 1000000, 1000);
	static const unsigned one[2] = {0, 1};
	run(1, one, 2, per);
	static const unsigned two[3] = {0, 1, 2};
	run(2, two, 3, per / 2);
	printf("test_topic_lossy: ok\n");
	return T_PASS;
}
