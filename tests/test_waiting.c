/* Waiting through descriptors and for new versions: the channel consumer's descriptor
 * is level-triggered (readable at once with messages queued, and while any remain),
 * the producer's descriptor reports room and the consumer's end, and a blob is
 * waited on with shmkit_blob_wait() and its descriptor; spin budgets are measured
 * from the wake-ups a process sees.
 *
 * Also the C producer of tests/asyncio_chan.py: test_waiting --produce NAME COUNT. */
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>

#include "common.h"
#include "wait.h" /* SHMKIT__SLICE_NS */

#define C SHMKIT_CHAN_CONSUMER
#define P SHMKIT_CHAN_PRODUCER
#define O SHMKIT_CHAN_OBSERVER
#define CREATE SHMKIT_SEG_CREATE

/* Scales the longer loops (SHMKIT_TEST_SCALE=10 for a bigger run). */
static int scale(void)
{
	const char *s = getenv("SHMKIT_TEST_SCALE");
	int n = s ? atoi(s) : 1;
	return n < 1 ? 1 : n;
}

/* 1 if @fd polls readable within @ms. */
static int readable(int fd, int ms)
{
	struct pollfd pf = {fd, POLLIN, 0};
	int r;
	while ((r = poll(&pf, 1, ms)) < 0 && errno == EINTR)
		;
	return r == 1 && (pf.revents & POLLIN);
}

/* An epoll set watching @fd, as an event loop registers it. */
static int epoll_on(int fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	return ep;
}

static int epoll_ready(int ep, int ms)
{
	struct epoll_event ev;
	int r;
	while ((r = epoll_wait(ep, &ev, 1, ms)) < 0 && errno == EINTR)
		;
	CHECK(r >= 0);
	return r;
}

static void send_int(shmkit_chan *p, int v)
{
	CHECK_OK(shmkit_chan_send(p, &v, sizeof v, 0));
}

static void recv_int(shmkit_chan *c, int want)
{
	int v = -1;
	CHECK_EQ(shmkit_chan_recv(c, &v, sizeof v, 0), sizeof v);
	CHECK_EQ(v, want);
}

/* (a) Messages queued before the descriptor exists: registered with epoll before any
 * receive, it reports readable at once. */
static void test_fd_queued(void)
{
	for (int variant = 0; variant < 2; variant++) {
		const char *name = t_name(variant ? "queued-eos" : "queued");
		shmkit_chan *c = t_chan_open_ok(name, C, 4096, CREATE);
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		for (int i = 0; i < 3; i++)
			send_int(p, i);
		if (variant == 1)
			CHECK_OK(shmkit_chan_close(p)); /* messages, then end-of-stream */
		int fd = shmkit_chan_fd(c);
		CHECK(fd >= 0);
		int ep = epoll_on(fd);
		CHECK_EQ(epoll_ready(ep, 0), 1);
		for (int i = 0; i < 3; i++)
			recv_int(c, i);
		if (variant == 1) {
			CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), 0);
			CHECK_EQ(epoll_ready(ep, 0), 1); /* end-of-stream lasts */
		} else {
			CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
			/* Nothing left and the producer (us) alive: quiet, where a pidfd watches
			 * it (a timer standing in for one fires by design). */
			if (t_have_pidfd())
				CHECK_EQ(epoll_ready(ep, 0), 0);
			shmkit_chan_close(p);
		}
		close(ep);
		shmkit_chan_close(c);
	}
}

/* (b) Level-triggered: after a receive with timeout 0 took one of two messages, the
 * descriptor is still readable; it goes quiet only once a receive found nothing. Both
 * with the messages queued before the descriptor, and sent while it was armed. */
static void test_fd_level(void)
{
	const char *name = t_name("level");
	shmkit_chan *c = t_chan_open_ok(name, C, 4096, CREATE);
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	send_int(p, 1);
	send_int(p, 2);
	int fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	int ep = epoll_on(fd);
	recv_int(c, 1);
	CHECK_EQ(epoll_ready(ep, 0), 1);
	recv_int(c, 2);
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
	if (t_have_pidfd())
		CHECK_EQ(epoll_ready(ep, 0), 0);
	for (int round = 0; round < 100; round++) {
		/* Armed by the -EAGAIN: the producer's send signals it. */
		send_int(p, 3);
		send_int(p, 4);
		CHECK_EQ(epoll_ready(ep, 0), 1);
		recv_int(c, 3);
		CHECK_EQ(epoll_ready(ep, 0), 1);
		if (round % 2) {
			/* A blocking receive replaces POLLING by its own states: the
			 * descriptor must not go quiet for that. */
			int v = 0;
			CHECK_EQ(shmkit_chan_recv(c, &v, sizeof v, SHMKIT_SEC), sizeof v);
			CHECK_EQ(v, 4);
		} else {
			recv_int(c, 4);
		}
		CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
		if (t_have_pidfd())
			CHECK_EQ(epoll_ready(ep, 0), 0);
	}
	close(ep);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
}

/* (b) Across processes, as an event loop that takes ONE message per readiness (asyncio
 * callbacks do): a producer sends bursts with pauses between them, and the consumer
 * must never find the descriptor quiet while a message waits. A 5 s silence with the
 * producer not done is a descriptor gone quiet. */
