/* Blob: arguments, snapshot semantics, no torn reads between processes and threads,
 * writers SIGKILLed mid-write, delete, corrupt control blocks. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include "common.h"
#include "internal.h"

#define SCALE (SANITIZED ? 10 : 1)

/* A self-checking snapshot: every 8-byte word is f(writer, count, index). */
static uint64_t word(uint64_t tag, size_t i)
{
	return tag * UINT64_C(0x9e3779b97f4a7c15) + i;
}

static void fill(uint64_t *buf, size_t words, uint64_t tag)
{
	for (size_t i = 0; i < words; i++)
		buf[i] = word(tag, i);
}

/* Returns the tag of a consistent buffer, or UINT64_MAX if words disagree. A zeroed
 * buffer (never written) has tag 0 by convention. */
static uint64_t check_buf(const uint64_t *buf, size_t words)
{
	if (buf[0] == 0 && buf[words - 1] == 0) {
		for (size_t i = 0; i < words; i++)
			if (buf[i])
				return UINT64_MAX;
		return 0;
	}
	uint64_t tag = (buf[0]) * UINT64_C(0xf1de83e19937733d); /* inverse of the odd multiplier */
	for (size_t i = 0; i < words; i++)
		if (buf[i] != word(tag, i))
			return UINT64_MAX;
	return tag;
}

static void test_bad_arguments(void)
{
	shmkit_blob *b = (shmkit_blob *)1;
	const char *name = t_name("blob-args");
	CHECK_EQ(shmkit_blob_open(name, 10, 0, SHMKIT_SEG_CREATE, NULL), -EINVAL);
	CHECK_EQ(shmkit_blob_open(name, 10, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &b), -EINVAL);
	CHECK(b == NULL);
	CHECK_EQ(shmkit_blob_open(name, 0, 0, SHMKIT_SEG_CREATE, &b), -EINVAL);
	CHECK_EQ(shmkit_blob_open(NULL, 10, 0, SHMKIT_SEG_CREATE, &b), -EINVAL);
	CHECK_EQ(shmkit_blob_open(name, (size_t)1 << 60, 0, SHMKIT_SEG_CREATE, &b), -EINVAL);
	CHECK_EQ(shmkit_blob_open(name, 10, 0, 0, &b), -ENOENT);
	CHECK_OK(shmkit_blob_open(name, 10, 0, SHMKIT_SEG_CREATE, &b));
	char buf[16];
	CHECK_EQ(shmkit_blob_write(b, buf, 11), -EMSGSIZE);
	CHECK_EQ(shmkit_blob_write(b, NULL, 1), -EINVAL);
	CHECK_EQ(shmkit_blob_write(NULL, buf, 1), -EINVAL);
	CHECK_EQ(shmkit_blob_read(b, NULL, 1, NULL), -EINVAL);
	CHECK_EQ(shmkit_blob_read(NULL, buf, 1, NULL), -EINVAL);
	CHECK_EQ(shmkit_blob_version(NULL), -EINVAL);
	CHECK_EQ(shmkit_blob_delete(NULL), -EINVAL);
	CHECK_EQ(shmkit_blob_close(NULL), 0);
	shmkit_blob *o;
	CHECK_EQ(shmkit_blob_open(name, 11, 0, 0, &o), -EINVAL);
	/* A plain data segment is not a blob. */
	shmkit_seg *s;
	const char *dname = t_name("blob-data");
	CHECK_OK(shmkit_seg_open(dname, SHMKIT_KIND_DATA, 1000, 0, SHMKIT_SEG_CREATE, &s));
	CHECK_EQ(shmkit_blob_open(dname, 0, 0, 0, &o), -EPROTO);
	shmkit_seg_delete(s);
	shmkit_seg_close(s);
	/* Read-only handles cannot write. */
	CHECK_OK(shmkit_blob_open(name, 0, 0, SHMKIT_SEG_RDONLY, &o));
	CHECK_EQ(shmkit_blob_write(o, buf, 1), -EBADF);
	shmkit_blob_close(o);
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
}

