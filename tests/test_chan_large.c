/* Channels, large messages (256 KiB to 4 MiB) received while the producer writes
 * them: a receive waiting as the producer writes a message returns it whole and
 * checked, or not at all (never torn, never partial) — with random sizes and
 * timeouts, through send and sendv; when the producer is SIGKILLed mid-message (the
 * consumer gets -EPIPE or the next whole message of a successor, never the partial
 * one); into a buffer too small (-EMSGSIZE, the message kept, the buffer untouched);
 * and through peek, which shows a message only once it is complete. These hold for
 * any design of the large-message path (whole-message commit, or a streamed receive).
 * No timing is asserted. SHMKIT_TEST_SCALE multiplies the message and trial counts. */
#include <stdatomic.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "common.h"

#define P SHMKIT_CHAN_PRODUCER
#define C SHMKIT_CHAN_CONSUMER
#define C_CREATE (SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL)

#define BIG_MIN ((size_t)256 << 10)
#define BIG_MAX ((size_t)4 << 20)
#define RING ((size_t)8 << 20) /* takes messages up to BIG_MAX */
/* A successor's messages are numbered from here: never confused with its predecessor's. */
#define SEQ_B UINT64_C(1000000000)

static unsigned scale(void)
{
	const char *s = getenv("SHMKIT_TEST_SCALE");
	int v = s ? atoi(s) : 1;
	return v > 0 ? (unsigned)v : 1;
}

/* Length of message @seq: one in four small (16 B to 4 KiB, so that records of all
 * kinds share the ring and it wraps with pads), the rest from BIG_MIN to BIG_MAX. */
static size_t big_len(uint64_t seq)
{
	uint64_t h = t_mix64(seq ^ UINT64_C(0x6c61726765));
	if (h % 4 == 0)
		return 16 + (size_t)((h >> 8) % 4080);
	return BIG_MIN + (size_t)((h >> 8) % (BIG_MAX - BIG_MIN + 1));
}

/* 1 if @b (@len bytes) is exactly message @seq: its length, number, checksum, bytes. */
static int big_check(const unsigned char *b, size_t len, uint64_t seq)
{
	return len == big_len(seq) && t_msg_check_bytes(b, len, seq);
}

/* Send messages @first .. @first + @n - 1 (n UINT64_MAX: until killed), by send or
 * sendv at random, counting in *@done those accepted. */
static void produce(shmkit_chan *p, uint64_t first, uint64_t n, _Atomic uint64_t *done,
		    uint64_t seed)
{
	unsigned char *buf = malloc(BIG_MAX);
	CHECK(buf != NULL);
	for (uint64_t seq = first; seq - first < n; seq++) {
		size_t len = big_len(seq);
		t_msg_fill(buf, len, seq);
		int r;
		if (t_rand(&seed) % 2) {
			r = shmkit_chan_send(p, buf, len, -1);
		} else {
			struct iovec v = {buf, len};
			r = shmkit_chan_sendv(p, &v, 1, -1);
			if (r == 1)
				r = 0;
		}
		CHECK_OK(r);
		if (done)
			atomic_store(done, seq - first + 1);
	}
	free(buf);
}

static int producer_child(const char *name, uint64_t first, uint64_t n)
{
	shmkit_chan *p;
	CHECK_OK(shmkit_chan_open(name, P, 0, 0, 0, &p));
	produce(p, first, n, NULL, first + 7);
	CHECK_OK(shmkit_chan_close(p));
	return 0;
}

/* Large messages received as they are written (the receive waiting while the
 * producer writes), with timeouts that expire mid-message at random (the receive
 * gives -ETIMEDOUT or -EAGAIN and keeps the message, and a later one returns it
 * whole): every message arrives once, whole, in order. */