static void test_fd_one_per_wakeup(void)
{
	const char *name = t_name("one");
	const int count = 20000 * scale();
	shmkit_chan *c = t_chan_open_ok(name, C, 1 << 14, CREATE);
	int fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		char b;
		CHECK(read(go[0], &b, 1) == 1);
		uint64_t s = 0x0e1;
		for (int i = 0; i < count; i++) {
			CHECK_OK(shmkit_chan_send(p, &i, sizeof i, 5 * SHMKIT_SEC));
			/* Bursts of 1-32, then a pause of up to 100 µs: the consumer catches up,
			 * finds nothing, arms, and is signalled again. */
			uint64_t r = t_rand(&s);
			if (r % 32 == 0) {
				struct timespec ts = {0, (long)(r >> 40) % 100000};
				nanosleep(&ts, NULL);
			}
		}
		shmkit_chan_close(p);
		_exit(0);
	}
	/* Armed the way a first receive arms it (so this does not retest (a)). */
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
	CHECK(write(go[1], "g", 1) == 1);
	int ep = epoll_on(fd);
	int next = 0, spurious = 0;
	for (;;) {
		t_guard(30, "test_fd_one_per_wakeup");
		if (epoll_ready(ep, 5000) != 1) {
			fprintf(stderr, "quiet descriptor: message %d of %d not signalled\n", next,
				count);
			CHECK(0);
		}
		int v;
		ssize_t r = shmkit_chan_recv(c, &v, sizeof v, 0);
		if (r == -EAGAIN) {
			spurious++;
			continue;
		}
		if (r == 0)
			break;
		CHECK_EQ(r, sizeof v);
		CHECK_EQ(v, next);
		next++;
	}
	t_guard(0, "");
	CHECK_EQ(next, count);
	CHECK_EQ(t_wait(pid), 0);
	printf("  %d messages, one per wake-up; %d wake-ups found nothing\n", count, spurious);
	close(ep);
	close(go[0]);
	close(go[1]);
	shmkit_chan_close(c);
}

/* A producer in a child, driven over a pipe: 's' sends the next number, 'c' closes,
 * anything else ends it. It reports "ready" once open. */
struct child {
	pid_t pid;
	int cmd, ack;
};

static struct child child_producer(const char *name)
{
	int to[2], from[2];
	CHECK(pipe(to) == 0 && pipe(from) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
		char b = 'r';
		int n = 0;
		CHECK(write(from[1], &b, 1) == 1);
		while (read(to[0], &b, 1) == 1) {
			if (b == 's')
				send_int(p, n++);
			else if (b == 'c')
				shmkit_chan_close(p);
			else
				break;
			CHECK(write(from[1], &b, 1) == 1);
		}
		_exit(0);
	}
	close(to[0]);
	close(from[1]);
	char b;
	CHECK(read(from[0], &b, 1) == 1);
	return (struct child){pid, to[1], from[0]};
}

static void child_do(const struct child *k, char what)
{
	char b;
	CHECK(write(k->cmd, &what, 1) == 1);
	CHECK(read(k->ack, &b, 1) == 1);
}

static void child_end(struct child *k, int kill_it)
{
	if (kill_it)
		kill(k->pid, SIGKILL);
	else
		CHECK(write(k->cmd, "q", 1) == 1);
	CHECK_EQ(t_wait(k->pid), kill_it ? 128 + SIGKILL : 0);
	close(k->cmd);
	close(k->ack);
}

/* Receive with timeout 0 until the answer is not -EAGAIN, polling between tries: a
 * pidfd may turn readable a hair before the dead process's lock is released. */
static ssize_t recv_settled(shmkit_chan *c, int fd)
{
	int v;
	ssize_t r = shmkit_chan_recv(c, &v, sizeof v, 0);
	for (int i = 0; r == -EAGAIN && i < 100; i++) {
		(void)readable(fd, 100);
		r = shmkit_chan_recv(c, &v, sizeof v, 0);
	}
	return r;
}

/* (c) Readable exactly when something waits: not on an empty ring, at a message from
 * another process, at end-of-stream and when the producer is killed (both lasting),
 * and when the segment was deleted. */