static void test_semantics(unsigned backend)
{
	const char *name = t_name("blob-sem");
	shmkit_blob *b, *o;
	char buf[100];
	uint64_t v = 99;
	CHECK_OK(shmkit_blob_open(name, 100, 0, backend | SHMKIT_SEG_CREATE, &b));
	CHECK_EQ(shmkit_blob_size(b), 100);
	CHECK_EQ(shmkit_blob_version(b), 0);
	memset(buf, 1, sizeof buf);
	CHECK_EQ(shmkit_blob_read(b, buf, sizeof buf, &v), 100);
	CHECK_EQ(v, 0);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(buf[i], 0);
	memset(buf, 'a', sizeof buf);
	CHECK_OK(shmkit_blob_write(b, buf, 100));
	CHECK_OK(shmkit_blob_write(b, "xyz", 3));
	CHECK_EQ(shmkit_blob_version(b), 2);
	/* Another handle, read-only, sees the merge: 3 new bytes, the rest kept. */
	CHECK_OK(shmkit_blob_open(name, 100, 0, backend | SHMKIT_SEG_RDONLY, &o));
	memset(buf, 0, sizeof buf);
	CHECK_EQ(shmkit_blob_read(o, buf, sizeof buf, &v), 100);
	CHECK_EQ(v, 2);
	CHECK(!memcmp(buf, "xyz", 3));
	for (int i = 3; i < 100; i++)
		CHECK_EQ(buf[i], 'a');
	/* A short destination gets a prefix. */
	CHECK_EQ(shmkit_blob_read(o, buf, 2, NULL), 2);
	/* Many writes alternate slots; the merge holds across both. */
	for (int i = 0; i < 1000; i++) {
		char c = (char)('A' + i % 26);
		CHECK_OK(shmkit_blob_write(b, &c, 1));
		CHECK_EQ(shmkit_blob_read(o, buf, sizeof buf, &v), 100);
		CHECK_EQ(buf[0], c);
		CHECK(!memcmp(buf + 1, "yz", 2));
		CHECK_EQ(buf[99], 'a');
		CHECK_EQ(v, 3 + (uint64_t)i);
	}
	CHECK_OK(shmkit_blob_write(b, NULL, 0));
	/* Delete: every other handle gets -EIDRM. */
	CHECK_OK(shmkit_blob_delete(b));
	CHECK_EQ(shmkit_blob_read(o, buf, sizeof buf, NULL), -EIDRM);
	CHECK_EQ(shmkit_blob_write(b, buf, 1), -EIDRM);
	CHECK_EQ(shmkit_blob_version(o), -EIDRM);
	shmkit_blob_close(o);
	shmkit_blob_close(b);
	/* A new blob of the name is fresh. */
	CHECK_OK(shmkit_blob_open(name, 100, 0, backend | SHMKIT_SEG_CREATE, &b));
	CHECK_EQ(shmkit_blob_version(b), 0);
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
}

static void test_corrupt_ctl(void)
{
	const char *name = t_name("blob-corrupt");
	shmkit_blob *b, *o;
	CHECK_OK(shmkit_blob_open(name, 1000, 0, SHMKIT_SEG_CREATE, &b));
	uint64_t *ctl = shmkit_seg_data(shmkit_blob_seg(b));
	/* size and stride sit after the mutex line and the version/seq/slot_ver words */
	uint64_t *size = &ctl[8 + 5], *stride = &ctl[8 + 6];
	uint64_t good = *size;
	const uint64_t bad[] = {0, 1, 960, 1025, 4096, UINT64_MAX, UINT64_MAX / 2};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		*size = bad[i];
		CHECK_EQ(shmkit_blob_open(name, 0, 0, 0, &o), -EPROTO);
	}
	*size = good;
	*stride = 7;
	CHECK_EQ(shmkit_blob_open(name, 0, 0, 0, &o), -EPROTO);
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
}

/* The control words as a peer sees them: after the mutex's 64 bytes come version,
 * seq[2], slot_ver[2], size and stride (8 bytes each). */
enum { CTL_VERSION = 8, CTL_SEQ = 9 };