static void test_received_whole(void)
{
	const char *name = t_name("whole");
	uint64_t n = (SANITIZED ? 12 : 48) * scale();
	shmkit_chan *c;
	CHECK_OK(shmkit_chan_open(name, C, RING, 0600, C_CREATE, &c));
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_chan_close(c);
		_exit(producer_child(name, 0, n));
	}
	unsigned char *buf = malloc(BIG_MAX);
	CHECK(buf != NULL);
	uint64_t seed = (uint64_t)getpid() * 2654435761u + 1, expired = 0;
	for (uint64_t seq = 0; seq < n;) {
		/* Blocking, a timeout of 0 to 2 ms, or non-blocking. */
		uint64_t k = t_rand(&seed) % 4;
		int64_t timeout = k == 0 ? -1 : k == 3 ? 0 : (int64_t)(t_rand(&seed) % 2000) * 1000;
		ssize_t r = shmkit_chan_recv(c, buf, BIG_MAX, timeout);
		if (r == -ETIMEDOUT || r == -EAGAIN) {
			expired++;
			continue;
		}
		CHECK_OK(r);
		if (!big_check(buf, (size_t)r, seq)) {
			fprintf(stderr, "message %" PRIu64 " (%zd bytes) torn or misplaced\n", seq, r);
			exit(T_FAIL);
		}
		seq++;
	}
	CHECK_EQ(shmkit_chan_recv(c, buf, BIG_MAX, -1), 0); /* end-of-stream, nothing more */
	CHECK_EQ(t_wait(pid), 0);
	printf("  %" PRIu64 " messages whole, %" PRIu64 " receives expired\n", n, expired);
	free(buf);
	CHECK_OK(shmkit_chan_close(c));
}

struct kill_shared {
	_Atomic uint64_t sent_a;  /* messages producer A saw accepted */
	_Atomic uint64_t sending; /* 1 + the number of the message A is sending, 0 none */
	_Atomic uint64_t got_a;   /* A's messages the consumer received */
	_Atomic int a_ready;      /* A holds the role */
	_Atomic int killed_mid;   /* A was sending when killed */
	_Atomic int epipe;        /* the consumer got -EPIPE */
};

static struct kill_shared *kill_sh;

/* Producer A's timer: SIGKILL, wherever A is (mostly inside a send). */
static void die(int sig)
{
	(void)sig;
	/* Lock-free atomics: safe in a handler. For the log only. */
	atomic_store(&kill_sh->killed_mid, atomic_load(&kill_sh->sending) != 0);
	kill(getpid(), SIGKILL);
}

/* Producer A: each message filled first, sent once the consumer has taken the one
 * before (so that the consumer waits in its receive, streaming, as A writes). Just
 * before message @after, a timer of @delay_us is set that SIGKILLs A: it lands inside
 * that send when the send takes longer (a large message takes hundreds of µs), or
 * later. */
static void producer_a(shmkit_chan *p, struct kill_shared *sh, uint64_t after, unsigned delay_us)
{
	unsigned char *buf = malloc(BIG_MAX);
	CHECK(buf != NULL);
	kill_sh = sh;
	CHECK(signal(SIGALRM, die) != SIG_ERR);
	for (uint64_t seq = 0;; seq++) {
		size_t len = big_len(seq);
		t_msg_fill(buf, len, seq);
		while (atomic_load(&sh->got_a) < seq)
			usleep(20);
		if (seq == after) {
			struct itimerval it = {{0, 0}, {0, (suseconds_t)delay_us + 1}};
			CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
		}
		atomic_store(&sh->sending, seq + 1);
		CHECK_OK(shmkit_chan_send(p, buf, len, -1));
		atomic_store(&sh->sending, 0);
		atomic_store(&sh->sent_a, seq + 1);
	}
}

/* Producer A streams until killed at a random moment (its own timer), and B takes
 * the role over and sends @nb messages numbered from SEQ_B, and closes. The
 * consumer gets A's messages whole, then -EPIPE (perhaps) or B's first message, never
 * A's partial one, then B's, then end-of-stream. Returns 1 if the kill landed while
 * A was sending a message (for the log). */
