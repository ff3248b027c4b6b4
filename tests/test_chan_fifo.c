/* Channels reused like a named FIFO: producer and consumer sessions.
 * - an end-of-stream is received once: a consumer that opens after an earlier one
 *   received it waits for the next producer (then gets exactly that stream), while
 *   the handle that received it keeps getting 0 until a producer attaches;
 * - an end-of-stream nobody received yet is delivered to a late consumer, after the
 *   messages queued before it;
 * - a producer that finds the consumer's end from before it came (closed, or killed)
 *   waits for the next consumer when the ring fills, never -EPIPE; a consumer that
 *   leaves during its session still gives -EPIPE;
 * - the same across processes: N producer/consumer pairs in a row on one name, each
 *   consumer started before or after its producer, each getting exactly its stream. */
#include "chan_common.h"

/* The stale end-of-stream, within one process. */
static void test_eos_once(unsigned sysv)
{
	const char *name = track("eos", sysv);
	unsigned f = sysv ? SHMKIT_SEG_SYSV : 0;
	char buf[64];
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE | f);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, f);
	CHECK_OK(shmkit_chan_send(p, "a", 1, 0));
	shmkit_chan_close(p);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 1);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 0);
	/* This handle keeps its end-of-stream, like read(2) at end of file. */
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, -1), 0);
	shmkit_chan_close(c);

	/* The next consumer does not receive it again: it waits, blocking or not. */
	c = t_chan_open_ok(name, C, 0, f);
	CHECK_EQ(stats_of(c).producer_closed, 1);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 20 * SHMKIT_MSEC), -ETIMEDOUT);
	const void *pb;
	size_t pl;
	CHECK_EQ(shmkit_chan_peek(c, &pb, &pl, 0), -EAGAIN);
	/* Its descriptor is not readable either: nothing waits. */
	int fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	/* The next producer's stream, then its own end-of-stream. */
	p = t_chan_open_ok(name, P, 0, f);
	CHECK_OK(shmkit_chan_send(p, "bc", 2, 0));
	shmkit_chan_close(p);
	CHECK_EQ(poll(&pfd, 1, 1000), 1);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 2);
	CHECK(memcmp(buf, "bc", 2) == 0);
	CHECK_EQ(shmkit_chan_peek(c, &pb, &pl, 0), 0);
	shmkit_chan_close(c);

	/* A stream that ended before its consumer came: delivered whole, end included,
	 * once. */
	p = t_chan_open_ok(name, P, 0, f);
	CHECK_OK(shmkit_chan_send(p, "d", 1, 0));
	CHECK_OK(shmkit_chan_send(p, "ef", 2, 0));
	shmkit_chan_close(p);
	c = t_chan_open_ok(name, C, 0, f);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 1);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 2);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 0);
	shmkit_chan_close(c);
	c = t_chan_open_ok(name, C, 0, f);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
	/* An empty stream ends too (a producer that sent nothing). */
	p = t_chan_open_ok(name, P, 0, f);
	shmkit_chan_close(p);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 0);
	shmkit_chan_close(c);
}

/* A consumer blocked on a stale end-of-stream wakes for the next producer. */
static void test_waits_for_producer(void)
{
	const char *name = track("wake", 0);
	char buf[16];
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	shmkit_chan_close(p);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 0);
	shmkit_chan_close(c);
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		char b;
		if (read(go[0], &b, 1) != 1)
			_exit(T_FAIL);
		t_nap_ms(100); /* the consumer sleeps by now */
		shmkit_chan *q = t_chan_open_ok(name, P, 0, 0);
		CHECK_OK(shmkit_chan_send(q, "late", 4, 0));
		shmkit_chan_close(q);
		_exit(T_PASS);
	}
	c = t_chan_open_ok(name, C, 0, 0);
	shmkit_chan_set_spin(c, 0);
	CHECK(write(go[1], "x", 1) == 1);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 5 * SHMKIT_SEC), 4);
	CHECK(memcmp(buf, "late", 4) == 0);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 5 * SHMKIT_SEC), 0);
	CHECK_EQ(t_wait(pid), 0);
	shmkit_chan_close(c);
	close(go[0]);
	close(go[1]);
}