static unsigned odd_backend;

/* In a child (a reader that spins forever must fail the test, not hang it): reads of
 * a blob whose current slot a peer marked odd. */
static int odd_reader(void *arg)
{
	const char *name = arg;
	shmkit_blob *o;
	char buf[1000];
	alarm(10);
	if (shmkit_blob_open(name, 0, 0, odd_backend | SHMKIT_SEG_RDONLY, &o) < 0)
		return 2;
	int64_t t0 = t_now_ns();
	ssize_t r = shmkit_blob_read(o, buf, sizeof buf, NULL);
	int64_t dt = t_now_ns() - t0;
	shmkit_blob_close(o);
	if (r != -EPROTO)
		return 3;
	/* The bound is 10 ms of retries; a second leaves room for a loaded machine. */
	return dt < SHMKIT_SEC ? 0 : 4;
}

/* Sequence words a peer made odd: a reader never spins on them (-EPROTO in bounded
 * time, even read-only), and writers clear them. */
static void test_corrupt_seq(unsigned backend)
{
	const char *name = t_name(backend ? "blob-seq-sysv" : "blob-seq");
	shmkit_blob *b;
	char buf[1000], got[1000];
	CHECK_OK(shmkit_blob_open(name, sizeof buf, 0, backend | SHMKIT_SEG_CREATE, &b));
	odd_backend = backend;
	_Atomic uint64_t *ctl = shmkit_seg_data(shmkit_blob_seg(b));
	memset(buf, 'a', sizeof buf);
	CHECK_OK(shmkit_blob_write(b, buf, sizeof buf));

	/* The current slot odd, nobody writing: -EPROTO, for a reader-only process and for
	 * the writer's own handle. */
	uint64_t v = atomic_load(&ctl[CTL_VERSION]);
	atomic_fetch_add(&ctl[CTL_SEQ + (v & 1)], 1);
	pid_t pid = t_fork(odd_reader, (void *)name);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), -EPROTO);
	/* A write publishes the other slot: readable again, with that write. */
	memset(buf, 'b', sizeof buf);
	CHECK_OK(shmkit_blob_write(b, buf, sizeof buf));
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), (ssize_t)sizeof got);
	CHECK(!memcmp(got, buf, sizeof buf));
	/* The next write fills the slot whose sequence is still odd: it must leave it even
	 * (a writer that added 2 to an odd value would publish a slot no reader can read). */
	memset(buf, 'c', sizeof buf);
	CHECK_OK(shmkit_blob_write(b, buf, sizeof buf));
	v = atomic_load(&ctl[CTL_VERSION]);
	CHECK_EQ(atomic_load(&ctl[CTL_SEQ + (v & 1)]) & 1, 0);
	pid = t_fork(odd_reader, (void *)name);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 3); /* the reader now reads: r is 1000, not -EPROTO */
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), (ssize_t)sizeof got);
	CHECK(!memcmp(got, buf, sizeof buf));

	/* The idle slot odd: readers are not directed to it; the next write evens it. */
	atomic_fetch_add(&ctl[CTL_SEQ + ((v & 1) ^ 1)], 1);
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), (ssize_t)sizeof got);
	memset(buf, 'd', sizeof buf);
	CHECK_OK(shmkit_blob_write(b, buf, sizeof buf));
	CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), (ssize_t)sizeof got);
	CHECK(!memcmp(got, buf, sizeof buf));

	/* version is any number a peer likes: only its low bit picks a slot, and a count
	 * no number of writes can reach (2^63 or more) is reported as -EPROTO, never as a
	 * negative number that would read as an error code. */
	const uint64_t versions[] = {UINT64_MAX, UINT64_MAX - 1, 0, 1ull << 63};
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		atomic_store(&ctl[CTL_VERSION], versions[i]);
		CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), (ssize_t)sizeof got);
		CHECK_EQ(shmkit_blob_version(b),
			 versions[i] > INT64_MAX ? -EPROTO : (int64_t)versions[i]);
		memset(buf, 'e' + (int)i, sizeof buf);
		CHECK_OK(shmkit_blob_write(b, buf, sizeof buf));
		CHECK_EQ(shmkit_blob_read(b, got, sizeof got, NULL), (ssize_t)sizeof got);
		CHECK(!memcmp(got, buf, sizeof buf));
	}
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
}

