/* Channels, peers killed with SIGKILL: a producer killed while the consumer sleeps or
 * at random moments of a stream (every committed message arrives, then -EPIPE, and a
 * successor continues), a consumer gone (the producer gets -EPIPE) or killed mid-stream
 * (its successor loses nothing). */
#include "chan_common.h"

static void producer_child(const char *name, struct shared *sh, uint64_t n, size_t max, int hold)
{
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	produce(p, 0, n, 11, max, &sh->committed, 0);
	atomic_store(&sh->flag, 1);
	while (hold)
		pause();
	shmkit_chan_close(p);
	_exit(0);
}

/* A producer killed while the consumer sleeps: every committed message, then -EPIPE
 * within a second. Then another producer takes the role over and continues. */
static void test_producer_killed_sleeping(void)
{
	const char *name = track("pkill", 0);
	shmkit_chan *c = t_chan_open_ok(name, C, 1 << 16, C_CREATE);
	size_t max = stats_of(c).max_msg;
	struct shared *sh = shared_new();
	pid_t prod = fork();
	CHECK(prod >= 0);
	if (prod == 0) {
		shmkit_chan_close(c);
		producer_child(name, sh, 500, max, 1);
	}
	pid_t killer = fork();
	CHECK(killer >= 0);
	if (killer == 0) {
		shmkit_chan_close(c);
		shmkit_chan *o = t_chan_open_ok(name, O, 0, 0);
		uint64_t s0 = 0;
		for (;;) {
			struct shmkit_chan_stats st = stats_of(o);
			if (st.msgs_recv == 500 && s0 == 0)
				s0 = st.consumer_sleeps + 1;
			if (s0 && st.consumer_sleeps >= s0)
				break;
			t_nap_ms(1);
		}
		/* Not synchronization: lets the consumer's short first slice pass, so the
		 * death is found from inside a long (200 ms) sleep, the case to bound. */
		t_nap_ms(10);
		atomic_store(&sh->t0, t_now_ns());
		kill(prod, SIGKILL);
		shmkit_chan_close(o);
		_exit(0);
	}
	/* Another producer cannot open while the first lives. */
	while (stats_of(c).producer_pid != prod)
		t_nap_ms(1);
	shmkit_chan *p2;
	CHECK_EQ(shmkit_chan_open(name, P, 0, 0, 0, &p2), -EBUSY);
	uint64_t seq = 0;
	ssize_t r = consume(c, &seq, UINT64_MAX, 3, max);
	int64_t dt = t_now_ns() - atomic_load(&sh->t0);
	CHECK_EQ(r, -EPIPE);
	CHECK_EQ(seq, 500);
	CHECK_EQ(atomic_load(&sh->committed), 500);
	fprintf(stderr, "dead producer reported to a sleeping consumer after %.0f ms\n", dt / 1e6);
	CHECK(dt > 0 && dt < 3 * SHMKIT_SEC / 2);
	CHECK_EQ(t_wait(killer), 0);
	CHECK_EQ(t_wait(prod), 128 + SIGKILL);
	/* -EPIPE lasts until a new producer takes over; then the stream goes on. */
	unsigned char buf[16];
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EPIPE);
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	produce(p, 500, 600, 13, max, NULL, 0);
	CHECK_EQ(consume(c, &seq, 600, 4, max), 1);
	CHECK_EQ(seq, 600);
	shmkit_chan_close(p);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, -1), 0);
	shmkit_chan_close(c);
	munmap(sh, sizeof *sh);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* Producers killed at random moments of a stream: a prefix arrives intact, exactly
 * the committed messages (one more if the kill fell between commit and counter),
 * then -EPIPE; the next producer continues after it. */
