/* Topics, the API row by row: roles and create-or-open, capacity and option checks,
 * the -EINVAL and -EMSGSIZE rows, end-of-stream and a killed last publisher, history
 * for late joiners, batch publish, loan/commit, peek/release, timeouts, counters, the
 * subscriber list, slot limits, a deleted segment, the subscriber's descriptor
 * (level-triggered), the System V backend, and another user refused. */
#include <sys/epoll.h>

#include "test_topic_common.h"

static unsigned char buf[1 << 20];
static unsigned char out[1 << 20];

/* Publish message @id (length from tp_len()) or fail. */
static void pub_id(shmkit_topic *p, uint64_t id, size_t max)
{
	size_t len = tp_fill(buf, id, max);
	CHECK_OK(shmkit_topic_publish(p, buf, len, 0));
}

/* Receive (timeout @to) and expect message @id intact. */
static void recv_id(shmkit_topic *s, uint64_t id, size_t max, int64_t to)
{
	ssize_t r = shmkit_topic_receive(s, out, sizeof out, to);
	if (r < 0) {
		fprintf(stderr, "receive of %#" PRIx64 ": %s\n", id, shmkit_strerror((int)r));
		exit(T_FAIL);
	}
	CHECK_EQ(tp_check(out, (size_t)r, max), id);
}

static void test_roles(void)
{
	const char *n = t_name("roles");
	shmkit_topic *p, *s, *o, *x = (shmkit_topic *)&x;

	/* Nothing there yet: opening without CREATE fails, *out NULL. */
	CHECK_EQ(shmkit_topic_open(n, TP_SUB, 0, 0, 0, &x), -ENOENT);
	CHECK(x == NULL);
	p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	CHECK_EQ(shmkit_seg_created(shmkit_topic_seg(p)), 1);
	/* Exclusive creation of an existing topic. */
	x = (shmkit_topic *)&x;
	CHECK_EQ(shmkit_topic_open(n, TP_PUB, 4096, 0, TP_CREATE, &x), -EEXIST);
	CHECK(x == NULL);
	/* Create-or-open finds it: no creation. */
	s = tp_open_ok(n, TP_SUB, 0, SHMKIT_SEG_CREATE);
	CHECK_EQ(shmkit_seg_created(shmkit_topic_seg(s)), 0);
	o = tp_open_ok(n, TP_OBS, 0, 0);
	struct shmkit_topic_stats st = tp_stats(o);
	CHECK_EQ(st.publishers, 1);
	CHECK_EQ(st.subscribers, 1);
	CHECK_EQ(st.received, 0);
	shmkit_topic *p2 = tp_open_ok(n, TP_PUB, 0, 0);
	CHECK_EQ(tp_stats(o).publishers, 2);
	CHECK_OK(shmkit_topic_close(p2));
	CHECK_EQ(tp_stats(o).publishers, 1);
	CHECK_OK(shmkit_topic_close(s));
	CHECK_EQ(tp_stats(o).subscribers, 0);

	/* Bad arguments to open. */
	CHECK_EQ(shmkit_topic_open(n, 3, 0, 0, 0, &x), -EINVAL);
	CHECK(x == NULL);
	CHECK_EQ(shmkit_topic_open(n, 99, 0, 0, 0, &x), -EINVAL);
	CHECK_EQ(shmkit_topic_open(NULL, TP_SUB, 0, 0, 0, &x), -EINVAL);
	CHECK_EQ(shmkit_topic_open(n, TP_SUB, 0, 0, 0, NULL), -EINVAL);
	CHECK_EQ(shmkit_topic_open(n, TP_SUB, 0, 0, 1u << 20, &x), -EINVAL);
	CHECK_EQ(shmkit_topic_open(n, TP_SUB, 0, 0, 1u << 31, &x), -EINVAL);
	CHECK_EQ(shmkit_topic_open_opts(n, TP_SUB, NULL, NULL), -EINVAL);

	/* A segment of another kind is not a topic. */
	const char *cn = t_name("roles-chan");
	shmkit_chan *ch = t_chan_open_ok(cn, SHMKIT_CHAN_PRODUCER, 4096, TP_CREATE);
	CHECK_EQ(shmkit_topic_open(cn, TP_SUB, 0, 0, 0, &x), -EPROTO);
	CHECK(x == NULL);
	CHECK_OK(shmkit_chan_close(ch));

	CHECK_EQ(shmkit_topic_close(NULL), 0);
	CHECK_OK(shmkit_topic_close(o));
	CHECK_OK(shmkit_topic_close(p));
}