enum { WORDS = 8192 }; /* 64 KiB: copies are long enough to overlap writes */

struct stress {
	atomic_int stop;
	atomic_uint_fast64_t reads, torn;
	const char *name;
	unsigned backend;
	int id;
};

static int writer_loop(struct stress *st, int id, int iters)
{
	shmkit_blob *b;
	uint64_t *buf = malloc(WORDS * 8);
	if (!buf || shmkit_blob_open(st->name, 0, 0, st->backend, &b) < 0)
		return 2;
	for (int n = 1; n <= iters; n++) {
		fill(buf, WORDS, (uint64_t)id << 32 | (uint64_t)n);
		if (shmkit_blob_write(b, buf, WORDS * 8) < 0)
			return 3;
	}
	shmkit_blob_close(b);
	free(buf);
	return 0;
}

static int reader_loop(struct stress *st)
{
	shmkit_blob *b;
	uint64_t *buf = malloc(WORDS * 8);
	if (!buf || shmkit_blob_open(st->name, 0, 0, st->backend | SHMKIT_SEG_RDONLY, &b) < 0)
		return 2;
	uint64_t lastv = 0;
	while (!atomic_load(&st->stop)) {
		uint64_t v;
		if (shmkit_blob_read(b, buf, WORDS * 8, &v) != WORDS * 8)
			return 3;
		if (check_buf(buf, WORDS) == UINT64_MAX)
			atomic_fetch_add(&st->torn, 1);
		if (v < lastv) /* versions never go backwards */
			atomic_fetch_add(&st->torn, 1);
		lastv = v;
		atomic_fetch_add(&st->reads, 1);
	}
	shmkit_blob_close(b);
	free(buf);
	return 0;
}

static void test_processes(unsigned backend)
{
	enum { WRITERS = 3, READERS = 3 };
	struct stress *st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(st != MAP_FAILED);
	memset(st, 0, sizeof *st);
	st->name = t_name("blob-procs");
	st->backend = backend;
	shmkit_blob *b;
	CHECK_OK(shmkit_blob_open(st->name, WORDS * 8, 0, backend | SHMKIT_SEG_CREATE, &b));
	pid_t w[WRITERS], r[READERS];
	for (int i = 0; i < READERS; i++)
		if ((r[i] = t_fork_raw()) == 0)
			_exit(reader_loop(st));
	for (int i = 0; i < WRITERS; i++)
		if ((w[i] = t_fork_raw()) == 0)
			_exit(writer_loop(st, i + 1, 3000 / SCALE));
	for (int i = 0; i < WRITERS; i++)
		CHECK_EQ(t_wait(w[i]), 0);
	atomic_store(&st->stop, 1);
	for (int i = 0; i < READERS; i++)
		CHECK_EQ(t_wait(r[i]), 0);
	CHECK_EQ(atomic_load(&st->torn), 0);
	CHECK(atomic_load(&st->reads) > 0);
	CHECK_EQ(shmkit_blob_version(b), WRITERS * (3000 / SCALE));
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
	munmap(st, sizeof *st);
}

static struct stress tstate;
static void *thread_writer(void *arg)
{
	return (void *)(intptr_t)writer_loop(&tstate, (int)(intptr_t)arg, 1000 / SCALE);
}
static void *thread_reader(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)reader_loop(&tstate);
}