static void test_fd_conditions(void)
{
	const char *name = t_name("cond");
	shmkit_chan *c = t_chan_open_ok(name, C, 4096, CREATE);
	int fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	/* No producer at all: nothing watched, nothing waits. */
	CHECK(!readable(fd, 0));

	struct child k = child_producer(name);
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
	if (t_have_pidfd())
		CHECK(!readable(fd, 0));
	child_do(&k, 's');
	CHECK(readable(fd, 5000));
	recv_int(c, 0);
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
	if (t_have_pidfd())
		CHECK(!readable(fd, 0));
	child_do(&k, 's');
	child_do(&k, 'c'); /* a message, then end-of-stream */
	CHECK(readable(fd, 5000));
	recv_int(c, 1);
	CHECK(readable(fd, 0));
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), 0);
	CHECK(readable(fd, 0));
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), 0);
	child_end(&k, 0);

	/* A producer killed while the consumer polls. */
	k = child_producer(name);
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
	if (t_have_pidfd())
		CHECK(!readable(fd, 0));
	child_end(&k, 1);
	int64_t t0 = t_now_ns();
	CHECK(readable(fd, 5000));
	/* Through the pidfd at once, or within a tick of the timer. */
	CHECK(t_now_ns() - t0 < SHMKIT_SEC);
	CHECK_EQ(recv_settled(c, fd), -EPIPE);
	CHECK(readable(fd, 0));
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EPIPE);

	/* Deleted: the producer finds out at its next send, and tells a polling consumer. */
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
	if (t_have_pidfd())
		CHECK(!readable(fd, 0));
	CHECK_OK(shmkit_seg_delete(shmkit_chan_seg(p)));
	CHECK_EQ(shmkit_chan_send(p, "x", 1, 0), -EIDRM);
	CHECK(readable(fd, 0));
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EIDRM);
	CHECK(readable(fd, 0));
	shmkit_chan_close(p);
	shmkit_chan_close(c);

	/* Deleted by a third party, with nobody to signal: once a receive said -EIDRM,
	 * the descriptor stays readable (as at end-of-stream). */
	name = t_name("cond-del");
	c = t_chan_open_ok(name, C, 4096, CREATE);
	fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	shmkit_chan *o = t_chan_open_ok(name, O, 0, 0);
	CHECK(!readable(fd, 0));
	CHECK_OK(shmkit_seg_delete(shmkit_chan_seg(o)));
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EIDRM);
	CHECK(readable(fd, 0));
	shmkit_chan_close(o);
	shmkit_chan_close(c);
}

/* Bytes free in the ring as the producer sees them (the consumer publishes lazily). */
static uint64_t ring_free(const shmkit_chan *ch)
{
	struct shmkit_chan_stats st;
	CHECK_OK(shmkit_chan_stats(ch, &st));
	return st.capacity - st.used;
}

/* (d) The producer's descriptor: readable while half the ring is free; not readable
 * after a send refused for room, until the consumer freed half the ring (or, for a
 * message larger than that, its room); readable when the consumer closes (the send
 * then gives -EPIPE) or is killed. */
/* A descriptor made (and armed) before any producer attached: a producer that
 * attaches later and dies before sending anything still makes it readable, and the
 * receive says -EPIPE. (It stayed quiet for ever: nobody watched the late producer.) */