static void test_capacity(void)
{
	shmkit_topic *t, *x;
	struct shmkit_topic_stats st;

	/* Rounded up to a power of two, the largest message a quarter of it. */
	t = tp_open_ok(t_name("cap1"), TP_PUB, 5000, TP_CREATE);
	st = tp_stats(t);
	CHECK_EQ(st.capacity, 8192);
	CHECK_EQ(st.max_msg, 2048);
	CHECK_EQ(st.reliable, 0);
	CHECK_EQ(st.max_subscribers, 1024);
	CHECK_EQ(st.max_publishers, 64);
	/* Opening: 0 accepts any capacity, the real one matches, another does not. */
	x = tp_open_ok(t_name("cap1"), TP_SUB, 0, 0);
	CHECK_OK(shmkit_topic_close(x));
	x = tp_open_ok(t_name("cap1"), TP_SUB, 8192, 0);
	CHECK_OK(shmkit_topic_close(x));
	CHECK_EQ(shmkit_topic_open(t_name("cap1"), TP_SUB, 16384, 0, 0, &x), -EINVAL);
	/* RELIABLE when opening is ignored: the topic stays lossy. */
	x = tp_open_ok(t_name("cap1"), TP_SUB, 0, SHMKIT_TOPIC_RELIABLE);
	CHECK_EQ(tp_stats(x).reliable, 0);
	CHECK_OK(shmkit_topic_close(x));
	CHECK_OK(shmkit_topic_close(t));

	/* 0 is 1 MiB; small ones are 4 KiB. */
	t = tp_open_ok(t_name("cap2"), TP_PUB, 0, TP_CREATE);
	CHECK_EQ(tp_stats(t).capacity, 1 << 20);
	CHECK_EQ(tp_stats(t).max_msg, 1 << 18);
	CHECK_OK(shmkit_topic_close(t));
	t = tp_open_ok(t_name("cap3"), TP_PUB, 1, TP_CREATE);
	CHECK_EQ(tp_stats(t).capacity, 4096);
	CHECK_EQ(tp_stats(t).max_msg, 1024);
	CHECK_OK(shmkit_topic_close(t));
	/* More than 1 GiB is refused, and nothing is left behind. */
	CHECK_EQ(shmkit_topic_open(t_name("cap4"), TP_PUB, ((size_t)1 << 30) + 1, 0, TP_CREATE, &x),
		 -EINVAL);
	CHECK(x == NULL);
	CHECK_EQ(shmkit_topic_open(t_name("cap4"), TP_SUB, 0, 0, 0, &x), -ENOENT);

	/* Options: limits, mode, reserved words. */
	struct shmkit_topic_opts o;
	memset(&o, 0, sizeof o);
	o.capacity = 4096;
	o.flags = TP_CREATE | SHMKIT_TOPIC_RELIABLE;
	o.max_subscribers = 7;
	o.max_publishers = 3;
	t = tp_open_opts_ok(t_name("opts1"), TP_PUB, &o);
	st = tp_stats(t);
	CHECK_EQ(st.reliable, 1);
	CHECK_EQ(st.max_subscribers, 7);
	CHECK_EQ(st.max_publishers, 3);
	CHECK_EQ(st.capacity, 4096);
	CHECK_OK(shmkit_topic_close(t));
	/* Opening with opts of other limits: the topic's hold. */
	memset(&o, 0, sizeof o);
	t = tp_open_opts_ok(t_name("opts1"), TP_SUB, &o);
	CHECK_EQ(tp_stats(t).max_subscribers, 7);
	CHECK_EQ(tp_stats(t).reliable, 1);
	CHECK_OK(shmkit_topic_close(t));

	const char *bn = t_name("opts-bad");
	memset(&o, 0, sizeof o);
	o.flags = TP_CREATE;
	o.reserved[2] = 1;
	CHECK_EQ(shmkit_topic_open_opts(bn, TP_PUB, &o, &x), -EINVAL);
	o.reserved[2] = 0;
	o.max_subscribers = 1048577;
	CHECK_EQ(shmkit_topic_open_opts(bn, TP_PUB, &o, &x), -EINVAL);
	o.max_subscribers = 0;
	o.max_publishers = 4097;
	CHECK_EQ(shmkit_topic_open_opts(bn, TP_PUB, &o, &x), -EINVAL);
	o.max_publishers = 0;
	o.capacity = ((size_t)1 << 30) + 1;
	CHECK_EQ(shmkit_topic_open_opts(bn, TP_PUB, &o, &x), -EINVAL);
	o.capacity = 0;
	o.flags = TP_CREATE | (1u << 22);
	CHECK_EQ(shmkit_topic_open_opts(bn, TP_PUB, &o, &x), -EINVAL);
	CHECK(x == NULL);
	CHECK_EQ(shmkit_topic_open(bn, TP_SUB, 0, 0, 0, &x), -ENOENT);
	/* The largest limits are accepted. */
	o.flags = TP_CREATE;
	o.max_subscribers = 1048576;
	o.max_publishers = 4096;
	t = tp_open_opts_ok(bn, TP_PUB, &o);
	CHECK_EQ(tp_stats(t).max_subscribers, 1048576);
	CHECK_EQ(tp_stats(t).max_publishers, 4096);
	CHECK_OK(shmkit_topic_close(t));
	/* NULL opts: every default, so no CREATE: nothing to open. */
	x = NULL;
	CHECK_EQ(shmkit_topic_open_opts(t_name("opts-null"), TP_PUB, NULL, &x), -ENOENT);
	CHECK(x == NULL);
}