/* The same algorithm between threads, where ThreadSanitizer can see it. */
static void test_threads(void)
{
	enum { N = 2 };
	pthread_t w[N], r[N];
	void *ret;
	tstate.name = t_name("blob-threads");
	shmkit_blob *b;
	CHECK_OK(shmkit_blob_open(tstate.name, WORDS * 8, 0, SHMKIT_SEG_CREATE, &b));
	for (int i = 0; i < N; i++) {
		CHECK_EQ(pthread_create(&r[i], NULL, thread_reader, NULL), 0);
		CHECK_EQ(pthread_create(&w[i], NULL, thread_writer, (void *)(intptr_t)(i + 1)), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(w[i], &ret);
		CHECK_EQ((intptr_t)ret, 0);
	}
	atomic_store(&tstate.stop, 1);
	for (int i = 0; i < N; i++) {
		pthread_join(r[i], &ret);
		CHECK_EQ((intptr_t)ret, 0);
	}
	CHECK_EQ(atomic_load(&tstate.torn), 0);
	CHECK_EQ(shmkit_blob_version(b), N * (1000 / SCALE));
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
}

/* A writer SIGKILLed at random moments, most of them mid-copy of a 1 MiB buffer:
 * survivors never deadlock, never see a partial write, and lose nothing committed. */
static void test_sigkill(unsigned backend)
{
	enum { BIGWORDS = 1 << 17 };
	struct shared {
		atomic_uint_fast64_t committed; /* tag of the last write that returned */
	} *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	const char *name = t_name("blob-kill");
	shmkit_blob *b;
	uint64_t *buf = malloc(BIGWORDS * 8);
	CHECK(buf);
	CHECK_OK(shmkit_blob_open(name, BIGWORDS * 8, 0, backend | SHMKIT_SEG_CREATE, &b));
	uint64_t seed = (uint64_t)getpid() * 7919;
	int rounds = 60 / SCALE + 5;
	for (int round = 0; round < rounds; round++) {
		atomic_store(&sh->committed, 0);
		pid_t pid = t_fork_raw();
		if (pid == 0) {
			shmkit_blob *c;
			if (shmkit_blob_open(name, 0, 0, backend, &c) < 0)
				_exit(2);
			for (uint64_t n = 1;; n++) {
				uint64_t tag = (uint64_t)(round + 1) << 32 | n;
				fill(buf, BIGWORDS, tag);
				if (shmkit_blob_write(c, buf, BIGWORDS * 8) < 0)
					_exit(3);
				atomic_store(&sh->committed, tag);
			}
		}
		/* Let it write at least once, then kill it after a random delay. */
		while (atomic_load(&sh->committed) == 0)
			sched_yield();
		struct timespec d = {0, (long)(t_rand(&seed) % 2000000)};
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
		CHECK_EQ(t_wait(pid), 128 + SIGKILL);
		uint64_t committed = atomic_load(&sh->committed);
		uint64_t v;
		CHECK_EQ(shmkit_blob_read(b, buf, BIGWORDS * 8, &v), BIGWORDS * 8);
		uint64_t tag = check_buf(buf, BIGWORDS);
		CHECK(tag != UINT64_MAX);                     /* never torn or partial */
		CHECK(tag >> 32 == (uint64_t)round + 1);      /* this round's writer */
		CHECK((tag & 0xffffffff) >= (committed & 0xffffffff)); /* nothing lost */
		CHECK((tag & 0xffffffff) <= (committed & 0xffffffff) + 1);
		/* The survivor writes at once: the dead writer's lock is recovered. */
		alarm(30);
		fill(buf, BIGWORDS, 1);
		CHECK_OK(shmkit_blob_write(b, buf, BIGWORDS * 8));
		alarm(0);
		CHECK_EQ(shmkit_blob_read(b, buf, BIGWORDS * 8, NULL), BIGWORDS * 8);
		CHECK_EQ(check_buf(buf, BIGWORDS), 1);
	}
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
	free(buf);
	munmap(sh, sizeof *sh);
}

int main(void)
{
	test_bad_arguments();
	test_corrupt_ctl();
	test_corrupt_seq(0);
	test_corrupt_seq(SHMKIT_SEG_SYSV);
	test_semantics(0);
	test_semantics(SHMKIT_SEG_SYSV);
	test_threads();
	test_processes(0);
	test_processes(SHMKIT_SEG_SYSV);
	test_sigkill(0);
	test_sigkill(SHMKIT_SEG_SYSV);
	printf("test_blob: ok\n");
	return T_PASS;
}
