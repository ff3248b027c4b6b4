/* Channels between pid namespaces (issue 8, item 10): peers in two containers that
 * share /dev/shm see each other's pids in the wrong namespace, so liveness must never
 * rest on a pid. One peer runs in a new pid namespace with its own /proc (as a
 * container has, and as `unshare -p -f --mount-proc` gives), the other in ours:
 * - a live peer there is never reported dead (no -EPIPE, blocking, non-blocking and
 *   in poll mode, for either role), and its role is never taken over (-EBUSY);
 * - a peer killed there is reported within the usual bound, and its role is free;
 * - the shmkit tool run under unshare(1) streams to a receiver here to the end. */
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>

#include "common.h"
#include "internal.h"

#define P SHMKIT_CHAN_PRODUCER
#define C SHMKIT_CHAN_CONSUMER
#define C_CREATE (SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL)

/* How long a dead peer may take to be reported: the sleeper's slice (200 ms) plus the
 * poll-mode timer (200 ms), with room for a busy machine. */
#define DEATH_BOUND_NS (1500 * SHMKIT_MSEC)
/* Pauses long enough for several liveness checks on the other side (every ~100 ms
 * for non-blocking calls, every expired sleep slice for blocking ones). */
#define PAUSE_MS 350

/* Flags between the processes of one test. */
struct shared {
	_Atomic int stage;   /* advanced by whichever side the test says */
	_Atomic int verdict; /* the contained side's result: 0 running, 1 good, -line bad */
	_Atomic uint64_t n;  /* a count the contained side reports */
};

static struct shared *shared_new(void)
{
	struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				-1, 0);
	CHECK(s != MAP_FAILED);
	memset(s, 0, sizeof *s);
	return s;
}

/* Wait (polling: the other side may be in another namespace and dead) until
 * s->stage >= stage, at most 10 s. */
static void wait_stage(struct shared *s, int stage)
{
	int64_t end = t_now_ns() + 10 * SHMKIT_SEC;
	while (atomic_load(&s->stage) < stage) {
		CHECK(t_now_ns() < end);
		CHECK(atomic_load(&s->verdict) >= 0);
		t_nap_ms(1);
	}
}

/* Wait for the contained side's verdict, at most 10 s; it must be good. */
static void wait_verdict(struct shared *s)
{
	int64_t end = t_now_ns() + 10 * SHMKIT_SEC;
	while (atomic_load(&s->verdict) == 0) {
		CHECK(t_now_ns() < end);
		t_nap_ms(1);
	}
	CHECK_EQ(atomic_load(&s->verdict), 1);
}

/* In the contained process: record a failure for the host side to see, and stop. */
#define NS_CHECK(s, cond)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: in the namespace: CHECK(%s) failed\n",      \
				__FILE__, __LINE__, #cond);                                 \
			atomic_store(&(s)->verdict, -__LINE__);                             \
			_exit(T_FAIL);                                                     \
		}                                                                          \
	} while (0)

/* Run fn(arg) in a new pid namespace, with a private mount namespace and its own
 * /proc, as a container runs. Returns the pid of the intermediate child (t_wait() it:
 * it exits with fn's status, or 128 + the signal that killed fn), and in *inner the
 * pid, in our namespace, of the process running fn (pid 1 of the new namespace).
 * Exits T_SKIP if namespaces cannot be made here. */
static pid_t ns_spawn(int (*fn)(void *), void *arg, pid_t *inner)
{
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t mid = t_fork_raw();
	CHECK(mid >= 0);
	if (mid == 0) {
		close(pfd[0]);
		int msg = 0;
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0) {
			msg = -errno;
			(void)!write(pfd[1], &msg, sizeof msg);
			_exit(T_SKIP);
		}
		pid_t pid = fork();
		if (pid == 0) {
			/* Our parent is outside our namespace: getppid() is 0 here, so the
			 * race check of t_fork_raw() cannot be made; the pipe stands in (the
			 * parent closes it only after the write below). */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(pfd[1]);
			if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
			    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
				fprintf(stderr, "ns_spawn: mount: %s\n", strerror(errno));
				_exit(T_FAIL);
			}
			_exit(fn(arg));
		}
		msg = pid < 0 ? -errno : pid;
		(void)!write(pfd[1], &msg, sizeof msg);
		if (pid < 0)
			_exit(T_FAIL);
		int st = t_wait(pid);
		_exit(st < 0 ? T_FAIL : st);
	}
	close(pfd[1]);
	int msg = 0;
	CHECK(read(pfd[0], &msg, sizeof msg) == sizeof msg);
	close(pfd[0]);
	if (msg == -EPERM || msg == -EINVAL || msg == -ENOSYS) {
		t_wait(mid);
		printf("SKIP: no pid namespaces here (%s)\n", strerror(-msg));
		exit(T_SKIP);
	}
	CHECK(msg > 0);
	*inner = msg;
	return mid;
}