static void test_producer_killed_random(int rounds)
{
	const char *name = track("pkill-rand", 0);
	shmkit_chan *c = t_chan_open_ok(name, C, 1 << 14, C_CREATE);
	size_t max = stats_of(c).max_msg;
	struct shared *sh = shared_new();
	uint64_t rng = 77, seq = 0;
	for (int round = 0; round < rounds; round++) {
		atomic_store(&sh->committed, seq);
		uint64_t start = seq;
		pid_t prod = fork();
		CHECK(prod >= 0);
		if (prod == 0) {
			shmkit_chan_close(c);
			shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
			produce(p, start, UINT64_MAX, 1000 + (uint64_t)round, max, &sh->committed, 0);
			_exit(0);
		}
		while (stats_of(c).producer_pid != prod)
			t_nap_ms(1);
		uint64_t stop = seq + 1 + t_rand(&rng) % 5000;
		CHECK_EQ(consume(c, &seq, stop, 2000 + (uint64_t)round, max), 1);
		if (t_rand(&rng) % 2) {
			/* Let it run a little further, or fill the ring and block. */
			for (int i = 0; i < (int)(t_rand(&rng) % 2000); i++)
				sched_yield();
		}
		kill(prod, SIGKILL);
		CHECK_EQ(t_wait(prod), 128 + SIGKILL);
		uint64_t committed = atomic_load(&sh->committed);
		ssize_t r = consume(c, &seq, UINT64_MAX, 3000 + (uint64_t)round, max);
		CHECK_EQ(r, -EPIPE);
		/* A sendv batch is counted when the call returns: up to 16 more. */
		if (seq < committed || seq > committed + 16) {
			fprintf(stderr, "round %d: received %llu, committed %llu\n", round,
				(unsigned long long)seq, (unsigned long long)committed);
			exit(T_FAIL);
		}
	}
	uint64_t from = seq;
	/* Until a new producer claims the role, the dead one is still reported. (Asked
	 * before the fork: once the child runs, it may claim the role at any moment.) */
	unsigned char b1[1];
	CHECK_EQ(shmkit_chan_recv(c, b1, 1, 0), -EPIPE);
	pid_t prod = fork();
	CHECK(prod >= 0);
	if (prod == 0) {
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		produce(p, from, from + 1000, 5, max, NULL, 0);
		shmkit_chan_close(p);
		_exit(0);
	}
	while (stats_of(c).producer_pid != prod && !stats_of(c).producer_closed)
		t_nap_ms(1);
	CHECK_EQ(consume(c, &seq, UINT64_MAX, 6, max), 0);
	CHECK_EQ(seq, from + 1000);
	CHECK_EQ(t_wait(prod), 0);
	shmkit_chan_close(c);
	munmap(sh, sizeof *sh);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* A consumer killed (or closed): the producer's send on a full ring gives -EPIPE; a
 * new consumer takes over and gets the queued messages. */
static void test_consumer_gone(void)
{
	const char *name = track("ckill", 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	size_t max = stats_of(p).max_msg;
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t cons = fork();
	CHECK(cons >= 0);
	if (cons == 0) {
		shmkit_chan_close(p);
		shmkit_chan *held = t_chan_open_ok(name, C, 0, 0);
		char b = 1;
		CHECK(write(pfd[1], &b, 1) == 1);
		for (;;)
			pause();
		shmkit_chan_close(held);
	}
	char b;
	CHECK(read(pfd[0], &b, 1) == 1);
	shmkit_chan *c2;
	CHECK_EQ(shmkit_chan_open(name, C, 0, 0, 0, &c2), -EBUSY);
	unsigned char buf[100] = {0};
	uint64_t n = 0;
	while (shmkit_chan_send(p, buf, sizeof buf, 0) == 0)
		n++;
	CHECK_EQ(stats_of(p).consumer_pid, cons);
	kill(cons, SIGKILL);
	int64_t t = t_now_ns();
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, -1), -EPIPE);
	CHECK(t_now_ns() - t < 3 * SHMKIT_SEC / 2);
	CHECK_EQ(t_wait(cons), 128 + SIGKILL);
	/* Takeover: the queued messages are still there. */
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	for (int i = 0; i < 5; i++) /* capacity/8 bytes: the room is published */
		CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), sizeof buf);
	CHECK_OK(shmkit_chan_send(p, buf, sizeof buf, 0));
	uint64_t got = 5;
	while (shmkit_chan_recv(c, buf, sizeof buf, 0) > 0)
		got++;
	CHECK_EQ(got, n + 1);
	/* A closed consumer: -EPIPE once the ring is full, at once, not after a timeout. */
	shmkit_chan_close(c);
	while (shmkit_chan_send(p, buf, sizeof buf, 0) == 0)
		;
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, 0), -EPIPE);
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, -1), -EPIPE);
	void *q;
	CHECK_EQ(shmkit_chan_reserve(p, 10, -1, &q), -EPIPE);
	/* A producer sleeping on a full ring learns at once of a consumer that closes. */
	int rfd[2];
	CHECK(pipe(rfd) == 0);
	pid_t closer = fork();
	CHECK(closer >= 0);
	if (closer == 0) {
		c = t_chan_open_ok(name, C, 0, 0);
		uint64_t s0 = stats_of(c).producer_sleeps;
		CHECK(write(rfd[1], &b, 1) == 1);
		while (stats_of(c).producer_sleeps == s0)
			t_nap_ms(1);
		shmkit_chan_close(c);
		_exit(0);
	}
	CHECK(read(rfd[0], &b, 1) == 1);
	while (shmkit_chan_send(p, buf, sizeof buf, 0) == 0)
		;
	shmkit_chan_set_spin(p, 0);
	t = t_now_ns();
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, -1), -EPIPE);
	CHECK(t_now_ns() - t < SHMKIT_SEC);
	CHECK_EQ(t_wait(closer), 0);
	(void)max;
	shmkit_chan_close(p);
	close(pfd[0]);
	close(pfd[1]);
	close(rfd[0]);
	close(rfd[1]);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* A consumer killed at random moments of a stream: its successor loses nothing and
 * receives again at most what the dead one had not published (capacity/8 bytes). */