static int kill_trial(const char *name, struct kill_shared *sh, uint64_t seed, unsigned char *buf)
{
	const uint64_t nb = 3;
	shmkit_chan *c;
	CHECK_OK(shmkit_chan_open(name, C, RING, 0600, C_CREATE, &c));
	atomic_store(&sh->sent_a, 0);
	atomic_store(&sh->sending, 0);
	atomic_store(&sh->got_a, 0);
	atomic_store(&sh->a_ready, 0);
	atomic_store(&sh->epipe, 0);
	atomic_store(&sh->killed_mid, 0);
	pid_t a = t_fork_raw();
	CHECK(a >= 0);
	if (a == 0) {
		shmkit_chan_close(c);
		shmkit_chan *p;
		CHECK_OK(shmkit_chan_open(name, P, 0, 0, 0, &p));
		atomic_store(&sh->a_ready, 1);
		producer_a(p, sh, seed % 4, (unsigned)((seed >> 8) % 500));
		_exit(0);
	}
	/* The successor, B. */
	pid_t succ = t_fork_raw();
	CHECK(succ >= 0);
	if (succ == 0) {
		shmkit_chan_close(c);
		while (!atomic_load(&sh->a_ready))
			usleep(100);
		/* In half the trials, B comes only once the consumer reported A dead. */
		if (seed & 0x10000)
			while (!atomic_load(&sh->epipe))
				usleep(100);
		/* B: waits for the role (A's death frees it), then sends and closes. */
		shmkit_chan *p;
		int r;
		while ((r = shmkit_chan_open(name, P, 0, 0, 0, &p)) == -EBUSY)
			usleep(200);
		CHECK_OK(r);
		produce(p, SEQ_B, nb, NULL, seed + 1);
		CHECK_OK(shmkit_chan_close(p));
		_exit(0);
	}
	uint64_t got_a = 0, got_b = 0, epipe = 0;
	for (;;) {
		ssize_t r = shmkit_chan_recv(c, buf, BIG_MAX, 200 * SHMKIT_MSEC);
		if (r == -ETIMEDOUT)
			continue;
		if (r == -EPIPE) {
			/* A is dead and B not there yet: never after B's first message. */
			CHECK_EQ(got_b, 0);
			epipe++;
			atomic_store(&sh->epipe, 1);
			usleep(500);
			continue;
		}
		CHECK_OK(r);
		if (r == 0)
			break; /* B closed */
		uint64_t seq = t_msg_seq(buf, (size_t)r);
		if (got_b == 0 && seq == got_a) {
			if (!big_check(buf, (size_t)r, seq)) {
				fprintf(stderr, "A's message %" PRIu64 " torn (%zd bytes)\n", seq, r);
				exit(T_FAIL);
			}
			got_a++;
			atomic_store(&sh->got_a, got_a);
			continue;
		}
		if (seq != SEQ_B + got_b || !big_check(buf, (size_t)r, seq)) {
			fprintf(stderr, "after %" PRIu64 " of A's messages and %" PRIu64
					" of B's: a message claiming %" PRIu64 " (%zd bytes) is not "
					"the next whole one\n",
				got_a, got_b, seq, r);
			exit(T_FAIL);
		}
		got_b++;
	}
	CHECK_EQ(got_b, nb);
	CHECK_EQ(t_wait(succ), 0);
	CHECK_EQ(t_wait(a), 128 + SIGKILL);
	/* A counts a message after its send returned: killed between the two, it
	 * committed one more than it counted. */
	uint64_t sent = atomic_load(&sh->sent_a);
	CHECK(got_a == sent || got_a == sent + 1);
	CHECK_OK(shmkit_chan_close(c));
	shmkit_seg_unlink(name, 0);
	if (seed & 0x10000)
		CHECK(epipe > 0);
	return atomic_load(&sh->killed_mid);
}


static void test_producer_killed(void)
{
	const char *name = t_name("kill");
	unsigned trials = (SANITIZED ? 10 : 40) * scale(), mid = 0;
	struct kill_shared *sh = t_shared(sizeof *sh);
	unsigned char *buf = malloc(BIG_MAX);
	CHECK(buf != NULL);
	uint64_t seed = (uint64_t)getpid() ^ (uint64_t)t_now_ns();
	printf("  seed %" PRIu64 "\n", seed);
	for (unsigned i = 0; i < trials; i++)
		mid += (unsigned)kill_trial(name, sh, t_rand(&seed), buf);
	printf("  %u trials, %u killed while sending\n", trials, mid);
	free(buf);
}