static void test_fd_late_producer(void)
{
	const char *name = t_name("late");
	shmkit_chan *c = t_chan_open_ok(name, C, 4096, CREATE);
	int fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	CHECK_EQ(shmkit_chan_recv(c, &(int){0}, sizeof(int), 0), -EAGAIN);
	CHECK(!readable(fd, 0));
	struct child k = child_producer(name); /* attached once this returns */
	child_end(&k, 1);
	CHECK(readable(fd, 5000));
	CHECK_EQ(recv_settled(c, fd), -EPIPE);
	CHECK(readable(fd, 0));
	CHECK_OK(shmkit_chan_close(c));
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

static void test_producer_fd(void)
{
	const char *name = t_name("pfd");
	const uint64_t cap = 4096;
	shmkit_chan *c = t_chan_open_ok(name, C, cap, CREATE);
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	int pfd = shmkit_chan_fd(p);
	CHECK(pfd >= 0);
	CHECK_EQ(shmkit_chan_fd(p), pfd);
	CHECK(readable(pfd, 0)); /* empty: room */
	unsigned char buf[2048] = {0};
	for (int round = 0; round < 20; round++) {
		int n = 0, r;
		while ((r = shmkit_chan_send(p, buf, 64, 0)) == 0)
			n++;
		CHECK_EQ(r, -EAGAIN);
		CHECK(n > 0);
		CHECK(!readable(pfd, 0));
		/* Readable exactly once half the ring is free, as far as the producer can
		 * know (the consumer publishes every capacity/8 bytes). */
		int got = 0;
		while (!readable(pfd, 0)) {
			CHECK(ring_free(p) < cap / 2);
			CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 64);
			got++;
			CHECK(got <= n);
		}
		CHECK(ring_free(p) >= cap / 2);
		CHECK_OK(shmkit_chan_send(p, buf, 64, 0));
		while (shmkit_chan_recv(c, buf, sizeof buf, 0) > 0)
			;
	}
	/* A message larger than half the ring: the descriptor waits for its room. Each
	 * refusal leaves it quiet (no busy loop), and a few rounds get it through (a pad
	 * at the lap's end may take one). The receive that drains the ring may find no
	 * message, only that pad to skip: that one makes the descriptor readable. */
	for (int round = 0; round < 20; round++) {
		while (shmkit_chan_send(p, buf, 64 + 8 * (round % 7), 0) == 0)
			;
		int tries = 0, r;
		while ((r = shmkit_chan_send(p, buf, 2048, 0)) == -EAGAIN) {
			CHECK(++tries <= 3);
			CHECK(!readable(pfd, 0));
			ssize_t k;
			while (!readable(pfd, 0)) {
				k = shmkit_chan_recv(c, buf, sizeof buf, 0);
				if (k == -EAGAIN) {
					CHECK(readable(pfd, 0));
					break;
				}
				CHECK(k > 0);
			}
			CHECK(ring_free(p) >= 2048 + 8);
		}
		CHECK_EQ(r, 0);
		while (shmkit_chan_recv(c, buf, sizeof buf, 0) > 0)
			;
	}
	/* The consumer closes: readable, and the send says why. */
	while (shmkit_chan_send(p, buf, 64, 0) == 0)
		;
	CHECK(!readable(pfd, 0));
	shmkit_chan_close(c);
	CHECK(readable(pfd, 0));
	CHECK_EQ(shmkit_chan_send(p, buf, 64, 0), -EPIPE);
	CHECK(readable(pfd, 0));
	shmkit_chan_close(p);

	/* A consumer killed while the producer polls a full ring. */
	const char *name2 = t_name("pfd-kill");
	p = t_chan_open_ok(name2, P, cap, CREATE);
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		t_chan_open_ok(name2, C, 0, 0);
		CHECK(write(ready[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	char b;
	CHECK(read(ready[0], &b, 1) == 1);
	pfd = shmkit_chan_fd(p);
	CHECK(pfd >= 0);
	while (shmkit_chan_send(p, buf, 64, 0) == 0)
		;
	if (t_have_pidfd())
		CHECK(!readable(pfd, 0));
	kill(pid, SIGKILL);
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	CHECK(readable(pfd, 5000));
	int r = shmkit_chan_send(p, buf, 64, 0);
	for (int i = 0; r == -EAGAIN && i < 100; i++) {
		(void)readable(pfd, 100);
		r = shmkit_chan_send(p, buf, 64, 0);
	}
	CHECK_EQ(r, -EPIPE);
	CHECK(readable(pfd, 0));
	shmkit_chan_close(p);
	close(ready[0]);
	close(ready[1]);
}

/* ---- blobs ---- */

/* Where src/blob.c lays its control block out (white-box checks only). */
#define BLOB_BELL_OFF 128u    /* struct shmkit__bell (wait.h) */
#define BLOB_POLLERS_OFF 192u /* the registrations' count */
#define BLOB_TABLE_OFF 256u   /* 64 struct shmkit__poll_slot of 24 bytes */
#define BLOB_SLOTS 64

static shmkit_blob *blob_ok(const char *name, size_t size, unsigned flags)
{
	shmkit_blob *b = NULL;
	CHECK_OK(shmkit_blob_open(name, size, 0, flags, &b));
	return b;
}

static uint64_t bell_rings(const shmkit_blob *b)
{
	const unsigned char *d = shmkit_seg_data(shmkit_blob_seg(b));
	const struct shmkit__bell *bell = (const void *)(d + BLOB_BELL_OFF);
	return atomic_load_explicit(&bell->rings, memory_order_relaxed);
}

/* A writer in a child: each byte read from @cmd is a write of that byte's value
 * (after @delay_ms), acknowledged on @ack; 'q' ends it. */
static pid_t blob_writer(const char *name, int cmd, int ack, int delay_ms)
{
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_blob *w = blob_ok(name, 0, 0);
		char b;
		while (read(cmd, &b, 1) == 1 && b != 'q') {
			t_nap_ms(delay_ms);
			unsigned char v[64];
			memset(v, b, sizeof v);
			CHECK_OK(shmkit_blob_write(w, v, sizeof v));
			CHECK(write(ack, &b, 1) == 1);
		}
		shmkit_blob_close(w);
		_exit(0);
	}
	return pid;
}

/* (e) shmkit_blob_wait(): returns at once when the version already differs, -EAGAIN
 * for timeout 0, -ETIMEDOUT after its timeout, and wakes on a write by another
 * process (a futex wake: the bell rang), for read-write and read-only handles. */
static void test_blob_wait(void)
{
	const char *name = t_name("bwait");
	shmkit_blob *b = blob_ok(name, 64, CREATE);
	shmkit_blob *ro = blob_ok(name, 0, SHMKIT_SEG_RDONLY);
	int64_t v0 = shmkit_blob_version(b);
	CHECK_EQ(v0, 0);
	CHECK_EQ(shmkit_blob_wait(b, 0, 0), -EAGAIN);
	CHECK_EQ(shmkit_blob_wait(ro, 0, 0), -EAGAIN);
	CHECK_EQ(shmkit_blob_wait(b, 7, 0), 0);	 /* differs already: the version now */
	CHECK_EQ(shmkit_blob_wait(b, 7, -1), 0); /* and never blocks for it */
	CHECK_EQ(shmkit_blob_wait(NULL, 0, 0), -EINVAL);
	for (int which = 0; which < 2; which++) {
		shmkit_blob *h = which ? ro : b;
		int64_t t0 = t_now_ns();
		CHECK_EQ(shmkit_blob_wait(h, 0, 50 * SHMKIT_MSEC), -ETIMEDOUT);
		int64_t dt = t_now_ns() - t0;
		CHECK(dt >= 50 * SHMKIT_MSEC);
		CHECK(dt < 2 * SHMKIT_SEC);
	}

	int cmd[2], ack[2];
	CHECK(pipe(cmd) == 0 && pipe(ack) == 0);
	pid_t pid = blob_writer(name, cmd[0], ack[1], 30);
	for (int i = 1; i <= 20; i++) {
		shmkit_blob *h = i % 2 ? b : ro;
		uint64_t rings = bell_rings(b);
		char c = (char)('A' + i);
		CHECK(write(cmd[1], &c, 1) == 1); /* the write comes 30 ms from now */
		int64_t v = shmkit_blob_wait(h, (uint64_t)(i - 1), 10 * SHMKIT_SEC);
		CHECK_EQ(v, i);
		unsigned char got[64];
		uint64_t ver;
		CHECK_EQ(shmkit_blob_read(h, got, sizeof got, &ver), sizeof got);
		CHECK_EQ(ver, (uint64_t)i);
		CHECK_EQ(got[0], (unsigned char)c);
		CHECK(read(ack[0], &c, 1) == 1);
		/* A read-write waiter slept on the bell, and the writer woke it. */
		if (h == b)
			CHECK(bell_rings(b) > rings);
	}
	CHECK(write(cmd[1], "q", 1) == 1);
	CHECK_EQ(t_wait(pid), 0);

	/* A deletion wakes a sleeping waiter at once. */
	pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_blob *d = blob_ok(name, 0, 0);
		t_nap_ms(50);
		CHECK_OK(shmkit_blob_delete(d));
		_exit(0);
	}
	int64_t t0 = t_now_ns();
	CHECK_EQ(shmkit_blob_wait(b, 20, 10 * SHMKIT_SEC), -EIDRM);
	CHECK(t_now_ns() - t0 < SHMKIT__SLICE_NS);
	CHECK_EQ(t_wait(pid), 0);
	close(cmd[0]);
	close(cmd[1]);
	close(ack[0]);
	close(ack[1]);
	shmkit_blob_close(ro);
	shmkit_blob_close(b);
}

/* (e) shmkit_blob_fd(): quiet until another process writes, readable then (and at
 * once when created after a write), quiet again once a read or wait returned the
 * current version; readable after a deletion. */
static void test_blob_fd(void)
{
	const char *name = t_name("bfd");
	shmkit_blob *b = blob_ok(name, 64, CREATE);
	shmkit_blob *ro = blob_ok(name, 0, SHMKIT_SEG_RDONLY);
	CHECK_EQ(shmkit_blob_fd(ro), -EBADF);
	CHECK_EQ(shmkit_blob_fd(NULL), -EINVAL);
	int fd = shmkit_blob_fd(b);
	CHECK(fd >= 0);
	CHECK_EQ(shmkit_blob_fd(b), fd);
	int ep = epoll_on(fd);
	CHECK_EQ(epoll_ready(ep, 0), 0);

	int cmd[2], ack[2];
	CHECK(pipe(cmd) == 0 && pipe(ack) == 0);
	pid_t pid = blob_writer(name, cmd[0], ack[1], 0);
	unsigned char got[64];
	uint64_t ver;
	for (int i = 1; i <= 50; i++) {
		char c = (char)('A' + i % 26); /* never 'q' */
		CHECK(write(cmd[1], &c, 1) == 1);
		CHECK(read(ack[0], &c, 1) == 1);
		CHECK_EQ(epoll_ready(ep, 5000), 1);
		CHECK_EQ(epoll_ready(ep, 0), 1); /* level: it stays until we look */
		if (i % 3 == 0) {
			CHECK_EQ(shmkit_blob_wait(b, (uint64_t)(i - 1), 0), i);
		} else {
			CHECK_EQ(shmkit_blob_read(b, got, sizeof got, &ver), sizeof got);
			CHECK_EQ(ver, (uint64_t)i);
		}
		CHECK_EQ(epoll_ready(ep, 0), 0);
	}
	/* Two writes, one read: quiet (it returned the newest). */
	CHECK(write(cmd[1], "xy", 2) == 2);
	CHECK(read(ack[0], got, 1) == 1 && read(ack[0], got, 1) == 1);
	CHECK_EQ(epoll_ready(ep, 0), 1);
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, &ver), sizeof got);
	CHECK_EQ(ver, 52);
	CHECK_EQ(epoll_ready(ep, 0), 0);
	/* A version left unread: the next handle's descriptor is readable at once. */
	shmkit_blob *b2 = blob_ok(name, 0, 0);
	CHECK(write(cmd[1], "z", 1) == 1);
	CHECK(read(ack[0], got, 1) == 1);
	int fd2 = shmkit_blob_fd(b2);
	CHECK(fd2 >= 0 && fd2 != fd);
	CHECK(readable(fd2, 0));
	CHECK(readable(fd, 0));
	CHECK_EQ(shmkit_blob_wait(b2, 0, 0), 53);
	CHECK(!readable(fd2, 0));
	CHECK(readable(fd, 0)); /* handles are separate */
	/* Our own write: the version moved past what this handle returned. */
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), sizeof got);
	CHECK(!readable(fd, 0));
	CHECK_OK(shmkit_blob_write(b2, got, sizeof got));
	CHECK(readable(fd, 0));
	CHECK(readable(fd2, 0));
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), sizeof got);
	CHECK_EQ(shmkit_blob_read(b2, got, sizeof got, NULL), sizeof got);
	CHECK(!readable(fd, 0) && !readable(fd2, 0));
	CHECK(write(cmd[1], "q", 1) == 1);
	CHECK_EQ(t_wait(pid), 0);
	/* Deleted by another process: readable, and a read says why. */
	pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_blob *d = blob_ok(name, 0, 0);
		CHECK_OK(shmkit_blob_delete(d));
		_exit(0);
	}
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(epoll_ready(ep, 5000), 1);
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), -EIDRM);
	CHECK_EQ(epoll_ready(ep, 0), 1);
	close(ep);
	close(cmd[0]);
	close(cmd[1]);
	close(ack[0]);
	close(ack[1]);
	shmkit_blob_close(b2);
	shmkit_blob_close(ro);
	shmkit_blob_close(b);
}