static void test_einval(void)
{
	const char *n = t_name("inval");
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	shmkit_topic *o = tp_open_ok(n, TP_OBS, 0, 0);
	const void *cb;
	size_t len;
	void *lb;
	struct iovec iov[2] = {{buf, 10}, {buf, 0}};

	/* Wrong role, NULL handle, NULL buffer, zero length. */
	CHECK_EQ(shmkit_topic_publish(s, buf, 10, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_publish(o, buf, 10, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_publish(NULL, buf, 10, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_publish(p, NULL, 10, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_publish(p, buf, 0, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_receive(p, out, sizeof out, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_receive(o, out, sizeof out, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_receive(NULL, out, sizeof out, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_peek(p, &cb, &len, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_peek(NULL, &cb, &len, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_peek(s, NULL, &len, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_peek(s, &cb, NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_release(s), -EINVAL); /* nothing peeked */
	CHECK_EQ(shmkit_topic_release(p), -EINVAL);
	CHECK_EQ(shmkit_topic_release(NULL), -EINVAL);
	CHECK_EQ(shmkit_topic_loan(s, 10, 0, &lb), -EINVAL);
	CHECK_EQ(shmkit_topic_loan(p, 0, 0, &lb), -EINVAL);
	CHECK_EQ(shmkit_topic_loan(p, 10, 0, NULL), -EINVAL);
	CHECK_EQ(shmkit_topic_loan(NULL, 10, 0, &lb), -EINVAL);
	CHECK_EQ(shmkit_topic_commit(p, 10), -EINVAL); /* no loan */
	CHECK_EQ(shmkit_topic_commit(s, 10), -EINVAL);
	CHECK_EQ(shmkit_topic_commit(NULL, 10), -EINVAL);
	CHECK_EQ(shmkit_topic_publishv(s, iov, 1, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_publishv(p, NULL, 1, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_publishv(p, iov, -1, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_publishv(NULL, iov, 1, 0), -EINVAL);
	/* One bad length in a batch: nothing of it is published. */
	CHECK_EQ(shmkit_topic_publishv(p, iov, 2, 0), -EINVAL);
	iov[1].iov_len = 1025;
	CHECK_EQ(shmkit_topic_publishv(p, iov, 2, 0), -EMSGSIZE);
	iov[1].iov_base = NULL;
	iov[1].iov_len = 5;
	CHECK_EQ(shmkit_topic_publishv(p, iov, 2, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	CHECK_EQ(tp_stats(o).published, 0);
	CHECK_EQ(shmkit_topic_fd(p), -EINVAL);
	CHECK_EQ(shmkit_topic_fd(o), -EINVAL);
	CHECK_EQ(shmkit_topic_fd(NULL), -EINVAL);
	CHECK_EQ(shmkit_topic_set_spin(NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_set_spin(s, SHMKIT_SEC + 1), 0); /* clamped, as the channel does */
	CHECK_EQ(shmkit_topic_set_spin(s, SHMKIT_SEC), 0);
	CHECK_EQ(shmkit_topic_set_spin(s, -5), 0);
	CHECK_EQ(shmkit_topic_set_spin(p, 1000), 0);
	struct shmkit_topic_stats st;
	CHECK_EQ(shmkit_topic_stats(NULL, &st), -EINVAL);
	CHECK_EQ(shmkit_topic_stats(s, NULL), -EINVAL);
	CHECK_EQ(shmkit_topic_subscribers(NULL, NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_subscribers(s, NULL, 3), -EINVAL);
	CHECK(shmkit_topic_seg(NULL) == NULL);
	CHECK(shmkit_topic_seg(s) != NULL);
	CHECK_EQ(shmkit_topic_lost(s), 0);

	/* -EMSGSIZE: one byte past the largest message, and a too small buffer (the
	 * message stays next). */
	CHECK_EQ(shmkit_topic_publish(p, buf, 1025, 0), -EMSGSIZE);
	CHECK_EQ(shmkit_topic_loan(p, 1025, 0, &lb), -EMSGSIZE);
	memset(buf, 0x33, 1024);
	CHECK_OK(shmkit_topic_publish(p, buf, 1024, 0));
	CHECK_OK(shmkit_topic_publish(p, buf, 1, 0));
	CHECK_EQ(shmkit_topic_receive(s, out, 1023, 0), -EMSGSIZE);
	CHECK_EQ(shmkit_topic_receive(s, out, 0, 0), -EMSGSIZE);
	CHECK_EQ(shmkit_topic_receive(s, out, 1024, 0), 1024);
	CHECK_EQ(out[0], 0x33);
	CHECK_EQ(out[1023], 0x33);
	CHECK_EQ(shmkit_topic_receive(s, out, 1, 0), 1);
	CHECK_EQ(shmkit_topic_receive(s, out, 1, 0), -EAGAIN);
	CHECK_EQ(tp_stats(s).lost, 0);

	CHECK_OK(shmkit_topic_close(o));
	CHECK_OK(shmkit_topic_close(s));
	CHECK_OK(shmkit_topic_close(p));
}

/* End-of-stream: 0 once every publisher closed and the subscriber drained, again and
 * again; a new publisher ends it. */
static void test_eos(void)
{
	const char *n = t_name("eos");
	const size_t max = 1024;
	shmkit_topic *p1 = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	shmkit_topic *p2 = tp_open_ok(n, TP_PUB, 0, 0);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	const void *cb;
	size_t len;

	pub_id(p1, TP_ID(1, 0), max);
	pub_id(p2, TP_ID(2, 0), max);
	pub_id(p1, TP_ID(1, 1), max);
	CHECK_OK(shmkit_topic_close(p1));
	recv_id(s, TP_ID(1, 0), max, 0);
	/* One publisher still open: not the end. */
	recv_id(s, TP_ID(2, 0), max, 0);
	recv_id(s, TP_ID(1, 1), max, 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 20 * SHMKIT_MSEC), -ETIMEDOUT);
	pub_id(p2, TP_ID(2, 1), max);
	CHECK_OK(shmkit_topic_close(p2));
	/* Everything committed before the last close is still delivered, then the end. */
	recv_id(s, TP_ID(2, 1), max, 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, -1), 0); /* never blocks at the end */
	CHECK_EQ(shmkit_topic_peek(s, &cb, &len, 0), 0);
	CHECK_EQ(shmkit_topic_release(s), -EINVAL);
	/* A subscriber that joins after an end another subscriber received waits for the
	 * next publisher, as a FIFO's reader waits for a writer (the end is not its). */
	shmkit_topic *s2 = tp_open_ok(n, TP_SUB, 0, 0);
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 0), -EAGAIN);
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 20 * SHMKIT_MSEC), -ETIMEDOUT);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0); /* s's end lasts */
	/* A new publisher: no longer the end. */
	p1 = tp_open_ok(n, TP_PUB, 0, 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	pub_id(p1, TP_ID(3, 0), max);
	recv_id(s, TP_ID(3, 0), max, 0);
	recv_id(s2, TP_ID(3, 0), max, 0);
	CHECK_OK(shmkit_topic_close(p1));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0);
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 0), 0); /* an end after it joined */
	CHECK_OK(shmkit_topic_close(s2));
	CHECK_OK(shmkit_topic_close(s));

	/* An end no subscriber received yet belongs to the first that joins (with the
	 * finished stream's history, from the oldest); once received, later joiners wait
	 * for the next publisher, and get that one's messages and end. */
	n = t_name("eos-late");
	p1 = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	pub_id(p1, TP_ID(4, 0), max);
	CHECK_OK(shmkit_topic_close(p1));
	shmkit_topic *s3 = tp_open_ok(n, TP_SUB, 0, SHMKIT_TOPIC_OLDEST);
	recv_id(s3, TP_ID(4, 0), max, 0);
	CHECK_EQ(shmkit_topic_receive(s3, out, sizeof out, 0), 0);
	CHECK_EQ(shmkit_topic_receive(s3, out, sizeof out, -1), 0);
	shmkit_topic *s4 = tp_open_ok(n, TP_SUB, 0, 0);
	CHECK_EQ(shmkit_topic_receive(s4, out, sizeof out, 0), -EAGAIN);
	p1 = tp_open_ok(n, TP_PUB, 0, 0);
	pub_id(p1, TP_ID(5, 0), max);
	CHECK_OK(shmkit_topic_close(p1));
	recv_id(s4, TP_ID(5, 0), max, 0);
	CHECK_EQ(shmkit_topic_receive(s4, out, sizeof out, 0), 0);
	recv_id(s3, TP_ID(5, 0), max, 0); /* s3 saw that publisher come too */
	CHECK_EQ(shmkit_topic_receive(s3, out, sizeof out, 0), 0);
	/* From the oldest, a subscriber reads a finished stream's history and its end,
	 * whoever received that end before. */
	shmkit_topic *s5 = tp_open_ok(n, TP_SUB, 0, SHMKIT_TOPIC_OLDEST);
	recv_id(s5, TP_ID(4, 0), max, 0);
	recv_id(s5, TP_ID(5, 0), max, 0);
	CHECK_EQ(shmkit_topic_receive(s5, out, sizeof out, 0), 0);
	CHECK_OK(shmkit_topic_close(s5));
	CHECK_OK(shmkit_topic_close(s4));
	CHECK_OK(shmkit_topic_close(s3));
}

struct pipe_sh {
	_Atomic int published;
};

/* -EPIPE: the last publisher was SIGKILLed; what it committed is still delivered. */
static void test_epipe(void)
{
	const char *n = t_name("epipe");
	const size_t max = 1024;
	struct pipe_sh *sh = t_shared(sizeof *sh);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 4096, TP_CREATE);
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		shmkit_topic *p = tp_open_ok(n, TP_PUB, 0, 0);
		pub_id(p, TP_ID(1, 0), max);
		pub_id(p, TP_ID(1, 1), max);
		atomic_store(&sh->published, 1);
		for (;;)
			pause();
	}
	tp_await(&sh->published, 1, 10, "the publisher child");
	CHECK_EQ(kill(pid, SIGKILL), 0);
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	recv_id(s, TP_ID(1, 0), max, 0);
	recv_id(s, TP_ID(1, 1), max, 0);
	int64_t t0 = t_now_ns();
	ssize_t r = shmkit_topic_receive(s, out, sizeof out, 5 * SHMKIT_SEC);
	CHECK_EQ(r, -EPIPE);
	printf("  -EPIPE after %.1f ms\n", (double)(t_now_ns() - t0) / 1e6);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EPIPE);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, SHMKIT_SEC), -EPIPE);
	/* A new publisher: the topic lives on. */
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 0, 0);
	pub_id(p, TP_ID(2, 0), max);
	recv_id(s, TP_ID(2, 0), max, SHMKIT_SEC);
	CHECK_OK(shmkit_topic_close(p));
	/* The dead publisher never closed: end-of-stream or -EPIPE, but an answer, not
	 * a wait. */
	r = shmkit_topic_receive(s, out, sizeof out, 2 * SHMKIT_SEC);
	CHECK(r == 0 || r == -EPIPE);
	printf("  a dead publisher, then one that closed: %s\n", r ? "-EPIPE" : "end-of-stream");
	CHECK_OK(shmkit_topic_close(s));
	munmap(sh, sizeof *sh);
}

/* A subscriber starts with the next message, or with OLDEST with the oldest still
 * retained. */
static void test_oldest(unsigned mode)
{
	const char *n = t_name(mode ? "oldest-rel" : "oldest");
	const size_t max = 2048;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 8192, TP_CREATE | mode);
	for (uint64_t i = 0; i < 3; i++)
		pub_id(p, TP_ID(1, i), max);
	shmkit_topic *next = tp_open_ok(n, TP_SUB, 0, 0);
	shmkit_topic *old = tp_open_ok(n, TP_SUB, 0, SHMKIT_TOPIC_OLDEST);
	CHECK_EQ(shmkit_topic_receive(next, out, sizeof out, 0), -EAGAIN);
	CHECK_EQ(tp_stats(next).lag, 0);
	CHECK_EQ(tp_stats(old).lag, 3);
	for (uint64_t i = 0; i < 3; i++)
		recv_id(old, TP_ID(1, i), max, 0);
	CHECK_EQ(shmkit_topic_receive(old, out, sizeof out, 0), -EAGAIN);
	pub_id(p, TP_ID(1, 3), max);
	recv_id(next, TP_ID(1, 3), max, 0);
	recv_id(old, TP_ID(1, 3), max, 0);
	CHECK_OK(shmkit_topic_close(next));
	CHECK_OK(shmkit_topic_close(old));

	/* After many laps (no subscriber listening): the oldest retained is a recent
	 * message, and from it on every one up to the newest, no loss reported. */
	uint64_t i;
	for (i = 4; i < 500; i++)
		pub_id(p, TP_ID(1, i), max);
	old = tp_open_ok(n, TP_SUB, 0, SHMKIT_TOPIC_OLDEST);
	ssize_t r = shmkit_topic_receive(old, out, sizeof out, 0);
	CHECK(r > 0);
	uint64_t first = tp_check(out, (size_t)r, max);
	CHECK(first != UINT64_MAX && TP_PUB_OF(first) == 1);
	CHECK(TP_SEQ_OF(first) > 4 && TP_SEQ_OF(first) < 500);
	size_t bytes = (size_t)r;
	for (uint64_t k = TP_SEQ_OF(first) + 1; k < 500; k++) {
		recv_id(old, TP_ID(1, k), max, 0);
		bytes += tp_len(TP_ID(1, k), max);
	}
	CHECK(bytes <= 8192);
	CHECK_EQ(shmkit_topic_receive(old, out, sizeof out, 0), -EAGAIN);
	CHECK_EQ(tp_stats(old).lost, 0);
	printf("  %s: oldest retained after 500 messages: #%" PRIu64 "\n", mode ? "reliable" : "lossy",
	       TP_SEQ_OF(first));
	CHECK_OK(shmkit_topic_close(old));
	CHECK_OK(shmkit_topic_close(p));
}

/* publishv: a batch is consecutive in the ring even with other publishers at work. */
static int batch_child(void *arg)
{
	const char *n = arg;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 0, 0);
	static unsigned char b[4][512];
	unsigned me = (unsigned)getpid() & 0xffff;
	for (uint64_t k = 0; k < 300; k++) {
		struct iovec iov[4];
		for (int j = 0; j < 4; j++) {
			uint64_t id = TP_ID(me, k * 4 + (uint64_t)j);
			size_t len = tp_len(id, 512);
			t_msg_fill(b[j], len, id);
			iov[j].iov_base = b[j];
			iov[j].iov_len = len;
		}
		if (shmkit_topic_publishv(p, iov, 4, 10 * SHMKIT_SEC) != 4)
			return T_FAIL;
	}
	shmkit_topic_close(p);
	return T_PASS;
}

static void test_publishv(void)
{
	const char *n = t_name("pubv");
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 16384, TP_CREATE | SHMKIT_TOPIC_RELIABLE);
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 0, 0);
	struct iovec iov[3];
	uint64_t ids[3] = {TP_ID(1, 0), TP_ID(1, 1), TP_ID(1, 2)};
	static unsigned char b[3][4096];
	for (int j = 0; j < 3; j++) {
		iov[j].iov_base = b[j];
		iov[j].iov_len = tp_fill(b[j], ids[j], 4096);
	}
	CHECK_EQ(shmkit_topic_publishv(p, iov, 3, 0), 3);
	CHECK_EQ(shmkit_topic_publishv(p, iov, 0, 0), -EINVAL); /* as the channel */
	for (int j = 0; j < 3; j++)
		recv_id(s, ids[j], 4096, 0);
	CHECK_EQ(tp_stats(p).published, 3);

	/* Reliable, the subscriber not reading: a batch larger than the room publishes
	 * what fits (or nothing, -EAGAIN), never more. */
	struct iovec big[8];
	static unsigned char bb[4096];
	memset(bb, 0x77, sizeof bb);
	for (int j = 0; j < 8; j++) {
		big[j].iov_base = bb;
		big[j].iov_len = 4000;
	}
	int r = shmkit_topic_publishv(p, big, 8, 0);
	CHECK(r == -EAGAIN || (r >= 1 && r < 8));
	int got = 0;
	while (shmkit_topic_receive(s, out, sizeof out, 0) == 4000)
		got++;
	CHECK_EQ(got, r < 0 ? 0 : r);

	/* Two publisher processes publishing batches of 4: each batch arrives whole. */
	pid_t a = t_fork(batch_child, (void *)n), b2 = t_fork(batch_child, (void *)n);
	uint64_t prev = UINT64_MAX;
	int total = 0;
	t_guard(60, "publishv batches");
	while (total < 2400) {
		ssize_t k = shmkit_topic_receive(s, out, sizeof out, 20 * SHMKIT_SEC);
		if (k <= 0) {
			fprintf(stderr, "publishv batches: message %d: %zd\n", total, k);
			exit(T_FAIL);
		}
		uint64_t id = tp_check(out, (size_t)k, 512);
		CHECK(id != UINT64_MAX);
		if (TP_SEQ_OF(id) % 4 != 0)
			CHECK_EQ(id, prev + 1);
		prev = id;
		total++;
	}
	t_guard(0, "");
	CHECK_EQ(t_wait(a), 0);
	CHECK_EQ(t_wait(b2), 0);
	/* p kept the stream open until the children came. */
	CHECK_OK(shmkit_topic_close(p));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0);
	CHECK_OK(shmkit_topic_close(s));
}