/* Kill the contained process and reap its namespace. */
static void ns_kill(pid_t mid, pid_t inner)
{
	CHECK(kill(inner, SIGKILL) == 0);
	CHECK_EQ(t_wait(mid), 128 + SIGKILL);
}

static int poll_in(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, ms);
	CHECK(r >= 0);
	return r == 1 && (p.revents & POLLIN);
}

/* ---- producer in the new namespace, consumer here ---- */

#define NMSG 60

struct pctx {
	const char *name;
	struct shared *s;
};

/* Sends NMSG numbered messages, pausing before 10, 20, 30, 40 and 50 (the consumer
 * waits then: blocking, then non-blocking, then in poll mode), reports, and stays
 * alive holding the role until killed. */
static int ns_producer(void *arg)
{
	struct pctx *x = arg;
	shmkit_chan *p = NULL;
	NS_CHECK(x->s, shmkit_chan_open(x->name, P, 0, 0, 0, &p) == 0);
	for (uint32_t i = 0; i < NMSG; i++) {
		if (i % 10 == 0 && i > 0)
			t_nap_ms(PAUSE_MS);
		NS_CHECK(x->s, shmkit_chan_send(p, &i, sizeof i, 5 * SHMKIT_SEC) == 0);
	}
	atomic_store(&x->s->verdict, 1);
	for (;;)
		pause();
}

/* Receive message i (expected): blocking, non-blocking (retried), or poll mode. */
static void recv_one(shmkit_chan *c, int how, int fd, uint32_t i)
{
	uint32_t v = ~0u;
	ssize_t r;
	int64_t end = t_now_ns() + 5 * SHMKIT_SEC;
	if (how == 0) {
		r = shmkit_chan_recv(c, &v, sizeof v, 5 * SHMKIT_SEC);
	} else {
		while ((r = shmkit_chan_recv(c, &v, sizeof v, 0)) == -EAGAIN) {
			CHECK(t_now_ns() < end);
			if (how == 1)
				t_nap_ms(1);
			else
				(void)poll_in(fd, 1000);
		}
	}
	if (r != (ssize_t)sizeof v)
		fprintf(stderr, "message %u: %s\n", i, r < 0 ? shmkit_strerror((int)r) : "short");
	CHECK_EQ(r, sizeof v);
	CHECK_EQ(v, i);
}

/* A producer in another pid namespace is alive while it lives, however the consumer
 * waits, and dead once killed. @poll_mode: the consumer uses shmkit_chan_fd() from
 * the start (no pidfd can be used across namespaces: the timer stands in). */
static void test_producer_in_ns(int poll_mode)
{
	const char *name = t_name(poll_mode ? "pns-poll" : "pns");
	struct shared *s = shared_new();
	shmkit_chan *c = t_chan_open_ok(name, C, 4096, C_CREATE);
	int fd = -1;
	if (poll_mode) {
		fd = shmkit_chan_fd(c);
		CHECK(fd >= 0);
	}
	struct pctx x = {name, s};
	pid_t inner, mid = ns_spawn(ns_producer, &x, &inner);
	for (uint32_t i = 0; i < NMSG; i++)
		recv_one(c, poll_mode ? 2 : (int)(i / 10) % 2, fd, i);
	/* Its pid names another process here (or none): no pidfd may be opened of it. */
	if (poll_mode)
		CHECK_EQ(t_count_pidfds(), 0);
	wait_verdict(s);
	/* Idle, with the producer alive: nothing, for longer than several checks. */
	uint32_t v;
	CHECK_EQ(shmkit_chan_recv(c, &v, sizeof v, PAUSE_MS * SHMKIT_MSEC), -ETIMEDOUT);
	int64_t end = t_now_ns() + PAUSE_MS * SHMKIT_MSEC;
	while (t_now_ns() < end) {
		if (poll_mode)
			(void)poll_in(fd, 50);
		else
			t_nap_ms(5);
		CHECK_EQ(shmkit_chan_recv(c, &v, sizeof v, 0), -EAGAIN);
	}

	/* Killed in its namespace: reported within the bound. */
	ns_kill(mid, inner);
	int64_t t0 = t_now_ns();
	ssize_t r;
	if (poll_mode) {
		CHECK(poll_in(fd, 5000));
		while ((r = shmkit_chan_recv(c, &v, sizeof v, 0)) == -EAGAIN &&
		       t_now_ns() - t0 < DEATH_BOUND_NS)
			(void)poll_in(fd, 100);
	} else {
		r = shmkit_chan_recv(c, &v, sizeof v, 5 * SHMKIT_SEC);
	}
	CHECK_EQ(r, -EPIPE);
	CHECK(t_now_ns() - t0 < DEATH_BOUND_NS);
	if (poll_mode)
		CHECK(poll_in(fd, 0)); /* the condition lasts, and so does readability */
	/* Its role is free now. */
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	CHECK_OK(shmkit_seg_unlink(name, 0));
	munmap(s, sizeof *s);
}