/* 64 descriptors per blob, -EUSERS beyond; a closed handle's slot and a killed
 * process's are taken again; garbage in the table and the bell (owners naming no
 * token, random tokens, armed flags and counts) neither crashes nor jams anything; no
 * descriptor leaks. */
static void test_blob_fd_table(void)
{
	const char *name = t_name("btab");
	int fds0 = t_count_fds();
	shmkit_blob *h[BLOB_SLOTS + 1];
	for (int i = 0; i <= BLOB_SLOTS; i++)
		h[i] = blob_ok(name, 64, CREATE);
	for (int i = 0; i < BLOB_SLOTS; i++)
		CHECK(shmkit_blob_fd(h[i]) >= 0);
	CHECK_EQ(shmkit_blob_fd(h[BLOB_SLOTS]), -EUSERS);
	shmkit_blob_close(h[5]);
	CHECK(shmkit_blob_fd(h[BLOB_SLOTS]) >= 0);
	h[5] = blob_ok(name, 0, 0);
	CHECK_EQ(shmkit_blob_fd(h[5]), -EUSERS);
	/* Every descriptor hears a write. */
	CHECK_OK(shmkit_blob_write(h[5], "w", 1));
	for (int i = 0; i <= BLOB_SLOTS; i++)
		if (i != 5)
			CHECK(readable(shmkit_blob_fd(h[i]), 0));
	for (int i = 0; i <= BLOB_SLOTS; i++)
		shmkit_blob_close(h[i]);

	/* A killed process's registrations are taken over. */
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < BLOB_SLOTS; i++)
			CHECK(shmkit_blob_fd(blob_ok(name, 0, 0)) >= 0);
		CHECK(write(ready[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	shmkit_blob *b = blob_ok(name, 0, 0);
	CHECK_EQ(shmkit_blob_fd(b), -EUSERS);
	kill(pid, SIGKILL);
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	CHECK(shmkit_blob_fd(b) >= 0);
	shmkit_blob_close(b);
	close(ready[0]);
	close(ready[1]);

	/* Garbage everywhere a peer could write it. */
	shmkit_blob *w = blob_ok(name, 0, 0);
	unsigned char *d = shmkit_seg_data(shmkit_blob_seg(w));
	uint64_t s = 0x7ab1e;
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < BLOB_SLOTS; i++) {
			uint64_t *slot =
			    (uint64_t *)(void *)(d + BLOB_TABLE_OFF + 24u * (unsigned)i);
			uint64_t r = t_rand(&s);
			/* Owners: names of no token (free for the taking), or 0. */
			slot[0] = r % 3 == 0 ? 0 : (UINT64_C(0x5eed) << 48) | (r & 0xffff);
			slot[1] = t_rand(&s);		       /* token */
			slot[2] = r % 5 == 0 ? 1 : t_rand(&s); /* armed, reserved */
		}
		uint32_t *bell = (uint32_t *)(void *)(d + BLOB_BELL_OFF);
		bell[0] = (uint32_t)t_rand(&s);
		bell[1] = (uint32_t)t_rand(&s) % 4 == 0 ? 0 : (uint32_t)t_rand(&s);
		*(uint32_t *)(void *)(d + BLOB_POLLERS_OFF) = (uint32_t)t_rand(&s);
		b = blob_ok(name, 0, 0);
		int fd = shmkit_blob_fd(b);
		CHECK(fd >= 0); /* dead owners: taken over */
		CHECK(!readable(fd, 0));
		CHECK_OK(shmkit_blob_write(w, "g", 1));
		CHECK(readable(fd, 0));
		int64_t v = shmkit_blob_version(w);
		CHECK_EQ(shmkit_blob_wait(b, (uint64_t)v, 0), -EAGAIN);
		CHECK_EQ(shmkit_blob_wait(b, (uint64_t)v - 1, 10 * SHMKIT_MSEC), v);
		CHECK(!readable(fd, 0));
		CHECK_EQ(shmkit_blob_wait(b, (uint64_t)v, 10 * SHMKIT_MSEC), -ETIMEDOUT);
		shmkit_blob_close(b);
	}
	shmkit_blob_close(w);
	CHECK_EQ(t_count_fds(), fds0);
}