static void test_loan(void)
{
	const char *n = t_name("loan");
	const size_t max = 1024;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE | SHMKIT_TOPIC_RELIABLE);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	void *lb = (void *)1;

	/* Loan, write, commit a shorter length. */
	CHECK_OK(shmkit_topic_loan(p, max, 0, &lb));
	CHECK(lb != NULL && ((uintptr_t)lb & 7) == 0);
	size_t len = tp_fill(lb, TP_ID(1, 0), max);
	CHECK(len <= max);
	CHECK_EQ(shmkit_topic_commit(p, len), 0);
	CHECK_EQ(shmkit_topic_commit(p, len), -EINVAL); /* committed already */
	recv_id(s, TP_ID(1, 0), max, 0);
	/* Bad final lengths. */
	CHECK_OK(shmkit_topic_loan(p, 100, 0, &lb));
	CHECK_EQ(shmkit_topic_commit(p, 0), -EINVAL);
	CHECK_EQ(shmkit_topic_commit(p, 101), -EINVAL);
	/* A second loan withdraws the first: nobody receives it. */
	CHECK_OK(shmkit_topic_loan(p, 200, 0, &lb));
	memset(lb, 0x44, 200);
	CHECK_OK(shmkit_topic_loan(p, 300, 0, &lb));
	memset(lb, 0x55, 300);
	CHECK_OK(shmkit_topic_commit(p, 300));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 300);
	CHECK_EQ(out[0], 0x55);
	CHECK_EQ(out[299], 0x55);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	/* A publish withdraws a pending loan. */
	CHECK_OK(shmkit_topic_loan(p, 64, 0, &lb));
	memset(lb, 0x66, 64);
	pub_id(p, TP_ID(1, 1), max);
	recv_id(s, TP_ID(1, 1), max, 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	CHECK_EQ(shmkit_topic_commit(p, 64), -EINVAL);
	/* Loans over many laps in a reliable topic: withdrawn loans never block. */
	for (uint64_t i = 2; i < 200; i++) {
		CHECK_OK(shmkit_topic_loan(p, max, SHMKIT_SEC, &lb));
		if (i % 3 == 0)
			continue; /* withdrawn by the next loan */
		len = tp_fill(lb, TP_ID(1, i), max);
		CHECK_OK(shmkit_topic_commit(p, len));
		recv_id(s, TP_ID(1, i), max, 0);
	}
	/* Close withdraws a pending loan. */
	CHECK_OK(shmkit_topic_loan(p, 64, 0, &lb));
	memset(lb, 0x11, 64);
	CHECK_OK(shmkit_topic_close(p));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0);
	CHECK_OK(shmkit_topic_close(s));
}

