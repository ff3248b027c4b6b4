/* The SIGBUS guard: a POSIX segment truncated by a peer under live handles. With
 * shmkit_guard_sigbus() every call on those handles returns -EFAULT, then and later;
 * without it the process dies of SIGBUS, as for any mapped file. A SIGBUS that is not
 * a shmkit call's still goes where it went before the guard. Every case runs in a
 * child process, and a separate process (the test itself) truncates, as a peer would. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common.h"


/* Every child starts from the default disposition, which AddressSanitizer replaces by
 * its own report-and-exit-1 handler: the tests want the plain death it stands for. */
static void default_sigbus(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
}

/* What a child does after the truncation. */
enum op {
	OP_SEG_CHECK,
	OP_SEG_STAT,
	OP_BLOB_READ,
	OP_BLOB_WRITE,
	OP_BLOB_VERSION,
	OP_CHAN_SEND,
	OP_CHAN_SENDV,
	OP_CHAN_RESERVE,
	OP_CHAN_COMMIT,
	OP_CHAN_RECV,
	OP_CHAN_RECV_LARGE,
	OP_CHAN_PEEK,
	OP_CHAN_RELEASE,
	OP_CHAN_STATS,
	N_OPS
};

enum { DATA, BLOB, CHAN };

/* Truncating to KEEP_CONTROL keeps the segment header and the blob's or channel's
 * control block (both in the first data page), so the fault comes in the middle of a
 * call, after every check it makes up front; KEEP_RING_PAGE also keeps the ring's first
 * page, and with it the header of a message whose payload runs past it. */
#define KEEP_CONTROL 8192
#define KEEP_RING_PAGE 12288

static const struct {
	const char *name;
	int kind;
	off_t mid; /* 0, or a truncation that the call meets in its middle */
	int only_mid; /* not tried with a truncation to 0 */
} ops[N_OPS] = {
	[OP_SEG_CHECK] = {"seg_check", DATA, 0, 0},
	[OP_SEG_STAT] = {"seg_stat", DATA, 0, 0},
	[OP_BLOB_READ] = {"blob_read", BLOB, KEEP_CONTROL, 0},
	[OP_BLOB_WRITE] = {"blob_write", BLOB, KEEP_CONTROL, 0},
	[OP_BLOB_VERSION] = {"blob_version", BLOB, 0, 0},
	[OP_CHAN_SEND] = {"chan_send", CHAN, KEEP_CONTROL, 0},
	[OP_CHAN_SENDV] = {"chan_sendv", CHAN, KEEP_CONTROL, 0},
	[OP_CHAN_RESERVE] = {"chan_reserve", CHAN, KEEP_CONTROL, 0},
	[OP_CHAN_COMMIT] = {"chan_commit", CHAN, KEEP_CONTROL, 0},
	[OP_CHAN_RECV] = {"chan_recv", CHAN, KEEP_CONTROL, 0},
	[OP_CHAN_RECV_LARGE] = {"chan_recv_large", CHAN, KEEP_RING_PAGE, 1},
	[OP_CHAN_PEEK] = {"chan_peek", CHAN, KEEP_CONTROL, 0},
	[OP_CHAN_RELEASE] = {"chan_release", CHAN, 0, 0},
	[OP_CHAN_STATS] = {"chan_stats", CHAN, 0, 0},
};

#define BLOB_SIZE (64u << 10)
#define CHAN_CAP (64u << 10)

struct handles {
	shmkit_seg *s1, *s2;
	shmkit_blob *bw, *br;
	shmkit_chan *p, *c;
};

static void open_all(int kind, const char *name, struct handles *h)
{
	memset(h, 0, sizeof *h);
	if (kind == DATA) {
		CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 3 * 4096, 0,
					 SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &h->s1));
		CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, 0, &h->s2));
		memset(shmkit_seg_data(h->s1), 0x5a, shmkit_seg_size(h->s1));
	} else if (kind == BLOB) {
		char buf[BLOB_SIZE];
		CHECK_OK(shmkit_blob_open(name, BLOB_SIZE, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL,
					  &h->bw));
		CHECK_OK(shmkit_blob_open(name, 0, 0, SHMKIT_SEG_RDONLY, &h->br));
		memset(buf, 0x5a, sizeof buf);
		CHECK_OK(shmkit_blob_write(h->bw, buf, sizeof buf));
		h->s1 = shmkit_blob_seg(h->bw);
		h->s2 = shmkit_blob_seg(h->br);
	} else {
		CHECK_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, CHAN_CAP, 0,
					  SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &h->p));
		CHECK_OK(shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, 0, 0, 0, &h->c));
		for (int i = 0; i < 3; i++)
			CHECK_OK(shmkit_chan_send(h->p, "0123456789abcdef0123456789abcdef", 32, 0));
		h->s1 = shmkit_chan_seg(h->p);
		h->s2 = shmkit_chan_seg(h->c);
	}
}