static void test_consumer_killed_stream(int rounds)
{
	const char *name = track("ckill-stream", 0);
	const size_t cap = 1 << 14;
	shmkit_chan *o = t_chan_open_ok(name, O, cap, C_CREATE);
	size_t max = stats_of(o).max_msg;
	struct shared *sh = shared_new();
	const uint64_t total = SANITIZED ? 200000 : 2000000;
	min_len = 8;
	retry_epipe = 1;
	pid_t prod = fork();
	CHECK(prod >= 0);
	if (prod == 0) {
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		produce(p, 0, total, 21, max, NULL, 0);
		shmkit_chan_close(p);
		_exit(0);
	}
	uint64_t rng = 5, next = 0; /* next: the first message not yet seen by anyone */
	uint64_t kills = 0, redelivered = 0;
	for (int round = 0; round < rounds; round++) {
		atomic_store(&sh->committed, next); /* here: messages the child verified */
		atomic_store(&sh->flag, 0);
		uint64_t from = next;
		pid_t cons = fork();
		CHECK(cons >= 0);
		if (cons == 0) {
			shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
			unsigned char *buf = malloc(max);
			CHECK(buf != NULL);
			/* The first message may be one the previous consumer received already;
			 * every message carries its number here (min_len 8). */
			ssize_t r = shmkit_chan_recv(c, buf, max, -1);
			if (r == 0)
				_exit(0); /* a previous consumer took everything */
			CHECK(r >= 8);
			uint64_t seq;
			memcpy(&seq, buf, 8);
			atomic_store(&sh->t0, (int64_t)seq); /* where this consumer started */
			for (;;) {
				CHECK_MSG(seq, buf, r, max);
				atomic_store(&sh->committed, ++seq);
				atomic_store(&sh->flag, 1);
				r = shmkit_chan_recv(c, buf, max, -1);
				if (r <= 0)
					_exit(r == 0 ? 0 : 1);
			}
		}
		int st = -1;
		while (!atomic_load(&sh->flag)) {
			pid_t w = waitpid(cons, &st, WNOHANG);
			CHECK(w == 0 || w == cons);
			if (w == cons)
				break;
			t_nap_ms(1);
		}
		if (st != -1) {
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* end-of-stream at once */
			break;
		}
		uint64_t until = atomic_load(&sh->committed) + t_rand(&rng) % 20000;
		while (atomic_load(&sh->committed) < until && atomic_load(&sh->committed) < total) {
			/* A producer that failed must not leave us waiting (WNOWAIT: not reaped). */
			siginfo_t si = {0};
			CHECK(waitid(P_PID, (id_t)prod, &si, WEXITED | WNOHANG | WNOWAIT) == 0);
			CHECK(si.si_pid == 0 || (si.si_code == CLD_EXITED && si.si_status == 0));
			sched_yield();
		}
		kill(cons, SIGKILL);
		st = t_wait(cons);
		uint64_t start = (uint64_t)atomic_load(&sh->t0), seen = atomic_load(&sh->committed);
		if (st == 0)
			break; /* it reached the end before the kill */
		CHECK_EQ(st, 128 + SIGKILL);
		/* No loss: it started at or before the first message nobody had seen (one
		 * more if the kill fell between a recv and the child's count). */
		CHECK(start <= from + 1);
		/* Redelivered: only what had not been published, capacity/8 bytes at most
		 * (plus one peeked message). */
		uint64_t again = 0;
		for (uint64_t q = start; q < from + 1; q++)
			again += (8 + msg_len(q, max) + 7) / 8 * 8;
		CHECK(again <= cap / 8 + max + 16);
		kills++;
		redelivered += start < from ? from - start : 0;
		next = seen;
	}
	/* The last consumer drains to the end. */
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	unsigned char *buf = malloc(max);
	CHECK(buf != NULL);
	ssize_t r;
	uint64_t seq = UINT64_MAX, first = UINT64_MAX;
	while ((r = shmkit_chan_recv(c, buf, max, -1)) > 0) {
		if (seq == UINT64_MAX) {
			CHECK(r >= 8);
			memcpy(&seq, buf, 8);
			first = seq;
		}
		CHECK_MSG(seq, buf, r, max);
		seq++;
	}
	CHECK_EQ(r, 0);
	CHECK(first == UINT64_MAX || first <= next + 1);
	CHECK(first == UINT64_MAX || seq == total);
	CHECK_EQ(t_wait(prod), 0);
	fprintf(stderr, "consumers killed: %llu, messages received again by successors: %llu\n",
		(unsigned long long)kills, (unsigned long long)redelivered);
	min_len = 1;
	retry_epipe = 0;
	free(buf);
	shmkit_chan_close(c);
	shmkit_chan_close(o);
	munmap(sh, sizeof *sh);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

int main(void)
{
	chan_test_init();
	test_producer_killed_sleeping();
	test_producer_killed_random(SANITIZED ? 5 : 20);
	test_consumer_gone();
	test_consumer_killed_stream(SANITIZED ? 4 : 12);
	return T_PASS;
}