static void test_peek(void)
{
	const char *n = t_name("peek");
	const size_t max = 1024;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	const void *cb = (const void *)1;
	size_t len = 99;

	CHECK_EQ(shmkit_topic_peek(s, &cb, &len, 0), -EAGAIN);
	for (uint64_t i = 0; i < 300; i++) {
		pub_id(p, TP_ID(1, i), max);
		ssize_t r = shmkit_topic_peek(s, &cb, &len, 0);
		CHECK_EQ(r, tp_len(TP_ID(1, i), max));
		CHECK_EQ(len, (size_t)r);
		CHECK(((uintptr_t)cb & 7) == 0);
		CHECK_EQ(tp_check(cb, len, max), TP_ID(1, i));
		CHECK_EQ(shmkit_topic_release(s), 0);
		CHECK_EQ(shmkit_topic_release(s), -EINVAL);
	}
	/* Peek and receive mix. */
	pub_id(p, TP_ID(2, 0), max);
	pub_id(p, TP_ID(2, 1), max);
	CHECK(shmkit_topic_peek(s, &cb, &len, 0) > 0);
	CHECK_EQ(tp_check(cb, len, max), TP_ID(2, 0));
	CHECK_EQ(shmkit_topic_release(s), 0);
	recv_id(s, TP_ID(2, 1), max, 0);
	CHECK_EQ(tp_stats(s).received, 302);
	CHECK_EQ(tp_stats(s).lost, 0);
	CHECK_OK(shmkit_topic_close(p));
	CHECK_EQ(shmkit_topic_peek(s, &cb, &len, 0), 0);
	CHECK_OK(shmkit_topic_close(s));
}