/* ---- consumer in the new namespace, producer here ---- */

#define CMSG 400
#define CLEN 96

/* Receives CMSG messages, pausing every 100 (the producer sleeps on a full ring,
 * then waits with non-blocking calls), reports, and stays alive until killed. */
static int ns_consumer(void *arg)
{
	struct pctx *x = arg;
	shmkit_chan *c = NULL;
	NS_CHECK(x->s, shmkit_chan_open(x->name, C, 0, 0, 0, &c) == 0);
	atomic_store(&x->s->stage, 1);
	unsigned char b[CLEN];
	for (uint32_t i = 0; i < CMSG; i++) {
		if (i % 100 == 0 && i > 0)
			t_nap_ms(PAUSE_MS);
		ssize_t r = shmkit_chan_recv(c, b, sizeof b, 5 * SHMKIT_SEC);
		NS_CHECK(x->s, r == CLEN);
		uint32_t v;
		memcpy(&v, b, sizeof v);
		NS_CHECK(x->s, v == i && b[CLEN - 1] == (unsigned char)i);
		atomic_store(&x->s->n, i + 1);
	}
	atomic_store(&x->s->verdict, 1);
	for (;;)
		pause();
}

static int send_num(shmkit_chan *p, uint32_t i, int64_t timeout)
{
	unsigned char b[CLEN];
	memset(b, (unsigned char)i, sizeof b);
	memcpy(b, &i, sizeof i);
	return shmkit_chan_send(p, b, sizeof b, timeout);
}

static void test_consumer_in_ns(void)
{
	const char *name = t_name("cns");
	struct shared *s = shared_new();
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	struct pctx x = {name, s};
	pid_t inner, mid = ns_spawn(ns_consumer, &x, &inner);
	wait_stage(s, 1);
	for (uint32_t i = 0; i < CMSG; i++) {
		int r;
		if ((i / 100) % 2 == 0) {
			r = send_num(p, i, 5 * SHMKIT_SEC); /* sleeps on the full ring */
		} else {
			int64_t end = t_now_ns() + 5 * SHMKIT_SEC;
			while ((r = send_num(p, i, 0)) == -EAGAIN && t_now_ns() < end)
				t_nap_ms(1);
		}
		if (r < 0)
			fprintf(stderr, "message %u: %s\n", i, shmkit_strerror(r));
		CHECK_OK(r);
	}
	wait_verdict(s);
	CHECK_EQ(atomic_load(&s->n), CMSG);
	/* Fill the ring; the consumer lives but reads no more: time out, never -EPIPE. */
	uint32_t i = CMSG;
	while (send_num(p, i, 0) == 0)
		i++;
	CHECK_EQ(send_num(p, i, PAUSE_MS * SHMKIT_MSEC), -ETIMEDOUT);
	int64_t end = t_now_ns() + PAUSE_MS * SHMKIT_MSEC;
	while (t_now_ns() < end) {
		CHECK_EQ(send_num(p, i, 0), -EAGAIN);
		t_nap_ms(5);
	}

	ns_kill(mid, inner);
	int64_t t0 = t_now_ns();
	CHECK_EQ(send_num(p, i, 5 * SHMKIT_SEC), -EPIPE);
	CHECK(t_now_ns() - t0 < DEATH_BOUND_NS);
	/* Its role is free now. */
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	CHECK_OK(shmkit_seg_unlink(name, 0));
	munmap(s, sizeof *s);
}

/* ---- roles across namespaces ---- */

/* Holds both roles until killed. */
static int ns_holder(void *arg)
{
	struct pctx *x = arg;
	shmkit_chan *p = NULL, *c = NULL;
	NS_CHECK(x->s, shmkit_chan_open(x->name, P, 0, 0, 0, &p) == 0);
	NS_CHECK(x->s, shmkit_chan_open(x->name, C, 0, 0, 0, &c) == 0);
	atomic_store(&x->s->stage, 1);
	for (;;)
		pause();
}