/* One call of op; returns its result (a length or an error). */
static long long do_op(enum op op, struct handles *h)
{
	static char buf[BLOB_SIZE];
	struct shmkit_seg_info info;
	struct shmkit_chan_stats st;
	uint64_t ver;
	const void *msg;
	size_t len;
	void *room;
	struct iovec iov[2] = {{buf, 100}, {buf, 200}};
	long long r = 0;
	switch (op) {
	case OP_SEG_CHECK:
		r = shmkit_seg_check(h->s1);
		break;
	case OP_SEG_STAT:
		r = shmkit_seg_stat(h->s1, &info);
		break;
	case OP_BLOB_READ:
		r = shmkit_blob_read(h->br, buf, sizeof buf, &ver);
		break;
	case OP_BLOB_WRITE:
		r = shmkit_blob_write(h->bw, buf, sizeof buf);
		break;
	case OP_BLOB_VERSION:
		r = shmkit_blob_version(h->br);
		break;
	case OP_CHAN_SEND:
		r = shmkit_chan_send(h->p, buf, 40, 0);
		break;
	case OP_CHAN_SENDV:
		r = shmkit_chan_sendv(h->p, iov, 2, 0);
		break;
	case OP_CHAN_RESERVE:
		r = shmkit_chan_reserve(h->p, 1000, 0, &room);
		if (r == 0)
			r = shmkit_chan_commit(h->p, 1000);
		else
			CHECK(room == NULL);
		break;
	case OP_CHAN_COMMIT: /* reserved by prepare() */
		r = shmkit_chan_commit(h->p, 1000);
		break;
	case OP_CHAN_RECV:
	case OP_CHAN_RECV_LARGE:
		r = shmkit_chan_recv(h->c, buf, sizeof buf, 0);
		break;
	case OP_CHAN_RELEASE: /* peeked by prepare() */
		r = shmkit_chan_release(h->c);
		break;
	case OP_CHAN_PEEK:
		r = shmkit_chan_peek(h->c, &msg, &len, 0);
		if (r < 0)
			CHECK(msg == NULL && len == 0);
		break;
	case OP_CHAN_STATS:
		r = shmkit_chan_stats(h->c, &st);
		if (r < 0)
			CHECK_EQ(st.msgs_sent, 0); /* nothing reported from the zero memory */
		break;
	default:
		break;
	}
	return r;
}

/* What op needs before the truncation. */
static void prepare(enum op op, struct handles *h)
{
	char big[3000];
	const void *msg;
	size_t len;
	void *room;
	memset(big, 0x33, sizeof big);
	if (op == OP_CHAN_COMMIT) {
		CHECK_OK(shmkit_chan_reserve(h->p, 1000, 0, &room));
		memset(room, 0x44, 1000);
	} else if (op == OP_CHAN_RELEASE) {
		CHECK_EQ(shmkit_chan_peek(h->c, &msg, &len, 0), 32);
	} else if (op == OP_CHAN_RECV_LARGE) {
		/* Records of 40 bytes each, then two of 3008: the second starts at ring
		 * offset 3128 and ends at 6136, across the end of the ring's first page. */
		for (int i = 0; i < 3; i++)
			CHECK_EQ(shmkit_chan_recv(h->c, big, sizeof big, 0), 32);
		CHECK_OK(shmkit_chan_send(h->p, big, sizeof big, 0));
		CHECK_OK(shmkit_chan_send(h->p, big, sizeof big, 0));
		CHECK_EQ(shmkit_chan_recv(h->c, big, sizeof big, 0), 3000);
	}
}