static void test_timeouts(void)
{
	const char *n = t_name("timeouts");
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE | SHMKIT_TOPIC_RELIABLE);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	const void *cb;
	size_t len;
	void *lb;
	int64_t t0;

	t0 = t_now_ns();
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	CHECK_EQ(shmkit_topic_peek(s, &cb, &len, 0), -EAGAIN);
	CHECK(t_now_ns() - t0 < SHMKIT_SEC);
	t0 = t_now_ns();
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 60 * SHMKIT_MSEC), -ETIMEDOUT);
	int64_t el = t_now_ns() - t0;
	CHECK(el >= 60 * SHMKIT_MSEC && el < 5 * SHMKIT_SEC);
	t0 = t_now_ns();
	CHECK_EQ(shmkit_topic_peek(s, &cb, &len, 30 * SHMKIT_MSEC), -ETIMEDOUT);
	CHECK(t_now_ns() - t0 >= 30 * SHMKIT_MSEC);

	/* Reliable: fill the ring while the subscriber does not read. */
	memset(buf, 0x21, 1024);
	int k = 0;
	while (shmkit_topic_publish(p, buf, 1000, 0) == 0)
		k++;
	CHECK(k >= 2 && k <= 4);
	CHECK_EQ(shmkit_topic_publish(p, buf, 1000, 0), -EAGAIN);
	CHECK_EQ(shmkit_topic_loan(p, 1000, 0, &lb), -EAGAIN);
	CHECK(lb == NULL);
	t0 = t_now_ns();
	CHECK_EQ(shmkit_topic_publish(p, buf, 1000, 50 * SHMKIT_MSEC), -ETIMEDOUT);
	el = t_now_ns() - t0;
	CHECK(el >= 50 * SHMKIT_MSEC && el < 5 * SHMKIT_SEC);
	t0 = t_now_ns();
	CHECK_EQ(shmkit_topic_loan(p, 1000, 20 * SHMKIT_MSEC, &lb), -ETIMEDOUT);
	CHECK(t_now_ns() - t0 >= 20 * SHMKIT_MSEC);
	/* A publisher asleep on the full ring goes on when the subscriber holding it
	 * closes (another subscriber opened meanwhile starts at the tail: no holder). */
	pid_t c = t_fork_raw();
	if (c == 0) {
		shmkit_topic *p2 = tp_open_ok(n, TP_PUB, 0, 0);
		int r2 = shmkit_topic_publish(p2, buf, 1000, 10 * SHMKIT_SEC);
		_exit(r2 == 0 ? T_PASS : T_FAIL);
	}
	t_nap_ms(100);
	shmkit_topic *s2 = tp_open_ok(n, TP_SUB, 0, 0);
	CHECK_OK(shmkit_topic_close(s));
	t0 = t_now_ns();
	CHECK_EQ(t_wait(c), 0);
	printf("  a publisher resumed %.1f ms after the holding subscriber closed\n",
	       (double)(t_now_ns() - t0) / 1e6);
	s = s2;
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 1000);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	/* Fill again, now held by s2. */
	while (shmkit_topic_publish(p, buf, 1000, 0) == 0)
		;
	/* Reading makes room (one message, or two when the next one needs a wrap pad). */
	int read = 0;
	do {
		CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 1000);
		read++;
	} while (shmkit_topic_publish(p, buf, 1000, 0) == -EAGAIN);
	CHECK(read <= 2);
	while (shmkit_topic_receive(s, out, sizeof out, 0) == 1000)
		;
	CHECK_OK(shmkit_topic_close(s));
	CHECK_OK(shmkit_topic_close(p));
}

/* A blocked receive is woken by a publish from another process. */
static int late_pub_child(void *arg)
{
	const char *n = arg;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 0, 0);
	t_nap_ms(100);
	pub_id(p, TP_ID(7, 0), 1024);
	t_nap_ms(100);
	shmkit_topic_close(p);
	return T_PASS;
}

static void test_wakeup(void)
{
	const char *n = t_name("wakeup");
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 4096, TP_CREATE);
	/* The publisher opens before the wait so that it is not end-of-stream. */
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 0, 0);
	pid_t c = t_fork(late_pub_child, (void *)n);
	CHECK_OK(shmkit_topic_set_spin(s, 0));
	int64_t t0 = t_now_ns();
	recv_id(s, TP_ID(7, 0), 1024, 10 * SHMKIT_SEC);
	CHECK(t_now_ns() - t0 < 5 * SHMKIT_SEC);
	CHECK_EQ(t_wait(c), 0);
	CHECK_OK(shmkit_topic_close(p));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 5 * SHMKIT_SEC), 0);
	CHECK_OK(shmkit_topic_close(s));
}

static void test_stats(void)
{
	const char *n = t_name("stats");
	const size_t max = 1024;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	uint64_t seq0 = tp_stats(p).next_seq;
	uint64_t bytes = 0;

	for (uint64_t i = 0; i < 5; i++) {
		pub_id(p, TP_ID(1, i), max);
		bytes += tp_len(TP_ID(1, i), max);
	}
	struct shmkit_topic_stats st = tp_stats(s);
	CHECK_EQ(st.published, 5);
	CHECK_EQ(st.bytes_published, bytes);
	CHECK_EQ(st.next_seq - seq0, 5);
	CHECK_EQ(st.received, 0);
	CHECK_EQ(st.lag, 5);
	CHECK_EQ(st.lost, 0);
	CHECK_EQ(st.abandoned, 0);
	CHECK_EQ(st.evicted, 0);
	/* A publisher handle's own counters are 0. */
	st = tp_stats(p);
	CHECK_EQ(st.received, 0);
	CHECK_EQ(st.lag, 0);
	recv_id(s, TP_ID(1, 0), max, 0);
	recv_id(s, TP_ID(1, 1), max, 0);
	st = tp_stats(s);
	CHECK_EQ(st.received, 2);
	CHECK_EQ(st.lag, 3);

	/* Lossy: publish 40 messages of 1000 bytes (the ring holds at most 4) without
	 * reading: -EOVERFLOW once, with the exact count, then the oldest intact. */
	memset(buf, 0, sizeof buf);
	for (uint64_t i = 0; i < 40; i++) {
		memcpy(buf, &i, 8);
		CHECK_OK(shmkit_topic_publish(p, buf, 1000, 0));
	}
	CHECK_EQ(tp_stats(s).lag, 43);
	ssize_t r = shmkit_topic_receive(s, out, sizeof out, 0);
	CHECK_EQ(r, -EOVERFLOW);
	uint64_t lost = shmkit_topic_lost(s);
	CHECK(lost >= 3 + 36 && lost <= 3 + 39);
	CHECK_EQ(tp_stats(s).lost, lost);
	r = shmkit_topic_receive(s, out, sizeof out, 0);
	CHECK_EQ(r, 1000);
	uint64_t first;
	memcpy(&first, out, 8);
	/* Lost: the 3 old ones and every one of the 40 before the first received. */
	CHECK_EQ(lost, 3 + first);
	CHECK_EQ(shmkit_topic_lost(s), lost); /* the last report's count stays */
	uint64_t got = 1;
	while ((r = shmkit_topic_receive(s, out, sizeof out, 0)) == 1000) {
		uint64_t v;
		memcpy(&v, out, 8);
		CHECK_EQ(v, first + got);
		got++;
	}
	CHECK_EQ(r, -EAGAIN);
	CHECK_EQ(first + got, 40);
	st = tp_stats(s);
	CHECK_EQ(st.received, 2 + got);
	CHECK_EQ(st.lost, lost);
	CHECK_EQ(st.lag, 0);
	CHECK_EQ(st.published, 45);

	/* The subscriber list: this process's subscribers, alive; then a killed one. */
	shmkit_topic *s2 = tp_open_ok(n, TP_SUB, 0, 0);
	struct shmkit_topic_sub_info info[8];
	CHECK_EQ(shmkit_topic_subscribers(p, NULL, 0), 2);
	memset(info, 0, sizeof info);
	CHECK_EQ(shmkit_topic_subscribers(p, info, 8), 2);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(info[i].pid, getpid());
		CHECK_EQ(info[i].alive, 1);
	}
	CHECK_EQ(info[0].lost + info[1].lost <= lost, 1);
	CHECK_EQ(shmkit_topic_subscribers(p, info, 1), 2);
	CHECK_OK(shmkit_topic_close(s2));
	CHECK_EQ(shmkit_topic_subscribers(p, info, 8), 1);

	struct pipe_sh *sh = t_shared(sizeof *sh);
	pid_t c = t_fork_raw();
	if (c == 0) {
		shmkit_topic *cs = tp_open_ok(n, TP_SUB, 0, 0);
		(void)cs;
		atomic_store(&sh->published, 1);
		for (;;)
			pause();
	}
	tp_await(&sh->published, 1, 10, "subscriber child");
	CHECK_EQ(shmkit_topic_subscribers(p, info, 8), 2);
	int found = 0;
	for (int i = 0; i < 2; i++)
		if (info[i].pid == c) {
			CHECK_EQ(info[i].alive, 1);
			found++;
		}
	CHECK_EQ(found, 1);
	CHECK_EQ(kill(c, SIGKILL), 0);
	CHECK_EQ(t_wait(c), 128 + SIGKILL);
	int k = shmkit_topic_subscribers(p, info, 8);
	CHECK(k == 1 || k == 2); /* lossy topics may keep a dead subscriber listed */
	for (int i = 0; i < k; i++)
		if (info[i].pid == c)
			CHECK_EQ(info[i].alive, 0);
	munmap(sh, sizeof *sh);
	CHECK_OK(shmkit_topic_close(s));
	CHECK_OK(shmkit_topic_close(p));
}