/* Tries to take both roles held here: -EBUSY for each, repeatedly. */
static int ns_taker(void *arg)
{
	struct pctx *x = arg;
	for (int i = 0; i < 20; i++) {
		shmkit_chan *h = (shmkit_chan *)1;
		NS_CHECK(x->s, shmkit_chan_open(x->name, P, 0, 0, 0, &h) == -EBUSY && h == NULL);
		NS_CHECK(x->s, shmkit_chan_open(x->name, C, 0, 0, 0, &h) == -EBUSY);
		t_nap_ms(10);
	}
	atomic_store(&x->s->verdict, 1);
	return T_PASS;
}

/* A live holder in another pid namespace is never displaced, in either direction;
 * a killed one is, at once. */
static void test_takeover_across_ns(void)
{
	const char *name = t_name("roles");
	struct shared *s = shared_new();
	shmkit_chan *mine = t_chan_open_ok(name, SHMKIT_CHAN_OBSERVER, 4096, C_CREATE);
	struct pctx x = {name, s};

	pid_t inner, mid = ns_spawn(ns_holder, &x, &inner);
	wait_stage(s, 1);
	for (int i = 0; i < 20; i++) {
		shmkit_chan *h = (shmkit_chan *)1;
		CHECK_EQ(shmkit_chan_open(name, P, 0, 0, 0, &h), -EBUSY);
		CHECK(h == NULL);
		CHECK_EQ(shmkit_chan_open(name, C, 0, 0, 0, &h), -EBUSY);
		t_nap_ms(10);
	}
	ns_kill(mid, inner);
	shmkit_chan *p = t_chan_open_ok(name, P, 0, 0), *c = t_chan_open_ok(name, C, 0, 0);

	/* Held here, wanted from there. */
	atomic_store(&s->stage, 0);
	mid = ns_spawn(ns_taker, &x, &inner);
	CHECK_EQ(t_wait(mid), T_PASS);
	CHECK_EQ(atomic_load(&s->verdict), 1);
	shmkit_chan_close(p);
	shmkit_chan_close(c);
	shmkit_chan_close(mine);
	CHECK_OK(shmkit_seg_unlink(name, 0));
	munmap(s, sizeof *s);
}

/* ---- a segment's creator ---- */

struct sctx {
	const char *name;
	struct shared *s;
	unsigned backend;
};

/* Creates a segment and lives on, holding it. */
static int ns_creator(void *arg)
{
	struct sctx *x = arg;
	shmkit_seg *g = NULL;
	NS_CHECK(x->s, shmkit_seg_open(x->name, SHMKIT_KIND_DATA, 4096, 0,
				       x->backend | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &g) == 0);
	atomic_store(&x->s->stage, 1);
	for (;;)
		pause();
}

/* Issue 8, item 10: `stat` showed a live creator in a container as "pid 1 (dead)",
 * so gc would have removed its segment. Its liveness is the kernel's word now: alive
 * while it lives, dead once killed, from our namespace as from its own. */
static void test_creator_in_ns(unsigned backend)
{
	const char *name = t_name(backend ? "creator-sysv" : "creator");
	struct shared *s = shared_new();
	struct sctx x = {name, s, backend};
	struct shmkit_seg_info in;
	shmkit_seg *g;

	pid_t inner, mid = ns_spawn(ns_creator, &x, &inner);
	wait_stage(s, 1);
	for (int i = 0; i < 5; i++) {
		CHECK_OK(shmkit_seg_inspect(name, backend, &in));
		CHECK_EQ(in.creator_alive, 1);
		CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, backend, &g));
		CHECK_OK(shmkit_seg_stat(g, &in));
		CHECK_EQ(in.creator_alive, 1);
		shmkit_seg_close(g);
		t_nap_ms(20);
	}
	ns_kill(mid, inner);
	CHECK_OK(shmkit_seg_inspect(name, backend, &in));
	CHECK_EQ(in.creator_alive, 0);
	CHECK_OK(shmkit_seg_unlink(name, backend));
	munmap(s, sizeof *s);
}

/* Create-or-open of an abandoned System V creation (a header never written: the
 * creator died right after shmget) from a pid namespace that cannot see its creator:
 * the kernel's attach count alone proves it abandoned, within a second. */