/* Every call a handle of kind offers, after the truncation: all -EFAULT. */
static void check_all_poisoned(int kind, struct handles *h)
{
	for (int op = 0; op < N_OPS; op++)
		if (ops[op].kind == kind)
			CHECK_EQ(do_op((enum op)op, h), -EFAULT);
	CHECK_EQ(shmkit_seg_check(h->s1), -EFAULT);
	CHECK_EQ(shmkit_seg_check(h->s2), -EFAULT);
	if (kind == CHAN) {
		CHECK_EQ(shmkit_chan_release(h->c), -EFAULT);
		CHECK_EQ(shmkit_chan_commit(h->p, 10), -EFAULT);
		CHECK_EQ(shmkit_chan_fd(h->c), -EFAULT);
	}
}

static void close_all(struct handles *h)
{
	if (h->bw) {
		CHECK_OK(shmkit_blob_close(h->bw));
		CHECK_OK(shmkit_blob_close(h->br));
	} else if (h->p) {
		CHECK_OK(shmkit_chan_close(h->p));
		CHECK_OK(shmkit_chan_close(h->c));
	} else {
		CHECK_OK(shmkit_seg_close(h->s1));
		CHECK_OK(shmkit_seg_close(h->s2));
	}
}

/* The peer: truncate the object behind name to size. */
static void peer_truncate(const char *name, off_t size)
{
	int fd = shm_open(name, O_RDWR, 0);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, size) == 0);
	close(fd);
}

/* t_name()'s cleanup removes what shmkit can open, which an empty object is not. */
static void unlink_truncated(const char *name)
{
	shm_unlink(name);
}

/* The same at exit, for a test that failed before its own unlink. */
static void unlink_all_truncated(void)
{
	if (getpid() != t_names_pid)
		return;
	for (int i = 0; i < t_nnames; i++)
		shm_unlink(t_names[i]);
}

/* Fork a child that opens handles of op's kind, lets us truncate the segment, then
 * calls op; returns its t_wait() status. */
static int run_case(enum op op, int guard, off_t size)
{
	char tag[64];
	snprintf(tag, sizeof tag, "%s-%d-%lld", ops[op].name, guard, (long long)size);
	const char *name = t_name(tag);
	int up[2], down[2];
	char b = 0;
	CHECK(pipe(up) == 0 && pipe(down) == 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct handles h;
		default_sigbus();
		if (guard) {
			CHECK_OK(shmkit_guard_sigbus());
			CHECK_OK(shmkit_guard_sigbus()); /* idempotent */
		}
		open_all(ops[op].kind, name, &h);
		prepare(op, &h);
		CHECK(write(up[1], "r", 1) == 1);
		CHECK(read(down[0], &b, 1) == 1);
		long long r = do_op(op, &h);
		if (!guard) {
			fprintf(stderr, "%s survived a truncation: %lld\n", ops[op].name, r);
			_exit(3);
		}
		CHECK_EQ(r, -EFAULT);
		CHECK_EQ(do_op(op, &h), -EFAULT); /* and later calls too */
		check_all_poisoned(ops[op].kind, &h);
		close_all(&h);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	CHECK(read(up[0], &b, 1) == 1);
	peer_truncate(name, size);
	CHECK(write(down[1], "t", 1) == 1);
	close(up[0]);
	close(down[1]);
	int st = t_wait(pid);
	unlink_truncated(name);
	return st;
}

static void test_calls(void)
{
	int cases = 0;
	for (int op = 0; op < N_OPS; op++) {
		for (int mid = ops[op].only_mid; mid <= (ops[op].mid != 0); mid++) {
			off_t size = mid ? ops[op].mid : 0;
			int st = run_case((enum op)op, 1, size);
			if (st != 0)
				fprintf(stderr, "guarded %s, truncated to %lld: status %d\n",
					ops[op].name, (long long)size, st);
			CHECK_EQ(st, 0);
			st = run_case((enum op)op, 0, size);
			if (st != 128 + SIGBUS)
				fprintf(stderr, "unguarded %s, truncated to %lld: status %d\n",
					ops[op].name, (long long)size, st);
			CHECK_EQ(st, 128 + SIGBUS);
			cases += 2;
		}
	}
	printf("%d cases\n", cases);
}

/* Deleting a poisoned segment still removes its name; closing works. */
static int child_delete(void *arg)
{
	const char *name = arg;
	shmkit_seg *s;
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 4096, 0, SHMKIT_SEG_CREATE, &s));
	peer_truncate(name, 0);
	CHECK_EQ(shmkit_seg_check(s), -EFAULT);
	CHECK_OK(shmkit_seg_delete(s));
	CHECK_EQ(shmkit_seg_check(s), -EFAULT);
	struct stat st;
	char path[256];
	snprintf(path, sizeof path, "/dev/shm%s", name);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
	CHECK_OK(shmkit_seg_close(s));
	return 0;
}