/* Slot limits: publishers always; subscribers only in reliable mode (lossy ones
 * subscribe unlisted). */
static void test_limits(void)
{
	struct shmkit_topic_opts o;
	shmkit_topic *x;
	memset(&o, 0, sizeof o);
	o.capacity = 4096;
	o.flags = TP_CREATE;
	o.max_subscribers = 1;
	o.max_publishers = 1;

	const char *n = t_name("lim-lossy");
	shmkit_topic *p = tp_open_opts_ok(n, TP_PUB, &o);
	CHECK_EQ(shmkit_topic_open(n, TP_PUB, 0, 0, 0, &x), -EUSERS);
	CHECK(x == NULL);
	shmkit_topic *s1 = tp_open_ok(n, TP_SUB, 0, 0);
	shmkit_topic *s2 = tp_open_ok(n, TP_SUB, 0, 0); /* unlisted */
	CHECK(shmkit_topic_fd(s1) >= 0);
	CHECK_EQ(shmkit_topic_fd(s2), -EUSERS);
	CHECK_EQ(tp_stats(p).subscribers, 1);
	CHECK_EQ(shmkit_topic_subscribers(p, NULL, 0), 1);
	pub_id(p, TP_ID(1, 0), 1024);
	recv_id(s1, TP_ID(1, 0), 1024, 0);
	recv_id(s2, TP_ID(1, 0), 1024, 0);
	CHECK_EQ(tp_stats(s2).received, 1);
	CHECK_OK(shmkit_topic_close(p));
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 0), 0);
	/* The slot is free again once its holder closed. */
	p = tp_open_ok(n, TP_PUB, 0, 0);
	CHECK_OK(shmkit_topic_close(p));
	CHECK_OK(shmkit_topic_close(s2));
	CHECK_OK(shmkit_topic_close(s1));

	n = t_name("lim-rel");
	o.flags = TP_CREATE | SHMKIT_TOPIC_RELIABLE;
	o.max_subscribers = 2;
	p = tp_open_opts_ok(n, TP_PUB, &o);
	s1 = tp_open_ok(n, TP_SUB, 0, 0);
	s2 = tp_open_ok(n, TP_SUB, 0, 0);
	CHECK_EQ(shmkit_topic_open(n, TP_SUB, 0, 0, 0, &x), -EUSERS);
	CHECK_OK(shmkit_topic_close(s1));
	s1 = tp_open_ok(n, TP_SUB, 0, 0);
	CHECK_OK(shmkit_topic_close(s1));
	CHECK_OK(shmkit_topic_close(s2));
	CHECK_OK(shmkit_topic_close(p));
}

/* A deleted topic: -EIDRM for every handle. */
static void test_deleted(void)
{
	const char *n = t_name("deleted");
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	int fd = shmkit_topic_fd(s);
	CHECK(fd >= 0);
	CHECK(!tp_readable(fd, 0));
	CHECK_OK(shmkit_seg_delete(shmkit_topic_seg(p)));
	CHECK_EQ(shmkit_topic_publish(p, buf, 10, 0), -EIDRM);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EIDRM);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, SHMKIT_SEC), -EIDRM);
	CHECK(tp_readable(fd, 2000));
	CHECK_OK(shmkit_topic_close(s));
	CHECK_OK(shmkit_topic_close(p));
}

/* The descriptor is level-triggered: readable at once for messages queued before it
 * was made, readable until drained, quiet when empty, readable at end-of-stream. */
