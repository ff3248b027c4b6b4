/* The seed-000 compat API (shmem_*): argument checks, file and path handling, sizes,
 * partial writes, whole-buffer atomicity between processes and between threads, writers
 * SIGKILLed mid-write, delete, racing creators, leaks, read-only fallback, segment modes
 * masked to owner and group, non-regular key files, and segments squatted by another
 * user. */
#include <grp.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>

#include <shmkit/shmem.h>

#include "common.h"

/* ThreadSanitizer makes each fork and each instrumented 1 MiB pattern slow. */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#else
#define TSAN 0
#endif

#define TORN_SIZE (64 * 1024)           /* big enough that copies overlap */
#define TORN_WRITES (SANITIZED ? 400 : 3000) /* per writer */
#define TORN_WRITERS 4
#define TORN_READERS 4
#define KILL_SIZE (1024 * 1024) /* so that kills land mid-copy */
#define KILL_ROUNDS (TSAN ? 16 : SANITIZED ? 40 : 100)
#define SURVIVOR_ROUNDS (TSAN ? 6 : SANITIZED ? 15 : 30)
#define LEAK_CYCLES 3000
#define GUARD_SECONDS 280

static pid_t main_pid;
static char dir[256];            /* canonical /tmp: paths below are their own realpath */
static char paths[32][PATH_MAX]; /* every file (and segment) this test makes */
static int npaths;

/* Removes whatever a failed check left behind; in the test process only. */
static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	for (int i = 0; i < npaths; i++) {
		shmkit_seg_unlink(paths[i], SHMKIT_SEG_SYSV);
		unlink(paths[i]);
	}
}

/* A hang (a lost lock, a stuck child) fails with the files and segments removed. In a
 * child (which inherits it) cleanup does nothing. */
static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test_shmem: timed out\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	cleanup();
	_exit(T_FAIL);
}

/* A unique absolute path "<tmp>/shmkit-test-<pid>-<tag>", removed at exit; no file yet. */
static char *tpath(const char *tag)
{
	CHECK(npaths < 32);
	char *p = paths[npaths++];
	snprintf(p, PATH_MAX, "%s/shmkit-test-%d-%s", dir, (int)main_pid, tag);
	unlink(p);
	return p;
}

/* Delete a handle's segment and the file. */
static void drop(shmem_t **h, const char *path)
{
	CHECK_EQ(shmem_delete(h), 0);
	CHECK(*h == NULL);
	CHECK_EQ(unlink(path), 0);
}

static void *shared_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