static void test_delete(void)
{
	CHECK_EQ(t_wait(t_fork(child_delete, (void *)t_name("delete"))), 0);
}

/* Threads sharing one blob handle read in a loop while a peer truncates it: the
 * first to fault replaces the mapping while the others wait for it; every read gives
 * the whole pattern or -EFAULT, never a snapshot with zeros from the replacement. */
#define READERS 3

struct reader {
	shmkit_blob *b;
	pthread_barrier_t *go;
	_Atomic long reads;
	int result;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	static _Thread_local unsigned char buf[BLOB_SIZE];
	pthread_barrier_wait(rd->go);
	for (;;) {
		ssize_t n = shmkit_blob_read(rd->b, buf, sizeof buf, NULL);
		if (n == -EFAULT) {
			rd->result = 0;
			return NULL;
		}
		if (n != BLOB_SIZE || buf[0] != 0x5a || buf[BLOB_SIZE - 1] != 0x5a ||
		    memchr(buf, 0, sizeof buf) != NULL) {
			fprintf(stderr, "reader: %zd bytes, not the snapshot\n", n);
			rd->result = 1;
			return NULL;
		}
		rd->reads++;
	}
}

static int child_threads(void *arg)
{
	const char *name = arg;
	shmkit_blob *b;
	static unsigned char buf[BLOB_SIZE];
	pthread_barrier_t go;
	pthread_t t[READERS];
	struct reader rd[READERS];
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	CHECK_OK(shmkit_blob_open(name, BLOB_SIZE, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &b));
	memset(buf, 0x5a, sizeof buf);
	CHECK_OK(shmkit_blob_write(b, buf, sizeof buf));
	CHECK(pthread_barrier_init(&go, NULL, READERS + 1) == 0);
	for (int i = 0; i < READERS; i++) {
		rd[i] = (struct reader){.b = b, .go = &go, .result = -1};
		CHECK(pthread_create(&t[i], NULL, reader_main, &rd[i]) == 0);
	}
	pthread_barrier_wait(&go);
	/* Let them copy a while, so the truncation cuts into copies. */
	while (rd[0].reads + rd[READERS - 1].reads < 200)
		sched_yield();
	peer_truncate(name, KEEP_CONTROL);
	for (int i = 0; i < READERS; i++) {
		CHECK(pthread_join(t[i], NULL) == 0);
		CHECK_EQ(rd[i].result, 0);
	}
	CHECK_EQ(shmkit_blob_version(b), -EFAULT);
	CHECK_OK(shmkit_blob_close(b));
	return 0;
}

static void test_threads(void)
{
	const char *name = t_name("threads");
	for (int i = 0; i < (SANITIZED ? 3 : 20); i++) {
		CHECK_EQ(t_wait(t_fork(child_threads, (void *)name)), 0);
		unlink_truncated(name);
	}
}

/* A side asleep in a blocking call (no timeout) when the peer truncates: its next
 * check of the segment ends the wait with -EFAULT, within a sleep slice. */
static int child_asleep(void *arg)
{
	const char *name = arg;
	int consumer = name[strlen(name) - 1] == 'c';
	shmkit_chan *ch;
	static char buf[1024];
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	alarm(10); /* a wait that never ends fails the test instead of hanging it */
	CHECK_OK(shmkit_chan_open(name, consumer ? SHMKIT_CHAN_CONSUMER : SHMKIT_CHAN_PRODUCER, 0, 0,
				  0, &ch));
	CHECK_OK(shmkit_chan_set_spin(ch, 0));
	long long r;
	if (consumer) {
		r = shmkit_chan_recv(ch, buf, sizeof buf, SHMKIT_FOREVER);
	} else {
		do
			r = shmkit_chan_send(ch, buf, sizeof buf, SHMKIT_FOREVER);
		while (r == 0);
	}
	CHECK_EQ(r, -EFAULT);
	CHECK_OK(shmkit_chan_close(ch));
	return 0;
}