/* ---- threads: what ThreadSanitizer can see ---- */

struct tchan {
	const char *name;
	int count;
};

/* A producer thread waiting on its own descriptor whenever the ring is full. */
static void *tchan_producer(void *arg)
{
	const struct tchan *t = arg;
	shmkit_chan *p = t_chan_open_ok(t->name, P, 0, 0);
	int pfd = shmkit_chan_fd(p);
	CHECK(pfd >= 0);
	unsigned char m[200] = {0};
	for (int i = 0; i < t->count;) {
		memcpy(m, &i, sizeof i);
		int r = shmkit_chan_send(p, m, 8 + (size_t)(i % 190), 0);
		if (r == 0) {
			i++;
			continue;
		}
		CHECK_EQ(r, -EAGAIN);
		if (!readable(pfd, 5000)) {
			fprintf(stderr, "producer descriptor quiet for 5 s at message %d\n", i);
			CHECK(0);
		}
	}
	shmkit_chan_close(p);
	return NULL;
}

/* Both descriptors with the two ends in two threads of one process: a producer that
 * fills a small ring and polls for room, a consumer that takes one message per
 * wake-up. */
static void test_threads_chan(void)
{
	struct tchan t = {t_name("tchan"), (SANITIZED ? 20000 : 100000) * scale()};
	shmkit_chan *c = t_chan_open_ok(t.name, C, 4096, CREATE);
	int fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, tchan_producer, &t) == 0);
	int next = 0;
	unsigned char m[200];
	for (;;) {
		if (!readable(fd, 5000)) {
			fprintf(stderr, "consumer descriptor quiet for 5 s at message %d\n", next);
			CHECK(0);
		}
		ssize_t r = shmkit_chan_recv(c, m, sizeof m, 0);
		if (r == -EAGAIN)
			continue;
		if (r == 0)
			break;
		int v;
		memcpy(&v, m, sizeof v);
		CHECK_EQ(v, next);
		CHECK_EQ(r, 8 + next % 190);
		next++;
	}
	CHECK_EQ(next, t.count);
	CHECK(pthread_join(th, NULL) == 0);
	shmkit_chan_close(c);
}