static void test_fd(void)
{
	const char *n = t_name("fd");
	const size_t max = 1024;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, 0);
	pub_id(p, TP_ID(1, 0), max);
	pub_id(p, TP_ID(1, 1), max);
	int fd = shmkit_topic_fd(s);
	CHECK(fd >= 0);
	CHECK_EQ(shmkit_topic_fd(s), fd); /* the same descriptor each time */
	CHECK(tp_readable(fd, 0));
	/* epoll, registered before any receive: readable at once too. */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	struct epoll_event ev = {.events = EPOLLIN}, got;
	CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	CHECK_EQ(epoll_wait(ep, &got, 1, 0), 1);
	recv_id(s, TP_ID(1, 0), max, 0);
	CHECK(tp_readable(fd, 0)); /* one more to go */
	CHECK_EQ(epoll_wait(ep, &got, 1, 0), 1);
	recv_id(s, TP_ID(1, 1), max, 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	CHECK(!tp_readable(fd, 0));
	CHECK_EQ(epoll_wait(ep, &got, 1, 0), 0);
	/* A publish makes it readable, from this process and from another. */
	pub_id(p, TP_ID(1, 2), max);
	CHECK(tp_readable(fd, 2000));
	recv_id(s, TP_ID(1, 2), max, 0);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	CHECK(!tp_readable(fd, 0));
	pid_t c = t_fork(late_pub_child, (void *)n);
	CHECK(tp_readable(fd, 5000));
	recv_id(s, TP_ID(7, 0), max, 0);
	CHECK_EQ(t_wait(c), 0);
	/* A loss to report is something to do. */
	for (uint64_t i = 0; i < 20; i++)
		CHECK_OK(shmkit_topic_publish(p, buf, 1000, 0));
	CHECK(tp_readable(fd, 2000));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EOVERFLOW);
	while (shmkit_topic_receive(s, out, sizeof out, 0) > 0)
		;
	CHECK(!tp_readable(fd, 0));
	/* End-of-stream: readable, and stays readable (a lasting condition). */
	CHECK_OK(shmkit_topic_close(p));
	CHECK(tp_readable(fd, 2000));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0);
	CHECK(tp_readable(fd, 0));
	CHECK_EQ(epoll_wait(ep, &got, 1, 0), 1);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), 0);
	CHECK(tp_readable(fd, 0));
	close(ep);

	/* An end another subscriber already received is not a later subscriber's: its
	 * descriptor stays quiet until the next publisher publishes, then reports that
	 * one's messages and end. */
	shmkit_topic *s2 = tp_open_ok(n, TP_SUB, 0, 0);
	int fd2 = shmkit_topic_fd(s2);
	CHECK(fd2 >= 0);
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 0), -EAGAIN);
	CHECK(!tp_readable(fd2, 0));
	p = tp_open_ok(n, TP_PUB, 0, 0);
	CHECK_OK(shmkit_topic_publish(p, buf, 10, 0));
	CHECK(tp_readable(fd2, 2000));
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 0), 10);
	CHECK_OK(shmkit_topic_close(p));
	CHECK(tp_readable(fd2, 2000));
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 0), 0);
	CHECK(tp_readable(fd2, 0)); /* and its end lasts */
	CHECK_OK(shmkit_topic_close(s2));
	CHECK_OK(shmkit_topic_close(s));

	/* An end no subscriber received yet is there when the descriptor is made. */
	n = t_name("fd-eos-late");
	p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	CHECK_OK(shmkit_topic_close(p));
	s2 = tp_open_ok(n, TP_SUB, 0, 0);
	fd2 = shmkit_topic_fd(s2);
	CHECK(fd2 >= 0);
	CHECK(tp_readable(fd2, 0));
	CHECK_EQ(shmkit_topic_receive(s2, out, sizeof out, 0), 0);
	CHECK_OK(shmkit_topic_close(s2));
}

/* The descriptor sees a dead last publisher. */
static void test_fd_epipe(void)
{
	const char *n = t_name("fd-epipe");
	struct pipe_sh *sh = t_shared(sizeof *sh);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 4096, TP_CREATE);
	int fd = shmkit_topic_fd(s);
	CHECK(fd >= 0);
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		shmkit_topic *p = tp_open_ok(n, TP_PUB, 0, 0);
		(void)p;
		atomic_store(&sh->published, 1);
		for (;;)
			pause();
	}
	tp_await(&sh->published, 1, 10, "the publisher child");
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EAGAIN);
	CHECK(!tp_readable(fd, 0));
	CHECK_EQ(kill(pid, SIGKILL), 0);
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	CHECK(tp_readable(fd, 5000));
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EPIPE);
	CHECK(tp_readable(fd, 0));
	CHECK_OK(shmkit_topic_close(s));
	munmap(sh, sizeof *sh);
}

/* The System V backend works the same way. */
static void test_sysv(void)
{
	const char *n = t_name("sysv");
	const size_t max = 1024;
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE | SHMKIT_SEG_SYSV);
	shmkit_topic *s = tp_open_ok(n, TP_SUB, 0, SHMKIT_SEG_SYSV);
	shmkit_topic *x;
	/* The POSIX namespace has no such topic. */
	CHECK_EQ(shmkit_topic_open(n, TP_SUB, 0, 0, 0, &x), -ENOENT);
	for (uint64_t i = 0; i < 50; i++)
		pub_id(p, TP_ID(1, i), max);
	CHECK_EQ(shmkit_topic_receive(s, out, sizeof out, 0), -EOVERFLOW);
	ssize_t r = shmkit_topic_receive(s, out, sizeof out, 0);
	CHECK(r > 0);
	uint64_t first = tp_check(out, (size_t)r, max);
	CHECK(first != UINT64_MAX);
	CHECK_EQ(shmkit_topic_lost(s), TP_SEQ_OF(first));
	CHECK_OK(shmkit_topic_close(p));
	while ((r = shmkit_topic_receive(s, out, sizeof out, 0)) > 0)
		;
	CHECK_EQ(r, 0);
	CHECK_OK(shmkit_topic_close(s));
}

/* A topic made 0600 by root refuses another user, in every role. */
static int other_user_child(void *arg)
{
	const char *n = arg;
	shmkit_topic *x = (shmkit_topic *)&x;
	if (setgid(65534) != 0 || setuid(65534) != 0)
		return 2;
	for (unsigned role = 0; role <= 2; role++)
		if (shmkit_topic_open(n, role, 0, 0, 0, &x) != -EACCES || x != NULL)
			return T_FAIL;
	return T_PASS;
}

static void test_refused(void)
{
	if (geteuid() != 0) {
		printf("  not root: skipped\n");
		return;
	}
	const char *n = t_name("refused");
	shmkit_topic *p = tp_open_ok(n, TP_PUB, 4096, TP_CREATE);
	pid_t c = t_fork(other_user_child, (void *)n);
	CHECK_EQ(t_wait(c), 0);
	CHECK_EQ(tp_stats(p).subscribers, 0);
	CHECK_EQ(tp_stats(p).publishers, 1);
	CHECK_OK(shmkit_topic_close(p));
}

int main(void)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	T_RUN(test_roles());
	T_RUN(test_capacity());
	T_RUN(test_einval());
	T_RUN(test_eos());
	T_RUN(test_epipe());
	T_RUN(test_oldest(0));
	T_RUN(test_oldest(SHMKIT_TOPIC_RELIABLE));
	T_RUN(test_publishv());
	T_RUN(test_loan());
	T_RUN(test_peek());
	T_RUN(test_timeouts());
	T_RUN(test_wakeup());
	T_RUN(test_stats());
	T_RUN(test_limits());
	T_RUN(test_deleted());
	T_RUN(test_fd());
	T_RUN(test_fd_epipe());
	T_RUN(test_sysv());
	T_RUN(test_refused());
	printf("test_topic_api: ok\n");
	return T_PASS;
}