static void test_asleep(void)
{
	for (int consumer = 0; consumer <= 1; consumer++) {
		const char *name = t_name(consumer ? "asleep-c" : "asleep-p");
		shmkit_chan *other, *obs;
		struct shmkit_chan_stats st;
		/* The other side holds its role, so the sleeper never sees it gone. */
		CHECK_OK(shmkit_chan_open(name,
					  consumer ? SHMKIT_CHAN_PRODUCER : SHMKIT_CHAN_CONSUMER,
					  4096, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &other));
		CHECK_OK(shmkit_chan_open(name, SHMKIT_CHAN_OBSERVER, 0, 0, 0, &obs));
		pid_t pid = t_fork(child_asleep, (void *)name);
		CHECK(pid > 0);
		int64_t t0 = t_now_ns();
		do {
			CHECK(t_now_ns() - t0 < 10 * SHMKIT_SEC);
			sched_yield();
			CHECK_OK(shmkit_chan_stats(obs, &st));
		} while ((consumer ? st.consumer_sleeps : st.producer_sleeps) == 0);
		peer_truncate(name, 0);
		CHECK_EQ(t_wait(pid), 0);
		CHECK(t_now_ns() - t0 < 5 * SHMKIT_SEC);
		/* Our own handles were not touched since: closing them touches the
		 * truncated memory, which the guard turns into nothing worse. */
		CHECK_OK(shmkit_guard_sigbus());
		CHECK_OK(shmkit_chan_close(obs));
		CHECK_OK(shmkit_chan_close(other));
		unlink_truncated(name);
	}
}

/* A truncated file mapped by hand, not through shmkit: touching it is a SIGBUS the
 * guard must leave alone. Returns the mapping. */
static volatile char *foreign_truncated(const char *name)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 8192) == 0);
	void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	CHECK(ftruncate(fd, 0) == 0);
	close(fd);
	return p;
}

static int child_foreign(void *arg)
{
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	volatile char *p = foreign_truncated(arg);
	shmkit_guard_enter(); /* even inside a guarded region: not a shmkit mapping */
	return p[100] == 0 ? 4 : 5; /* must not get here */
}

/* A shmkit segment's data touched by the program itself, outside any shmkit call. */
static int child_own_access(void *arg)
{
	const char *name = arg;
	shmkit_seg *s;
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 4096, 0, SHMKIT_SEG_CREATE, &s));
	peer_truncate(name, 0);
	return ((volatile char *)shmkit_seg_data(s))[10] == 0 ? 4 : 5;
}

/* The same inside shmkit_guard_enter()/leave(): zeros, and the handle says -EFAULT. */
static int child_enter(void *arg)
{
	const char *name = arg;
	shmkit_seg *s;
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 4096, 0, SHMKIT_SEG_CREATE, &s));
	memset(shmkit_seg_data(s), 0x5a, 4096);
	peer_truncate(name, 0);
	shmkit_guard_enter();
	shmkit_guard_enter();
	char c = ((volatile char *)shmkit_seg_data(s))[10];
	shmkit_guard_leave();
	shmkit_guard_leave();
	shmkit_guard_leave(); /* unbalanced: harmless */
	CHECK_EQ(c, 0);
	CHECK_EQ(shmkit_seg_check(s), -EFAULT);
	CHECK_OK(shmkit_seg_close(s));
	return 0;
}

static int child_raise(void *arg)
{
	default_sigbus();
	(void)arg;
	CHECK_OK(shmkit_guard_sigbus());
	raise(SIGBUS);
	return 4;
}

static void test_other_sigbus_kills(void)
{
	const char *foreign = t_name("foreign"), *own = t_name("own"), *enter = t_name("enter");
	CHECK_EQ(t_wait(t_fork(child_foreign, (void *)foreign)), 128 + SIGBUS);
	unlink_truncated(foreign);
	CHECK_EQ(t_wait(t_fork(child_own_access, (void *)own)), 128 + SIGBUS);
	unlink_truncated(own);
	CHECK_EQ(t_wait(t_fork(child_enter, (void *)enter)), 0);
	unlink_truncated(enter);
	CHECK_EQ(t_wait(t_fork(child_raise, NULL)), 128 + SIGBUS);
}

/* A program's own SIGBUS handler, installed before the guard. */
static sigjmp_buf jump;
static volatile sig_atomic_t user_calls, user_code;
static void *volatile user_addr;