struct tblob {
	shmkit_blob *b;
	int versions;
};

static void *tblob_writer(void *arg)
{
	const struct tblob *t = arg;
	for (int i = 1; i <= t->versions; i++) {
		CHECK_OK(shmkit_blob_write(t->b, &i, sizeof i));
		if (i % 16 == 0)
			t_nap_ms(1);
	}
	return NULL;
}

static void *tblob_waiter(void *arg)
{
	const struct tblob *t = arg;
	uint64_t seen = 0;
	int last = 0;
	while (last < t->versions) {
		int64_t v = shmkit_blob_wait(t->b, seen, 5 * SHMKIT_SEC);
		CHECK(v > (int64_t)seen);
		int got;
		CHECK_EQ(shmkit_blob_read(t->b, &got, sizeof got, &seen), sizeof got);
		CHECK(got >= last);
		last = got;
	}
	return NULL;
}

/* One blob handle shared by a writer thread, two threads in shmkit_blob_wait() and
 * the main thread reading whenever the handle's descriptor is readable (which a read
 * by any of the threads may make quiet: it follows the handle's last read): every
 * waiter reaches the last version; afterwards the descriptor is quiet once read and
 * readable after a write. */
/* (g) Spin budgets are measured, not assumed: a process starts with
 * SHMKIT__SPIN_UNMEASURED_NS; once its waits have been woken by futex wakes (a
 * channel consumer through c_rung, a topic subscriber through its bell's rung_ns),
 * its default budget is SHMKIT__WAKE_SPIN_FACTOR times the wake-up cost it measured,
 * within the floor and the ceiling. Each case runs in a child forked before this
 * process ever slept, so the measurement can only come from the case's wake-ups. */
static void test_spin_measured(void)
{
	for (int kind = 0; kind < 2; kind++) {
		const char *name = t_name(kind ? "spin-topic" : "spin-chan");
		shmkit_chan *p = NULL;
		shmkit_topic *pub = NULL;
		if (kind)
			CHECK_OK(shmkit_topic_open(name, SHMKIT_TOPIC_PUBLISHER, 0, 0600, CREATE, &pub));
		else
			p = t_chan_open_ok(name, P, 0, CREATE);
		int ready[2];
		CHECK_OK(pipe(ready));
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(ready[0]);
			CHECK_EQ(shmkit__wake_cost_ns(), 0);
			CHECK_EQ(shmkit__spin_default_ns(), SHMKIT__SPIN_UNMEASURED_NS);
			shmkit_chan *c = NULL;
			shmkit_topic *sub = NULL;
			if (kind)
				CHECK_OK(shmkit_topic_open(name, SHMKIT_TOPIC_SUBSCRIBER, 0, 0600, 0, &sub));
			else
				c = t_chan_open_ok(name, C, 0, 0);
			CHECK_EQ(write(ready[1], "r", 1), 1);
			char buf[64];
			uint64_t sleeps = 0;
			for (int i = 0; i < 20; i++)
				CHECK_EQ(kind ? shmkit_topic_receive(sub, buf, sizeof buf, 5 * SHMKIT_SEC)
					      : shmkit_chan_recv(c, buf, sizeof buf, 5 * SHMKIT_SEC),
					 4);
			if (!kind) { /* a topic's stats do not count sleeps */
				struct shmkit_chan_stats st;
				CHECK_OK(shmkit_chan_stats(c, &st));
				sleeps = st.consumer_sleeps;
				CHECK(sleeps >= 10);
			}
			int64_t cost = shmkit__wake_cost_ns(), spin = shmkit__spin_default_ns();
			printf("  %s: %llu sleeps counted, wake-up cost %lld ns, spin budget %lld ns\n",
			       kind ? "topic" : "channel", (unsigned long long)sleeps,
			       (long long)cost, (long long)spin);
			CHECK(cost > 0 && cost <= SHMKIT__WAKE_SAMPLE_MAX_NS);
			int64_t want = cost * SHMKIT__WAKE_SPIN_FACTOR;
			want = want < SHMKIT__SPIN_FLOOR_NS ? SHMKIT__SPIN_FLOOR_NS
			       : want > SHMKIT__SPIN_CEIL_NS ? SHMKIT__SPIN_CEIL_NS
							      : want;
			CHECK_EQ(spin, want);
			if (kind)
				shmkit_topic_close(sub);
			else
				shmkit_chan_close(c);
			_exit(T_PASS);
		}
		close(ready[1]);
		char x;
		CHECK_EQ(read(ready[0], &x, 1), 1);
		close(ready[0]);
		/* Gaps far longer than any spin budget: every message finds the child
		 * asleep, and its arrival is a futex wake. */
		for (int i = 0; i < 20; i++) {
			usleep(5000);
			CHECK_OK(kind ? shmkit_topic_publish(pub, "ping", 4, SHMKIT_FOREVER)
				      : shmkit_chan_send(p, "ping", 4, SHMKIT_FOREVER));
		}
		CHECK_EQ(t_wait(pid), T_PASS);
		if (kind)
			shmkit_topic_close(pub);
		else
			shmkit_chan_close(p);
		CHECK_OK(shmkit_seg_unlink(name, 0));
	}
}