static void await_int(_Atomic int *v, int want)
{
	for (unsigned i = 0; atomic_load(v) < want; i++) {
		if (i < 1000) {
			sched_yield();
		} else {
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
	}
}

/* ------------------------------------------------------------ patterns */

/* A self-checking buffer: word 0 is the write's id (nonzero), word k a function of the
 * id and k. Any mix of two writes, shift or stale tail breaks some word. */
static uint64_t mix(uint64_t id, uint64_t k)
{
	uint64_t x = id * UINT64_C(0x9E3779B97F4A7C15) ^ (k + 1) * UINT64_C(0xD1B54A32D192ED03);
	return x ^ (x >> 29);
}

static void fill(uint64_t *buf, size_t bytes, uint64_t id)
{
	size_t n = bytes / 8;
	buf[0] = id;
	for (size_t k = 1; k < n; k++)
		buf[k] = mix(id, k);
}

#define BAD_PATTERN UINT64_MAX

/* The id of a complete pattern, 0 for an all-zero (never written) buffer, or
 * BAD_PATTERN for anything else (a torn or partial buffer). */
static uint64_t verify(const uint64_t *buf, size_t bytes)
{
	size_t n = bytes / 8;
	uint64_t id = buf[0];
	for (size_t k = 1; k < n; k++)
		if (buf[k] != (id ? mix(id, k) : 0)) {
			fprintf(stderr, "torn buffer: id %#" PRIx64 ", word %zu is %#" PRIx64 "\n", id,
				k, buf[k]);
			return BAD_PATTERN;
		}
	return id;
}

/* Ids: writer key in the top 16 bits, the writer's counter below. */
#define ID(key, count) (((uint64_t)(key) << 48) | (uint64_t)(count))
#define KEY_OF(id) ((unsigned)((id) >> 48))
#define COUNT_OF(id) ((id) & ((UINT64_C(1) << 48) - 1))

/* ------------------------------------------------------------ arguments and basics */

static void test_bad_arguments(void)
{
	char *p = tpath("args");
	char buf[64], big[200];
	shmem_t *nul = NULL;

	errno = 0;
	CHECK(shmem_open(NULL, 64) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(shmem_open("", 64) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(shmem_open(p, 0) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(access(p, F_OK) < 0); /* refused before touching the file */

	/* A canonical path longer than a segment name. */
	/* A canonical path longer than a segment name (each component is legal). */
	char *longp = tpath("long-");
	size_t n = strlen(longp), base = n - strlen(strrchr(longp, '/') + 1);
	memset(longp + n, 'x', base + 255 - n);
	longp[base + 255] = '\0';
	CHECK(strlen(longp) > SHMKIT_NAME_MAX);
	errno = 0;
	CHECK(shmem_open(longp, 64) == NULL);
	CHECK_EQ(errno, ENAMETOOLONG);
	unlink(longp);

	shmem_t *h = shmem_open(p, 64);
	CHECK(h != NULL);
	/* One row per invalid call: -1 with errno EINVAL. */
#define ROW(call)                                                                          \
	do {                                                                               \
		errno = 0;                                                                 \
		CHECK_EQ(call, -1);                                                        \
		CHECK_EQ(errno, EINVAL);                                                   \
	} while (0)
	ROW(shmem_close(NULL));
	ROW(shmem_close(&nul));
	ROW(shmem_read(NULL, buf, sizeof buf));
	ROW(shmem_read(&nul, buf, sizeof buf));
	ROW(shmem_read(&h, NULL, sizeof buf));
	ROW(shmem_read(&h, buf, sizeof buf - 1));
	ROW(shmem_read(&h, buf, 0));
	ROW(shmem_write(NULL, buf, sizeof buf));
	ROW(shmem_write(&nul, buf, sizeof buf));
	ROW(shmem_write(&h, NULL, sizeof buf));
	ROW(shmem_write(&h, big, sizeof buf + 1));
	ROW(shmem_write(&h, big, sizeof big));
	ROW(shmem_delete(NULL));
	ROW(shmem_delete(&nul));
#undef ROW
	CHECK(h != NULL); /* failed calls leave the handle alone */
	CHECK(nul == NULL);
	/* The boundaries are allowed: read into a larger buffer, write exactly the size. */
	memset(big, 7, sizeof big);
	CHECK_EQ(shmem_write(&h, big, 64), 0);
	memset(big, 0, sizeof big);
	CHECK_EQ(shmem_read(&h, big, sizeof big), 0);
	for (int i = 0; i < 64; i++)
		CHECK_EQ(big[i], 7);
	CHECK_EQ(big[64], 0); /* nothing beyond the segment size is written */
	CHECK_EQ(shmem_close(&h), 0);
	CHECK(h == NULL);
	h = shmem_open(p, 64);
	CHECK(h != NULL);
	drop(&h, p);
}

static void test_files_and_paths(void)
{
	char *p = tpath("paths");
	char buf[128], out[128];

	/* The file is created if missing. */
	CHECK(access(p, F_OK) < 0);
	shmem_t *a = shmem_open(p, sizeof buf);
	CHECK(a != NULL);
	struct stat st;
	CHECK_EQ(stat(p, &st), 0);
	CHECK(S_ISREG(st.st_mode));

	/* A new segment reads as zeros. */
	memset(out, 0xA5, sizeof out);
	CHECK_EQ(shmem_read(&a, out, sizeof out), 0);
	for (size_t i = 0; i < sizeof out; i++)
		CHECK_EQ(out[i], 0);

	/* "./name" from its directory, and a non-canonical absolute path, reach it too. */
	int cwd = open(".", O_RDONLY | O_DIRECTORY);
	CHECK(cwd >= 0);
	CHECK_EQ(chdir(dir), 0);
	char rel[PATH_MAX], dotted[PATH_MAX];
	snprintf(rel, sizeof rel, "./%s", strrchr(p, '/') + 1);
	snprintf(dotted, sizeof dotted, "%s/./../%s/%s", dir, strrchr(dir, '/') + 1,
		 strrchr(p, '/') + 1);
	shmem_t *b = shmem_open(rel, sizeof buf);
	CHECK(b != NULL);
	CHECK_EQ(fchdir(cwd), 0);
	close(cwd);
	shmem_t *c = shmem_open(dotted, sizeof buf);
	CHECK(c != NULL);
	memset(buf, 'r', sizeof buf);
	CHECK_EQ(shmem_write(&b, buf, sizeof buf), 0);
	CHECK_EQ(shmem_read(&a, out, sizeof out), 0);
	CHECK(memcmp(out, buf, sizeof buf) == 0);
	memset(buf, 'c', sizeof buf);
	CHECK_EQ(shmem_write(&c, buf, sizeof buf), 0);
	CHECK_EQ(shmem_read(&b, out, sizeof out), 0);
	CHECK(memcmp(out, buf, sizeof buf) == 0);

	/* An existing segment has one size. */
	errno = 0;
	CHECK(shmem_open(p, sizeof buf * 2) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(shmem_open(p, sizeof buf - 1) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(shmem_read(&a, out, sizeof out), 0); /* untouched by the refusals */
	CHECK(memcmp(out, buf, sizeof buf) == 0);

	/* A partial write replaces its bytes only; the tail keeps its values. */
	memset(buf, 'p', 10);
	CHECK_EQ(shmem_write(&a, buf, 10), 0);
	CHECK_EQ(shmem_read(&c, out, sizeof out), 0);
	for (size_t i = 0; i < sizeof out; i++)
		CHECK_EQ(out[i], i < 10 ? 'p' : 'c');
	CHECK_EQ(shmem_write(&a, buf, 0), 0); /* an empty write changes nothing */
	CHECK_EQ(shmem_read(&c, out, sizeof out), 0);
	for (size_t i = 0; i < sizeof out; i++)
		CHECK_EQ(out[i], i < 10 ? 'p' : 'c');

	CHECK_EQ(shmem_close(&b), 0);
	CHECK_EQ(shmem_close(&c), 0);
	drop(&a, p);
}

/* ------------------------------------------------------------ torn buffers */

struct torn {
	_Atomic int started;    /* threads/processes at the start line */
	_Atomic int writers_done;
	_Atomic long reads;     /* complete patterns seen by readers */
	_Atomic long nonzero;   /* ... of which written ones */
	_Atomic int failed;
};

struct torn_arg {
	struct torn *t;
	const char *path;
	shmem_t **shared; /* one handle for all, or NULL: each opens its own */
	int index;
};

static shmem_t **torn_handle(struct torn_arg *a, shmem_t **own)
{
	if (a->shared)
		return a->shared;
	*own = shmem_open((char *)a->path, TORN_SIZE);
	return *own ? own : NULL;
}

static void torn_release(struct torn_arg *a, shmem_t **own)
{
	if (!a->shared && *own && shmem_close(own) != 0)
		atomic_store(&a->t->failed, 1);
}

static int torn_writer(void *arg)
{
	struct torn_arg *a = arg;
	shmem_t *own = NULL, **h = torn_handle(a, &own);
	uint64_t *buf = malloc(TORN_SIZE);
	if (!h || !buf)
		return 2;
	atomic_fetch_add(&a->t->started, 1);
	await_int(&a->t->started, TORN_WRITERS + TORN_READERS);
	int r = 0;
	for (uint64_t c = 1; c <= TORN_WRITES && !r; c++) {
		fill(buf, TORN_SIZE, ID(a->index + 1, c));
		if (shmem_write(h, buf, TORN_SIZE) != 0) {
			fprintf(stderr, "writer %d: shmem_write: %s\n", a->index, strerror(errno));
			r = 3;
		}
	}
	atomic_fetch_add(&a->t->writers_done, 1);
	torn_release(a, &own);
	free(buf);
	return r;
}

static int torn_reader(void *arg)
{
	struct torn_arg *a = arg;
	shmem_t *own = NULL, **h = torn_handle(a, &own);
	uint64_t *buf = malloc(TORN_SIZE);
	uint64_t last[TORN_WRITERS + 1] = {0};
	if (!h || !buf)
		return 2;
	atomic_fetch_add(&a->t->started, 1);
	await_int(&a->t->started, TORN_WRITERS + TORN_READERS);
	int r = 0;
	long reads = 0, nonzero = 0;
	/* One more read after the writers finish: it must see a last write. */
	for (int done = 0; !r;) {
		int finished = atomic_load(&a->t->writers_done) == TORN_WRITERS;
		if (shmem_read(h, buf, TORN_SIZE) != 0) {
			fprintf(stderr, "reader %d: shmem_read: %s\n", a->index, strerror(errno));
			r = 3;
			break;
		}
		uint64_t id = verify(buf, TORN_SIZE);
		if (id == BAD_PATTERN) {
			r = 4;
			break;
		}
		reads++;
		if (id) {
			unsigned w = KEY_OF(id);
			/* Reads are linearizable: never an older write of a writer after a newer. */
			if (w < 1 || w > TORN_WRITERS || COUNT_OF(id) < last[w]) {
				fprintf(stderr, "reader %d: id %#" PRIx64 " after %#" PRIx64 "\n",
					a->index, id, last[w]);
				r = 5;
				break;
			}
			last[w] = COUNT_OF(id);
			nonzero++;
		}
		if (finished) {
			if (done++ == 0 && (id == 0 || COUNT_OF(id) != TORN_WRITES))
				r = 6; /* the final state is some writer's last write */
			break;
		}
	}
	atomic_fetch_add(&a->t->reads, reads);
	atomic_fetch_add(&a->t->nonzero, nonzero);
	torn_release(a, &own);
	free(buf);
	return r;
}

static void test_torn_processes(void)
{
	char *p = tpath("torn-proc");
	shmem_t *h = shmem_open(p, TORN_SIZE);
	CHECK(h != NULL);
	struct torn *t = shared_map(sizeof *t);
	struct torn_arg args[TORN_WRITERS + TORN_READERS];
	pid_t pids[TORN_WRITERS + TORN_READERS];
	for (int i = 0; i < TORN_WRITERS + TORN_READERS; i++) {
		args[i] = (struct torn_arg){t, p, NULL, i < TORN_WRITERS ? i : i - TORN_WRITERS};
		pids[i] = t_fork(i < TORN_WRITERS ? torn_writer : torn_reader, &args[i]);
		CHECK(pids[i] > 0);
	}
	for (int i = 0; i < TORN_WRITERS + TORN_READERS; i++)
		CHECK_EQ(t_wait(pids[i]), 0);
	CHECK(atomic_load(&t->nonzero) > 0);
	printf("torn (processes): %ld reads, %ld of written data\n", atomic_load(&t->reads),
	       atomic_load(&t->nonzero));
	uint64_t *buf = malloc(TORN_SIZE);
	CHECK(buf);
	CHECK_EQ(shmem_read(&h, buf, TORN_SIZE), 0);
	uint64_t id = verify(buf, TORN_SIZE);
	CHECK(id != BAD_PATTERN && id != 0);
	CHECK_EQ(COUNT_OF(id), TORN_WRITES);
	free(buf);
	munmap(t, sizeof *t);
	drop(&h, p);
}

static void *torn_thread(void *arg)
{
	struct torn_arg *a = arg;
	int r = a->index >= 100 ? torn_reader(arg) : torn_writer(arg);
	return (void *)(intptr_t)r;
}

static void test_torn_threads(int shared_handle)
{
	char *p = tpath(shared_handle ? "torn-thr-shared" : "torn-thr-own");
	shmem_t *h = shmem_open(p, TORN_SIZE);
	CHECK(h != NULL);
	struct torn *t = shared_map(sizeof *t);
	struct torn_arg args[TORN_WRITERS + TORN_READERS];
	pthread_t th[TORN_WRITERS + TORN_READERS];
	for (int i = 0; i < TORN_WRITERS + TORN_READERS; i++) {
		args[i] = (struct torn_arg){t, p, shared_handle ? &h : NULL,
					    i < TORN_WRITERS ? i : i - TORN_WRITERS};
		if (i >= TORN_WRITERS)
			args[i].index += 100; /* tells torn_thread it is a reader */
		CHECK_EQ(pthread_create(&th[i], NULL, torn_thread, &args[i]), 0);
	}
	for (int i = 0; i < TORN_WRITERS + TORN_READERS; i++) {
		void *ret;
		CHECK_EQ(pthread_join(th[i], &ret), 0);
		CHECK_EQ((intptr_t)ret, 0);
	}
	CHECK(atomic_load(&t->nonzero) > 0);
	printf("torn (threads, %s handle): %ld reads, %ld of written data\n",
	       shared_handle ? "one" : "per-thread", atomic_load(&t->reads),
	       atomic_load(&t->nonzero));
	munmap(t, sizeof *t);
	drop(&h, p);
}

/* ------------------------------------------------------------ writers killed mid-write */

struct killctl {
	_Atomic uint64_t published[2]; /* last count each writer saw shmem_write complete */
	_Atomic int started[2];        /* the writer opened its handle */
	_Atomic int stop;              /* readers and survivor: finish */
	_Atomic int monotonic;         /* readers: ids only grow (one writer at a time) */
	_Atomic long reads;
};

static struct killctl *kc;
static const char *kill_path;

/* Writes ID(key, 1), ID(key, 2), ... until stopped or killed, publishing each count
 * after shmem_write returns. slot: 0 the victim, 1 the survivor. */
static int kill_writer(void *arg)
{
	unsigned key = (unsigned)(uintptr_t)arg;
	int slot = key == 0x7FFF;
	alarm(60);
	shmem_t *h = shmem_open((char *)kill_path, KILL_SIZE);
	uint64_t *buf = malloc(KILL_SIZE);
	if (!h || !buf)
		return 2;
	atomic_store(&kc->started[slot], 1);
	for (uint64_t c = 1; !atomic_load(&kc->stop); c++) {
		fill(buf, KILL_SIZE, ID(key, c));
		if (shmem_write(&h, buf, KILL_SIZE) != 0) {
			fprintf(stderr, "writer %#x: shmem_write: %s\n", key, strerror(errno));
			return 3;
		}
		atomic_store_explicit(&kc->published[slot], c, memory_order_release);
	}
	shmem_close(&h);
	free(buf);
	return 0;
}

/* Reads until stopped: every read is a complete pattern; with one writer at a time the
 * ids never go back. */
static int kill_reader(void *arg)
{
	(void)arg;
	alarm(120);
	shmem_t *h = shmem_open((char *)kill_path, KILL_SIZE);
	uint64_t *buf = malloc(KILL_SIZE);
	uint64_t last = 0, survivor = 0;
	long reads = 0;
	if (!h || !buf)
		return 2;
	while (!atomic_load(&kc->stop)) {
		if (shmem_read(&h, buf, KILL_SIZE) != 0) {
			fprintf(stderr, "reader: shmem_read: %s\n", strerror(errno));
			return 3;
		}
		uint64_t id = verify(buf, KILL_SIZE);
		if (id == BAD_PATTERN)
			return 4;
		if (atomic_load(&kc->monotonic) && id < last) {
			fprintf(stderr, "reader: id %#" PRIx64 " after %#" PRIx64 "\n", id, last);
			return 5;
		}
		if (KEY_OF(id) == 0x7FFF) {
			if (COUNT_OF(id) < survivor)
				return 6;
			survivor = COUNT_OF(id);
		}
		last = id;
		reads++;
	}
	atomic_fetch_add(&kc->reads, reads);
	shmem_close(&h);
	free(buf);
	return 0;
}

/* Start a victim writer with this key, let it write for 0-2 ms (from its first
 * completed write if settled, else from its open), SIGKILL it, reap it. Returns the
 * last count it reported complete. */
static uint64_t run_victim(unsigned key, int settled, uint64_t *seed)
{
	atomic_store(&kc->published[0], 0);
	atomic_store(&kc->started[0], 0);
	pid_t pid = t_fork(kill_writer, (void *)(uintptr_t)key);
	CHECK(pid > 0);
	await_int(&kc->started[0], 1);
	while (settled && atomic_load(&kc->published[0]) == 0)
		sched_yield();
	struct timespec ts = {0, (long)(t_rand(seed) % 2000001)};
	nanosleep(&ts, NULL);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	int st = t_wait(pid);
	if (st != 128 + SIGKILL) {
		fprintf(stderr, "victim %#x exited with %d before the kill\n", key, st);
		exit(T_FAIL);
	}
	return atomic_load_explicit(&kc->published[0], memory_order_acquire);
}

static void test_killed_writers(void)
{
	char *p = tpath("kill");
	kill_path = p;
	kc = shared_map(sizeof *kc);
	uint64_t seed = (uint64_t)t_now_ns() | 1;
	printf("killed writers: seed %#" PRIx64 "\n", seed);
	shmem_t *h = shmem_open(p, KILL_SIZE);
	CHECK(h != NULL);
	/* Static: the reader children forked below inherit it and exit without freeing
	 * it, which memcheck (make valgrind) would otherwise count as their leak. */
	static uint64_t *buf;
	buf = malloc(KILL_SIZE);
	CHECK(buf);
	/* White-box, to show the kills land inside writes: the blob's data area starts with
	 * its writers' robust mutex, whose first word (glibc) is the futex the kernel marks
	 * FUTEX_OWNER_DIED when its owner dies holding it. */
	shmkit_seg *raw;
	CHECK_OK(shmkit_seg_open(p, SHMKIT_KIND_BLOB, 0, 0, SHMKIT_SEG_SYSV, &raw));
	const _Atomic uint32_t *lockword = shmkit_seg_data(raw);
	int held = 0;

	/* Phase 1: one victim at a time; after each kill the survivors (the parent and two
	 * readers) find the last complete write, at least as new as the last one the victim
	 * saw complete, and the parent's own write goes through at once. */
	atomic_store(&kc->monotonic, 1);
	pid_t readers[2];
	for (int i = 0; i < 2; i++)
		CHECK((readers[i] = t_fork(kill_reader, NULL)) > 0);
	uint64_t prev = 0; /* the parent's last write */
	int completed = 0, unreported = 0;
	for (unsigned round = 1; round <= KILL_ROUNDS; round++) {
		uint64_t pub = run_victim(round, round % 2, &seed);
		held += (atomic_load(lockword) & FUTEX_OWNER_DIED) != 0;
		CHECK_EQ(shmem_read(&h, buf, KILL_SIZE), 0);
		uint64_t id = verify(buf, KILL_SIZE);
		CHECK(id != BAD_PATTERN);
		if (pub) {
			/* Its last reported write, or the one it finished before it could
			 * report it. */
			CHECK(id == ID(round, pub) || id == ID(round, pub + 1));
		} else {
			CHECK(id == prev || id == ID(round, 1));
		}
		completed += pub > 0;
		unreported += id == ID(round, pub + 1);
		alarm(10); /* the lock the victim may have died holding must not hang us */
		int64_t t0 = t_now_ns();
		prev = ID(round, UINT64_C(0xFFFFFFFFFF));
		fill(buf, KILL_SIZE, prev);
		CHECK_EQ(shmem_write(&h, buf, KILL_SIZE), 0);
		alarm(GUARD_SECONDS);
		CHECK(t_now_ns() - t0 < 5 * SHMKIT_SEC); /* promptly, not after a lock timeout */
		memset(buf, 0, KILL_SIZE);
		CHECK_EQ(shmem_read(&h, buf, KILL_SIZE), 0);
		CHECK_EQ(verify(buf, KILL_SIZE), prev);
	}
	printf("killed writers: %d rounds, %d killed inside shmem_write holding its lock, %d "
	       "after a complete write, %d of them before reporting it\n", KILL_ROUNDS, held,
	       completed, unreported);
	/* With 100 rounds, none landing in a write means the test lost its point. */
	CHECK(SANITIZED || held > 0);

	/* Phase 2: a survivor writer runs throughout; each kill of a victim may land while
	 * the survivor waits for the lock, and it must keep writing. */
	atomic_store(&kc->monotonic, 0);
	atomic_store(&kc->started[1], 0);
	pid_t surv = t_fork(kill_writer, (void *)(uintptr_t)0x7FFF);
	CHECK(surv > 0);
	await_int(&kc->started[1], 1);
	for (unsigned round = 1; round <= SURVIVOR_ROUNDS; round++) {
		run_victim(0x100 + round, round % 2, &seed);
		alarm(10);
		uint64_t s0 = atomic_load(&kc->published[1]);
		while (atomic_load(&kc->published[1]) < s0 + 2)
			sched_yield();
		alarm(GUARD_SECONDS);
		CHECK_EQ(shmem_read(&h, buf, KILL_SIZE), 0);
		CHECK(verify(buf, KILL_SIZE) != BAD_PATTERN);
	}
	atomic_store(&kc->stop, 1);
	CHECK_EQ(t_wait(surv), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(t_wait(readers[i]), 0);
	CHECK(atomic_load(&kc->reads) > 0);
	printf("killed writers: readers verified %ld buffers\n", atomic_load(&kc->reads));
	shmkit_seg_close(raw);
	free(buf);
	munmap(kc, sizeof *kc);
	drop(&h, p);
}

/* ------------------------------------------------------------ delete */

struct delctl {
	_Atomic int step; /* 1 child opened, 2 parent deleted, 3 child saw EIDRM,
	                   * 4 parent recreated */
};

static struct delctl *dc;
static const char *del_path;

static int delete_child(void *arg)
{
	(void)arg;
	alarm(30);
	char buf[256], out[256];
	shmem_t *h = shmem_open((char *)del_path, sizeof buf);
	if (!h)
		return 2;
	if (shmem_read(&h, out, sizeof out) != 0 || out[0] != 'a')
		return 3;
	atomic_store(&dc->step, 1);
	await_int(&dc->step, 2);
	memset(buf, 'x', sizeof buf);
	errno = 0;
	if (shmem_read(&h, out, sizeof out) != -1 || errno != EIDRM)
		return 4;
	errno = 0;
	if (shmem_write(&h, buf, sizeof buf) != -1 || errno != EIDRM)
		return 5;
	atomic_store(&dc->step, 3);
	await_int(&dc->step, 4);
	/* The old handle stays dead: it never reaches the new segment. */
	errno = 0;
	if (shmem_read(&h, out, sizeof out) != -1 || errno != EIDRM)
		return 6;
	errno = 0;
	if (shmem_write(&h, buf, sizeof buf) != -1 || errno != EIDRM)
		return 7;
	if (shmem_close(&h) != 0 || h)
		return 8;
	/* A new open reaches the new one. */
	h = shmem_open((char *)del_path, sizeof buf);
	if (!h || shmem_read(&h, out, sizeof out) != 0 || out[0] != 'b')
		return 9;
	shmem_close(&h);
	return 0;
}

static void test_delete(void)
{
	char *p = tpath("delete");
	del_path = p;
	dc = shared_map(sizeof *dc);
	char buf[256], out[256];
	shmem_t *a = shmem_open(p, sizeof buf);
	shmem_t *b = shmem_open(p, sizeof buf);
	CHECK(a && b);
	memset(buf, 'a', sizeof buf);
	CHECK_EQ(shmem_write(&a, buf, sizeof buf), 0);
	pid_t pid = t_fork(delete_child, NULL);
	CHECK(pid > 0);
	await_int(&dc->step, 1);

	CHECK_EQ(shmem_delete(&a), 0);
	CHECK(a == NULL);
	errno = 0;
	CHECK_EQ(shmem_read(&b, out, sizeof out), -1);
	CHECK_EQ(errno, EIDRM);
	errno = 0;
	CHECK_EQ(shmem_write(&b, buf, sizeof buf), -1);
	CHECK_EQ(errno, EIDRM);
	atomic_store(&dc->step, 2);
	await_int(&dc->step, 3);

	/* The same path now makes a fresh, zeroed segment, while old handles still exist. */
	shmem_t *c = shmem_open(p, sizeof buf);
	CHECK(c != NULL);
	memset(out, 0x5A, sizeof out);
	CHECK_EQ(shmem_read(&c, out, sizeof out), 0);
	for (size_t i = 0; i < sizeof out; i++)
		CHECK_EQ(out[i], 0);
	memset(buf, 'b', sizeof buf);
	CHECK_EQ(shmem_write(&c, buf, sizeof buf), 0);
	errno = 0;
	CHECK_EQ(shmem_read(&b, out, sizeof out), -1);
	CHECK_EQ(errno, EIDRM);
	atomic_store(&dc->step, 4);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(shmem_close(&b), 0);
	CHECK(b == NULL);

	/* Fresh means fresh: after a delete, another size is fine. */
	CHECK_EQ(shmem_delete(&c), 0);
	c = shmem_open(p, sizeof buf * 2);
	CHECK(c != NULL);
	char big[512];
	CHECK_EQ(shmem_read(&c, big, sizeof big), 0);
	for (size_t i = 0; i < sizeof big; i++)
		CHECK_EQ(big[i], 0);
	munmap(dc, sizeof *dc);
	drop(&c, p);
}

/* ------------------------------------------------------------ racing creators */

#define RACERS 8

struct racectl {
	_Atomic int go, opened, written, failed;
};

static struct racectl *rc;
static const char *race_path;

static int racer(void *arg)
{
	(void)arg;
	alarm(30);
	char out[4096];
	await_int(&rc->go, 1);
	shmem_t *h = shmem_open((char *)race_path, sizeof out);
	if (!h) {
		fprintf(stderr, "racer: shmem_open: %s\n", strerror(errno));
		return 2;
	}
	atomic_fetch_add(&rc->opened, 1);
	await_int(&rc->written, 1);
	if (shmem_read(&h, out, sizeof out) != 0)
		return 3;
	uint64_t id = verify((uint64_t *)(void *)out, sizeof out);
	shmem_close(&h);
	return id == ID(1, 77) ? 0 : 4;
}

static void test_racing_open(void)
{
	char *p = tpath("race");
	race_path = p;
	rc = shared_map(sizeof *rc);
	pid_t pids[RACERS];
	for (int i = 0; i < RACERS; i++)
		CHECK((pids[i] = t_fork(racer, NULL)) > 0);
	atomic_store(&rc->go, 1); /* neither the file nor the segment exists yet */
	await_int(&rc->opened, RACERS);
	shmem_t *h = shmem_open(p, 4096);
	CHECK(h != NULL);
	uint64_t buf[512];
	fill(buf, sizeof buf, ID(1, 77));
	CHECK_EQ(shmem_write(&h, buf, sizeof buf), 0);
	atomic_store(&rc->written, 1);
	for (int i = 0; i < RACERS; i++)
		CHECK_EQ(t_wait(pids[i]), 0);
	munmap(rc, sizeof *rc);
	drop(&h, p);
}

/* ------------------------------------------------------------ leaks */

static void test_leaks(void)
{
	char *p = tpath("leak");
	char buf[512], out[512];
	memset(buf, 'l', sizeof buf);
	shmem_t *keep = shmem_open(p, sizeof buf); /* the segment outlives the cycles */
	CHECK(keep != NULL);
	for (int i = 0; i < 20; i++) { /* warm-up: lazily made mappings, stdio */
		shmem_t *h = shmem_open(p, sizeof buf);
		CHECK(h != NULL);
		CHECK_EQ(shmem_close(&h), 0);
	}
	int fds = t_count_fds(), maps = t_count_maps();
	for (int i = 0; i < LEAK_CYCLES; i++) {
		shmem_t *h = shmem_open(p, sizeof buf);
		CHECK(h != NULL);
		CHECK_EQ(shmem_write(&h, buf, sizeof buf), 0);
		CHECK_EQ(shmem_read(&h, out, sizeof out), 0);
		CHECK_EQ(shmem_close(&h), 0);
	}
	/* Failed opens leak nothing either. */
	for (int i = 0; i < 100; i++) {
		errno = 0;
		CHECK(shmem_open(p, sizeof buf + 1) == NULL);
		CHECK_EQ(errno, EINVAL);
	}
	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_count_maps(), maps);
	drop(&keep, p);

	/* Create-delete cycles: each makes and removes a whole segment. */
	p = tpath("leak2");
	fds = t_count_fds();
	maps = t_count_maps();
	for (int i = 0; i < LEAK_CYCLES / 10; i++) {
		shmem_t *h = shmem_open(p, sizeof buf);
		CHECK(h != NULL);
		CHECK_EQ(shmem_delete(&h), 0);
	}
	CHECK_EQ(t_count_fds(), fds);
	CHECK_EQ(t_count_maps(), maps);
	CHECK_EQ(unlink(p), 0);
}

/* ------------------------------------------------------------ permissions */

/* The System V mode of the segment for path. */
static unsigned seg_mode(const char *path)
{
	shmkit_seg *s;
	struct shmkit_seg_info info;
	CHECK_OK(shmkit_seg_open(path, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV, &s));
	CHECK_OK(shmkit_seg_stat(s, &info));
	shmkit_seg_close(s);
	return info.mode;
}

static const char *perm_path, *perm_private;

static int unprivileged(void *arg)
{
	(void)arg;
	char out[4096], buf[4096];
	/* In the segment's group (root's, its creator's), not its owner. */
	if (setgroups(0, NULL) != 0 || setgid(0) != 0 || setuid(65534) != 0)
		return 2;
	/* The file is readable, the segment 0640 and of our group: opens read-only. */
	shmem_t *h = shmem_open((char *)perm_path, sizeof out);
	if (!h) {
		fprintf(stderr, "unprivileged: shmem_open: %s\n", strerror(errno));
		return 3;
	}
	if (shmem_read(&h, out, sizeof out) != 0 ||
	    verify((uint64_t *)(void *)out, sizeof out) != ID(2, 1))
		return 4;
	memset(buf, 'u', sizeof buf);
	errno = 0;
	int r = shmem_write(&h, buf, sizeof buf);
	if (r != -1 || errno != EBADF) {
		fprintf(stderr, "unprivileged: shmem_write: %d (%s), want -1 EBADF\n", r,
			strerror(errno));
		return 5;
	}
	errno = 0;
	if (shmem_delete(&h) != -1 || errno == 0 || !h) /* not the owner: refused */
		return 6;
	if (shmem_read(&h, out, sizeof out) != 0) /* still usable */
		return 7;
	if (shmem_close(&h) != 0)
		return 8;
	/* A file it may not read: refused with EACCES. */
	errno = 0;
	if (shmem_open((char *)perm_private, sizeof out) != NULL || errno != EACCES) {
		fprintf(stderr, "unprivileged: private open: %s\n", strerror(errno));
		return 9;
	}
	return 0;
}

/* Another user in no group of ours: the file is world-readable (0644), but the
 * segment never gives others anything (0640). */
static int outsider(void *arg)
{
	(void)arg;
	char out[4096];
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return 2;
	errno = 0;
	if (shmem_open((char *)perm_path, sizeof out) != NULL || errno != EACCES) {
		fprintf(stderr, "outsider: shmem_open: %s\n", strerror(errno));
		return 3;
	}
	return 0;
}

static void test_permissions(void)
{
	if (geteuid() != 0) {
		printf("permissions: skipped (not root)\n");
		return;
	}
	char *p = tpath("perm"), *q = tpath("perm-private");
	perm_path = p;
	perm_private = q;
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(fchmod(fd, 0644), 0);
	close(fd);
	fd = open(q, O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(fchmod(fd, 0600), 0);
	close(fd);

	uint64_t buf[512];
	shmem_t *h = shmem_open(p, sizeof buf);
	CHECK(h != NULL);
	fill(buf, sizeof buf, ID(2, 1));
	CHECK_EQ(shmem_write(&h, buf, sizeof buf), 0);
	/* The segment took the file's permission bits for owner and group only. */
	CHECK_EQ(seg_mode(p), 0640);
	struct shmkit_seg_info info;
	shmkit_seg *s;
	CHECK_OK(shmkit_seg_open(p, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV, &s));
	CHECK_OK(shmkit_seg_stat(s, &info));
	CHECK_EQ(info.kind, SHMKIT_KIND_BLOB);
	shmkit_seg_close(s);

	pid_t pid = t_fork(unprivileged, NULL);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	pid = t_fork(outsider, NULL);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	memset(buf, 0, sizeof buf);
	CHECK_EQ(shmem_read(&h, buf, sizeof buf), 0);
	CHECK_EQ(verify(buf, sizeof buf), ID(2, 1)); /* neither written nor deleted */
	drop(&h, p);
	CHECK_EQ(unlink(q), 0);
}

/* Segments never more readable than their file, and never by others: with umask 022 a
 * new file is 0644, and the segment used to be 0644 too. */
static void test_mode_mask(void)
{
	const struct {
		unsigned file, seg;
	} rows[] = {
		{0644, 0640}, {0666, 0660}, {0600, 0600}, {0664, 0660},
		{0606, 0600}, {0444, 0440}, {0004, 0600}, {0640, 0640},
	};
	char *p = tpath("mask");
	mode_t old = umask(022);
	shmem_t *h = shmem_open(p, 64); /* creates the file: 0666 less the umask */
	umask(old);
	CHECK(h != NULL);
	struct stat st;
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0644);
	CHECK_EQ(seg_mode(p), 0640);
	drop(&h, p);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0600);
		CHECK(fd >= 0);
		CHECK_EQ(fchmod(fd, rows[i].file), 0);
		close(fd);
		h = shmem_open(p, 64);
		CHECK(h != NULL);
		if (seg_mode(p) != rows[i].seg) {
			fprintf(stderr, "file %04o: segment %04o, want %04o\n", rows[i].file,
				seg_mode(p), rows[i].seg);
			exit(T_FAIL);
		}
		drop(&h, p);
	}
}

/* Only a regular file is a key: a FIFO used to block open(2) forever, waiting for a
 * writer. The open runs in a child so that a hang fails the test instead. */
static const char *odd_path;

static int open_odd(void *arg)
{
	(void)arg;
	alarm(5);
	errno = 0;
	shmem_t *h = shmem_open((char *)odd_path, 64);
	if (h) {
		shmem_delete(&h);
		return 2;
	}
	return errno == EINVAL ? 0 : 3;
}

static void test_not_regular(void)
{
	char *f = tpath("fifo"), *d = tpath("dir");
	CHECK_EQ(mkfifo(f, 0666), 0);
	CHECK_EQ(mkdir(d, 0700), 0);
	const char *odd[] = {f, d, "/dev/null"};
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		odd_path = odd[i];
		pid_t pid = t_fork(open_odd, NULL);
		CHECK(pid > 0);
		int st = t_wait(pid);
		if (st != 0) {
			fprintf(stderr, "shmem_open(%s): status %d, want EINVAL\n", odd[i], st);
			exit(T_FAIL);
		}
	}
	CHECK_EQ(unlink(f), 0);
	CHECK_EQ(rmdir(d), 0);
}

/* Another user (65534) makes the System V segment for root's path before root's first
 * shmem_open, mode 0666; hand_over: it also gives the segment's owner field to root
 * (as its creator it keeps its rights). Returns 0 when the squat is in place. */
static const char *squat_path;

static int squatter(void *arg)
{
	int hand_over = (int)(intptr_t)arg;
	shmkit_blob *b;
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return 2;
	if (shmkit_blob_open(squat_path, 4096, 0666,
			     SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | SHMKIT_SEG_SYSV, &b) < 0)
		return 3;
	if (hand_over) {
		struct shmkit_seg_info info;
		struct shmid_ds ds;
		if (shmkit_seg_stat(shmkit_blob_seg(b), &info) < 0 ||
		    shmctl(info.shmid, IPC_STAT, &ds) < 0)
			return 4;
		ds.shm_perm.uid = 0;
		if (shmctl(info.shmid, IPC_SET, &ds) < 0)
			return 5;
	}
	shmkit_blob_close(b);
	return 0;
}

/* The file's owner creates the segment; another user that may write the file opens it. */
static int file_owner_creates(void *arg)
{
	(void)arg;
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return 2;
	shmem_t *h = shmem_open((char *)squat_path, 4096);
	if (!h)
		return 3;
	char buf[4096];
	memset(buf, 'o', sizeof buf);
	return shmem_write(&h, buf, sizeof buf) == 0 && shmem_close(&h) == 0 ? 0 : 4;
}

static void test_squatted(void)
{
	if (geteuid() != 0) {
		printf("squatted: skipped (not root)\n");
		return;
	}
	char *p = tpath("squat");
	squat_path = p;
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(fchmod(fd, 0644), 0);
	close(fd);
	for (int hand_over = 0; hand_over < 2; hand_over++) {
		pid_t pid = t_fork(squatter, (void *)(intptr_t)hand_over);
		CHECK(pid > 0);
		CHECK_EQ(t_wait(pid), 0);
		errno = 0;
		shmem_t *h = shmem_open(p, 4096);
		if (h) {
			fprintf(stderr, "squatted (hand_over %d): shmem_open succeeded\n",
				hand_over);
			exit(T_FAIL);
		}
		CHECK_EQ(errno, EACCES);
		/* Root removes the squat; then the path is root's own. */
		CHECK_OK(shmkit_seg_unlink(p, SHMKIT_SEG_SYSV));
	}
	shmem_t *h = shmem_open(p, 4096);
	CHECK(h != NULL);
	drop(&h, p);

	/* A file owned by another user: a segment that user made is the file owner's,
	 * and root opens it. */
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(fchown(fd, 65534, 65534), 0);
	CHECK_EQ(fchmod(fd, 0644), 0);
	close(fd);
	pid_t pid = t_fork(file_owner_creates, NULL);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	h = shmem_open(p, 4096);
	CHECK(h != NULL);
	char buf[4096];
	CHECK_EQ(shmem_read(&h, buf, sizeof buf), 0);
	CHECK_EQ(buf[0], 'o');
	drop(&h, p);
}

int main(void)
{
	main_pid = getpid();
	char tmp[PATH_MAX];
	CHECK(realpath("/tmp", tmp) != NULL);
	CHECK(strlen(tmp) < sizeof dir);
	strcpy(dir, tmp);
	atexit(cleanup);
	signal(SIGALRM, on_alarm);
	alarm(GUARD_SECONDS); /* nothing here may hang the suite */
	setvbuf(stdout, NULL, _IONBF, 0);
	int64_t t0 = t_now_ns();
	T_RUN(test_bad_arguments());
	T_RUN(test_files_and_paths());
	T_RUN(test_delete());
	T_RUN(test_racing_open());
	T_RUN(test_permissions());
	T_RUN(test_mode_mask());
	T_RUN(test_not_regular());
	T_RUN(test_squatted());
	T_RUN(test_leaks());
	T_RUN(test_torn_processes());
	T_RUN(test_killed_writers());
	/* Threads last: every fork above happens while the process is single-threaded. */
	T_RUN(test_torn_threads(1));
	T_RUN(test_torn_threads(0));
	printf("test_shmem: %.1f s\n", (double)(t_now_ns() - t0) / 1e9);
	return T_PASS;
}