static void user_siginfo(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	user_calls++;
	user_code = si->si_code;
	user_addr = si->si_addr;
	if (sig == SIGBUS && si->si_code > 0)
		siglongjmp(jump, 1); /* a fault: skip the access */
}

static void user_plain(int sig)
{
	(void)sig;
	user_calls++;
}

static int child_user_handler(void *arg)
{
	const char *name = arg;
	struct sigaction sa;
	default_sigbus();
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = user_siginfo;
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
	CHECK_OK(shmkit_guard_sigbus());

	/* A fault that is not shmkit's reaches it, with its address. */
	char fname[300];
	snprintf(fname, sizeof fname, "%s-foreign", name);
	volatile char *p = foreign_truncated(fname);
	shm_unlink(fname);
	if (sigsetjmp(jump, 1) == 0) {
		(void)p[4100];
		return 4; /* the access cannot succeed */
	}
	CHECK_EQ(user_calls, 1);
	CHECK_EQ(user_code, BUS_ADRERR);
	CHECK(user_addr == (void *)(p + 4100));

	/* A sent one too. */
	CHECK(kill(getpid(), SIGBUS) == 0);
	CHECK_EQ(user_calls, 2);
	CHECK_EQ(user_code, SI_USER);

	/* A shmkit call's truncation is the guard's: -EFAULT, the handler never called. */
	shmkit_blob *b;
	char buf[BLOB_SIZE];
	CHECK_OK(shmkit_blob_open(name, BLOB_SIZE, 0, SHMKIT_SEG_CREATE, &b));
	peer_truncate(name, 0);
	CHECK_EQ(shmkit_blob_read(b, buf, sizeof buf, NULL), -EFAULT);
	CHECK_EQ(user_calls, 2);
	CHECK_OK(shmkit_blob_close(b));
	return 0;
}

/* A handler without SA_SIGINFO, installed before the guard, is called its own way. */
static int child_plain_handler(void *arg)
{
	default_sigbus();
	(void)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = user_plain;
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
	CHECK_OK(shmkit_guard_sigbus());
	CHECK(kill(getpid(), SIGBUS) == 0);
	CHECK_EQ(user_calls, 1);
	return 0;
}

/* A handler installed after the guard stays in charge when the guard is asked again;
 * SIGBUS reset to the default gets the guard back. */
static int child_later_handler(void *arg)
{
	const char *name = arg;
	struct sigaction sa, cur;
	shmkit_seg *s;
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = user_plain;
	CHECK(sigaction(SIGBUS, &sa, NULL) == 0);
	CHECK_OK(shmkit_guard_sigbus());
	CHECK(sigaction(SIGBUS, NULL, &cur) == 0);
	CHECK(!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == user_plain);
	CHECK(kill(getpid(), SIGBUS) == 0);
	CHECK_EQ(user_calls, 1);
	default_sigbus();
	CHECK_OK(shmkit_guard_sigbus());
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 4096, 0, SHMKIT_SEG_CREATE, &s));
	peer_truncate(name, 0);
	CHECK_EQ(shmkit_seg_check(s), -EFAULT);
	CHECK_EQ(user_calls, 1);
	CHECK_OK(shmkit_seg_close(s));
	return 0;
}

static void test_user_handler(void)
{
	const char *later = t_name("later");
	CHECK_EQ(t_wait(t_fork(child_later_handler, (void *)later)), 0);
	unlink_truncated(later);
	const char *user = t_name("user");
	CHECK_EQ(t_wait(t_fork(child_user_handler, (void *)user)), 0);
	unlink_truncated(user);
	CHECK_EQ(t_wait(t_fork(child_plain_handler, NULL)), 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered is copied into the children */
	if (t_under_valgrind()) {
		/* Memcheck runs the program on a simulated CPU: it does not resume a
		 * faulting access after a handler replaced the mapping under it, so the
		 * guard cannot be exercised there (the sanitizer builds do exercise it). */
		printf("SKIP: the SIGBUS guard cannot run under valgrind\n");
		return T_SKIP;
	}
	atexit(unlink_all_truncated);
	T_RUN(test_calls());
	T_RUN(test_delete());
	T_RUN(test_threads());
	T_RUN(test_asleep());
	T_RUN(test_other_sigbus_kills());
	T_RUN(test_user_handler());
	printf("test_guard: all passed\n");
	return T_PASS;
}