static int ns_reopen_abandoned(void *arg)
{
	struct sctx *x = arg;
	shmkit_seg *g = NULL;
	int64_t t0 = t_now_ns();
	int r = shmkit_seg_open(x->name, SHMKIT_KIND_DATA, 100, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_CREATE, &g);
	if (r < 0)
		fprintf(stderr, "in the namespace: create-or-open: %s after %.2f s\n", shmkit_strerror(r),
			(double)(t_now_ns() - t0) / 1e9);
	NS_CHECK(x->s, r == 0);
	NS_CHECK(x->s, shmkit_seg_created(g) == 1);
	NS_CHECK(x->s, t_now_ns() - t0 < 3 * SHMKIT_SEC / 2);
	shmkit_seg_close(g);
	atomic_store(&x->s->verdict, 1);
	return T_PASS;
}

static void test_abandoned_sysv_from_ns(void)
{
	const char *name = t_name("abandoned-sysv");
	struct shared *s = shared_new();
	struct sctx x = {name, s, SHMKIT_SEG_SYSV};
	shmkit_seg *g;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_CREATE, &g));
	/* As a creator killed before its first store leaves it: all zero, INIT. */
	memset(shmkit__seg_hdr(g), 0, sizeof(struct shmkit__hdr));
	shmkit_seg_close(g);
	pid_t inner, mid = ns_spawn(ns_reopen_abandoned, &x, &inner);
	CHECK_EQ(t_wait(mid), T_PASS);
	CHECK_EQ(atomic_load(&s->verdict), 1);
	CHECK_OK(shmkit_seg_unlink(name, SHMKIT_SEG_SYSV));
	munmap(s, sizeof *s);
}

/* ---- the tool, as the issue reported it ---- */

/* `unshare -p -f --mount-proc shmkit send NAME` fed lines (with pauses, so that the
 * receiver here sleeps and checks the sender), received here to end-of-stream. */
static void test_tool_send_in_ns(void)
{
	if (access("/usr/bin/unshare", X_OK) != 0 && access("/bin/unshare", X_OK) != 0) {
		printf("test_tool_send_in_ns: no unshare(1), skipped\n");
		return;
	}
	const char *name = t_name("tool");
	shmkit_chan *c = t_chan_open_ok(name, C, 1 << 16, C_CREATE);
	int in[2];
	CHECK(pipe(in) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(in[0], 0);
		close(in[0]);
		close(in[1]);
		execlp("unshare", "unshare", "-p", "-f", "--kill-child", "--mount-proc", SHMKIT_TOOL, "send", name,
		       (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	const int lines = 3000;
	uint32_t got = 0;
	char buf[64];
	for (int i = 1; i <= lines; i++) {
		char line[32];
		int n = snprintf(line, sizeof line, "%d\n", i);
		CHECK(write(in[1], line, (size_t)n) == n);
		if (i % 1000 == 0) {
			/* Drain what was sent so far, then let the receiver idle. */
			while (got < (uint32_t)i) {
				ssize_t r = shmkit_chan_recv(c, buf, sizeof buf - 1, 5 * SHMKIT_SEC);
				if (r < 0)
					fprintf(stderr, "line %u: %s\n", got + 1, shmkit_strerror((int)r));
				CHECK(r > 0);
				buf[r] = 0;
				CHECK_EQ(atoi(buf), ++got);
			}
			CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, PAUSE_MS * SHMKIT_MSEC), -ETIMEDOUT);
		}
	}
	close(in[1]);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 5 * SHMKIT_SEC), 0); /* end-of-stream */
	CHECK_EQ(t_wait(pid), 0);
	shmkit_chan_close(c);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* Runs every test, or those whose names contain argv[1]. */
#define RUN(want, name, call)                                                              \
	do {                                                                               \
		if (!(want) || strstr(name, want))                                         \
			T_RUN(call);                                                       \
	} while (0)

int main(int argc, char **argv)
{
	const char *want = argc > 1 ? argv[1] : NULL;
	if (geteuid() != 0) {
		printf("SKIP: namespaces need root\n");
		return T_SKIP;
	}
	signal(SIGPIPE, SIG_IGN);
	RUN(want, "takeover", test_takeover_across_ns());
	RUN(want, "producer", test_producer_in_ns(0));
	RUN(want, "producer_poll", test_producer_in_ns(1));
	RUN(want, "consumer", test_consumer_in_ns());
	RUN(want, "tool", test_tool_send_in_ns());
	RUN(want, "creator", test_creator_in_ns(0));
	RUN(want, "creator_sysv", test_creator_in_ns(SHMKIT_SEG_SYSV));
	RUN(want, "abandoned_sysv", test_abandoned_sysv_from_ns());
	return T_PASS;
}