static void test_threads_blob(void)
{
	const char *name = t_name("tblob");
	struct tblob t = {blob_ok(name, sizeof(int), CREATE), (SANITIZED ? 300 : 2000) * scale()};
	int fd = shmkit_blob_fd(t.b);
	CHECK(fd >= 0);
	pthread_t w, r1, r2;
	CHECK(pthread_create(&r1, NULL, tblob_waiter, &t) == 0);
	CHECK(pthread_create(&r2, NULL, tblob_waiter, &t) == 0);
	CHECK(pthread_create(&w, NULL, tblob_writer, &t) == 0);
	int last = 0, reads = 0;
	while (last < t.versions) {
		if (readable(fd, 10)) {
			CHECK_EQ(shmkit_blob_read(t.b, &last, sizeof last, NULL), sizeof last);
			reads++;
		} else if (shmkit_blob_version(t.b) == t.versions) {
			break; /* a waiter read the last version: quiet, rightly */
		}
	}
	CHECK(pthread_join(w, NULL) == 0);
	CHECK(pthread_join(r1, NULL) == 0);
	CHECK(pthread_join(r2, NULL) == 0);
	CHECK(reads > 0);
	CHECK_EQ(shmkit_blob_read(t.b, &last, sizeof last, NULL), sizeof last);
	CHECK_EQ(last, t.versions);
	CHECK(!readable(fd, 0));
	CHECK_OK(shmkit_blob_write(t.b, &last, sizeof last));
	CHECK(readable(fd, 0));
	shmkit_blob_close(t.b);
}

/* ---- the producer of tests/asyncio_chan.py ----
 * Message i: u64 i, u32 length of the whole message, filler bytes, then the CRC-32
 * (zlib's) of everything before it, little-endian. */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static int produce(const char *name, long count)
{
	shmkit_chan *p = NULL;
	int r = -ENOENT;
	/* The consumer creates the channel; it may not be there quite yet. */
	for (int i = 0; i < 200 && (r = shmkit_chan_open(name, P, 0, 0, 0, &p)) == -ENOENT; i++)
		t_nap_ms(10);
	if (r < 0) {
		fprintf(stderr, "produce: shmkit_chan_open(%s): %s\n", name, shmkit_strerror(r));
		return T_FAIL;
	}
	unsigned char m[2048];
	uint64_t s = 0xa5c10;
	for (long i = 0; i < count; i++) {
		uint64_t x = t_rand(&s);
		uint32_t len = 16 + (uint32_t)(x % (sizeof m - 16));
		uint64_t seq = (uint64_t)i;
		memcpy(m, &seq, 8);
		memcpy(m + 8, &len, 4);
		for (uint32_t j = 12; j < len - 4; j++)
			m[j] = (unsigned char)(t_mix64(seq + j) >> 24);
		uint32_t crc = crc32_of(m, len - 4);
		memcpy(m + len - 4, &crc, 4);
		r = shmkit_chan_send(p, m, len, 10 * SHMKIT_SEC);
		if (r < 0) {
			fprintf(stderr, "produce: send %ld: %s\n", i, shmkit_strerror(r));
			return T_FAIL;
		}
		/* Now and then a pause, so that the consumer runs dry and polls. */
		if (x >> 58 == 0)
			t_nap_ms(1);
	}
	shmkit_chan_close(p);
	return T_PASS;
}

/* Runs the tests whose names contain argv[1] (all without one). */
static const char *only;
#define RUN(fn)                                                                                    \
	do {                                                                                       \
		if (!only || strstr(#fn, only))                                                    \
			T_RUN(fn());                                                               \
	} while (0)

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--produce"))
		return produce(argv[2], atol(argv[3]));
	only = argc > 1 ? argv[1] : NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN(test_spin_measured); /* first: this process has never slept yet */
	RUN(test_fd_queued);
	RUN(test_fd_level);
	RUN(test_fd_one_per_wakeup);
	RUN(test_fd_conditions);
	RUN(test_fd_late_producer);
	RUN(test_producer_fd);
	RUN(test_blob_wait);
	RUN(test_blob_fd);
	RUN(test_blob_fd_table);
	RUN(test_threads_chan);
	RUN(test_threads_blob);
	return T_PASS;
}