/* The producer's side: a consumer's end from before is no -EPIPE. */
static void test_producer_waits_for_consumer(void)
{
	const char *name = track("pwait", 0);
	unsigned char buf[100] = {0};
	shmkit_chan *c = t_chan_open_ok(name, C, 4096, C_CREATE);
	shmkit_chan_close(c); /* left before any producer came */
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	uint64_t n = 0;
	while (shmkit_chan_send(p, buf, sizeof buf, 0) == 0)
		n++;
	CHECK(n > 0);
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, 0), -EAGAIN);
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, 20 * SHMKIT_MSEC), -ETIMEDOUT);
	/* A consumer comes and goes during our session: that end is ours, -EPIPE. */
	c = t_chan_open_ok(name, C, 0, 0);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), sizeof buf);
	shmkit_chan_close(c);
	while (shmkit_chan_send(p, buf, sizeof buf, 0) == 0)
		;
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, 0), -EPIPE);
	shmkit_chan_close(p);

	/* A consumer killed before the producer came: waited for, not -EPIPE. */
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_chan *held = t_chan_open_ok(name, C, 0, 0);
		(void)held;
		if (write(ready[1], "x", 1) != 1)
			_exit(T_FAIL);
		for (;;)
			pause();
	}
	char b;
	CHECK(read(ready[0], &b, 1) == 1);
	kill(pid, SIGKILL);
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	p = t_chan_open_ok(name, P, 0, 0);
	while (shmkit_chan_send(p, buf, sizeof buf, 0) == 0)
		;
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, 0), -EAGAIN);
	CHECK_EQ(shmkit_chan_send(p, buf, sizeof buf, 300 * SHMKIT_MSEC), -ETIMEDOUT);
	/* Its successor frees room, and the send goes through. */
	c = t_chan_open_ok(name, C, 0, 0);
	while (shmkit_chan_recv(c, buf, sizeof buf, 0) > 0)
		;
	CHECK_OK(shmkit_chan_send(p, buf, sizeof buf, 0));
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	close(ready[0]);
	close(ready[1]);
}

/* Pairs of processes in a row on one name, as `seq N | shmkit send & shmkit recv`
 * run again and again: each consumer gets exactly its producer's stream. */
static void test_pairs(int runs)
{
	const char *name = track("pairs", 0);
	shmkit_chan *keep = t_chan_open_ok(name, O, 4096, C_CREATE);
	for (int run = 0; run < runs; run++) {
		uint64_t n = 50 + (uint64_t)run % 7; /* messages of this run */
		pid_t prod = t_fork_raw();
		CHECK(prod >= 0);
		if (prod == 0) {
			shmkit_chan *q = t_chan_open_ok(name, P, 0, 0);
			for (uint64_t i = 0; i < n; i++) {
				uint64_t m[2] = {(uint64_t)run, i};
				CHECK_OK(shmkit_chan_send(q, m, sizeof m, SHMKIT_FOREVER));
			}
			shmkit_chan_close(q);
			_exit(T_PASS);
		}
		/* Every other run, the consumer comes after the producer ended. */
		if (run % 2)
			CHECK_EQ(t_wait(prod), 0);
		shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
		uint64_t got = 0, m[2];
		ssize_t r;
		while ((r = shmkit_chan_recv(c, m, sizeof m, 10 * SHMKIT_SEC)) > 0) {
			CHECK_EQ(r, sizeof m);
			CHECK_EQ(m[0], (uint64_t)run);
			CHECK_EQ(m[1], got);
			got++;
		}
		CHECK_EQ(r, 0);
		CHECK_EQ(got, n);
		shmkit_chan_close(c);
		if (run % 2 == 0)
			CHECK_EQ(t_wait(prod), 0);
	}
	shmkit_chan_close(keep);
}

int main(void)
{
	chan_test_init();
	T_RUN(test_eos_once(0));
	T_RUN(test_eos_once(SHMKIT_SEG_SYSV));
	T_RUN(test_waits_for_producer());
	T_RUN(test_producer_waits_for_consumer());
	T_RUN(test_pairs(SANITIZED ? 20 : 60));
	return T_PASS;
}