/* A receive into a buffer too small for a large message: -EMSGSIZE once the message
 * is complete (never a part of it), the message kept; a big enough buffer gets it. */
static void test_too_small(void)
{
	const char *name = t_name("small");
	shmkit_chan *c;
	CHECK_OK(shmkit_chan_open(name, C, RING, 0600, C_CREATE, &c));
	/* Messages 1.. of big_len() that are large: find a few. */
	uint64_t seqs[4];
	int k = 0;
	for (uint64_t s = 0; k < 4; s++)
		if (big_len(s) >= 1 << 20)
			seqs[k++] = s;
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_chan_close(c);
		shmkit_chan *p;
		CHECK_OK(shmkit_chan_open(name, P, 0, 0, 0, &p));
		unsigned char *b = malloc(BIG_MAX);
		CHECK(b != NULL);
		for (int i = 0; i < 4; i++) {
			t_msg_fill(b, big_len(seqs[i]), seqs[i]);
			CHECK_OK(shmkit_chan_send(p, b, big_len(seqs[i]), -1));
		}
		free(b);
		CHECK_OK(shmkit_chan_close(p));
		_exit(0);
	}
	size_t small = BIG_MIN / 2;
	unsigned char *buf = malloc(BIG_MAX);
	CHECK(buf != NULL);
	for (int i = 0; i < 4; i++) {
		/* Started before or while the message is written: waits for all of it. */
		memset(buf, 0xa5, small + 64);
		CHECK_EQ(shmkit_chan_recv(c, buf, small, -1), -EMSGSIZE);
		/* Nothing written to the buffer, not even its allowed part. */
		for (size_t j = 0; j < small + 64; j++)
			CHECK_EQ(buf[j], 0xa5);
		CHECK_EQ(shmkit_chan_recv(c, buf, big_len(seqs[i]) - 1, 0), -EMSGSIZE);
		ssize_t r = shmkit_chan_recv(c, buf, BIG_MAX, -1);
		CHECK_EQ(r, (ssize_t)big_len(seqs[i]));
		CHECK(big_check(buf, (size_t)r, seqs[i]));
	}
	CHECK_EQ(shmkit_chan_recv(c, buf, BIG_MAX, -1), 0);
	CHECK_EQ(t_wait(pid), 0);
	free(buf);
	CHECK_OK(shmkit_chan_close(c));
}

/* Peek shows a large message only whole, with or without a timeout, while the
 * producer streams the next ones. */
static void test_peek_whole(void)
{
	const char *name = t_name("peek");
	uint64_t n = (SANITIZED ? 8 : 32) * scale();
	shmkit_chan *c;
	CHECK_OK(shmkit_chan_open(name, C, RING, 0600, C_CREATE, &c));
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_chan_close(c);
		_exit(producer_child(name, 0, n));
	}
	uint64_t seed = (uint64_t)getpid() + 99;
	for (uint64_t seq = 0; seq < n;) {
		const void *m;
		size_t len;
		uint64_t k = t_rand(&seed) % 3;
		int64_t timeout = k == 0 ? -1 : k == 1 ? 0 : (int64_t)(t_rand(&seed) % 1000) * 1000;
		ssize_t r = shmkit_chan_peek(c, &m, &len, timeout);
		if (r == -ETIMEDOUT || r == -EAGAIN)
			continue;
		CHECK_OK(r);
		CHECK(r > 0);
		CHECK_EQ(len, (size_t)r);
		if (!big_check(m, len, seq)) {
			fprintf(stderr, "peeked message %" PRIu64 " (%zu bytes) not whole\n", seq, len);
			exit(T_FAIL);
		}
		CHECK_OK(shmkit_chan_release(c));
		seq++;
	}
	CHECK_EQ(t_wait(pid), 0);
	CHECK_OK(shmkit_chan_close(c));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	T_RUN(test_received_whole());
	T_RUN(test_too_small());
	T_RUN(test_peek_whole());
	T_RUN(test_producer_killed());
	return T_PASS;
}
