/* Synchronization objects: the robust process-shared mutex (arguments, lock/unlock,
 * trylock and timeouts against another process, owner death by _exit and SIGKILL with
 * recovery or -ENOTRECOVERABLE, mutual exclusion between processes and threads, threads
 * of one process told apart, holders SIGKILLed at random moments, and a peer that
 * overwrites every word of the mutex with hostile values) and the futex event
 * (timeouts, stale values, wake-ups across processes, -EINTR, ping-pong between
 * processes and between threads with no lost wake-up, NULL events). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <time.h>

#include "common.h"


/* Unlocking a mutex this thread does not hold. (ThreadSanitizer reported this as a bug
 * of the caller while the mutex was glibc's; our own lock is plain atomics to it.) */
#define CHECK_UNLOCK_EPERM(m) CHECK_EQ(shmkit_mutex_unlock(m), -EPERM)

#define COUNT_PROCS 4
#define COUNT_ITERS (SANITIZED ? 20000 : 100000)
#define PINGPONG_ROUNDS 20000
#define GUARD_SECONDS 240

/* Everything the processes share, in one MAP_SHARED|MAP_ANONYMOUS mapping. */
struct shared {
	shmkit_mutex m;
	shmkit_event ev[2];
	_Atomic int state;  /* child -> parent: how far the child got */
	_Atomic int cmd;    /* parent -> child: what to do next */
	_Atomic int ready;  /* children that reached a rendezvous */
	_Atomic uint32_t turn; /* ping-pong: whose move it is */
	uint64_t counter;   /* protected by m */
	uint64_t payload;   /* ping-pong: written before turn moves, checked after; kill
	                     * tests: a second counter, equal to counter outside m */
	_Atomic int inside; /* holders inside m right now: never more than one */
	_Atomic uint64_t iters[2]; /* kill tests: critical sections done by each looper */
	_Atomic int64_t died_ns[2]; /* kill tests: when a looper last got -EOWNERDEAD */
};

static struct shared *sh;

static struct shared *map_shared(void)
{
	void *p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

static void reset(void)
{
	memset(sh, 0, sizeof *sh);
	CHECK_OK(shmkit_mutex_init(&sh->m));
	shmkit_event_init(&sh->ev[0]);
	shmkit_event_init(&sh->ev[1]);
}

/* Spin until *v == want; a poll with a short pause, bounded by the caller's alarm. */
static void await_int(_Atomic int *v, int want)
{
	for (unsigned i = 0; atomic_load(v) != want; i++) {
		if (i < 1000) {
			sched_yield();
		} else {
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
	}
}

/* State letter of a process (field 3 of /proc/PID/stat), '?' if unknown. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return (p && p[1] == ' ') ? p[2] : '?';
}

/* Wait until pid sleeps in the kernel (state 'S'): it is blocked in the call we are
 * about to interrupt, wake or release. Returns 0, or -1 if it ended instead. */
static int await_sleeping(pid_t pid)
{
	for (unsigned i = 0;; i++) {
		char st = proc_state(pid);
		if (st == 'S')
			return 0;
		if (st == 'Z' || st == 'X' || st == '?')
			return -1;
		struct timespec ts = {0, i < 100 ? 10000 : 1000000};
		nanosleep(&ts, NULL);
	}
}

/* await_sleeping() on a child of ours, which must not end first. */
static void await_child_sleeping(pid_t pid)
{
	if (await_sleeping(pid) < 0) {
		fprintf(stderr, "child %d ended before sleeping: status %d\n", (int)pid,
			t_wait(pid));
		exit(T_FAIL);
	}
}

/* ---------------------------------------------------------------- mutex */

static void test_mutex_bad_arguments(void)
{
	CHECK_EQ(shmkit_mutex_init(NULL), -EINVAL);
	CHECK_EQ(shmkit_mutex_lock(NULL, -1), -EINVAL);
	CHECK_EQ(shmkit_mutex_lock(NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_mutex_lock(NULL, SHMKIT_MSEC), -EINVAL);
	CHECK_EQ(shmkit_mutex_consistent(NULL), -EINVAL);
	CHECK_EQ(shmkit_mutex_unlock(NULL), -EINVAL);
	CHECK_EQ(shmkit_event_wait(NULL, 0, 0), -EINVAL);
	CHECK_EQ(shmkit_event_wait(NULL, 0, -1), -EINVAL);
	CHECK_EQ(shmkit_event_signal(NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_event_signal(NULL, 1), -EINVAL);
}

static void test_mutex_basic(void)
{
	reset();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), -EDEADLK); /* error-checking: no self-deadlock */
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -EDEADLK); /* trylock by the owner too */
	CHECK_EQ(shmkit_mutex_lock(&sh->m, SHMKIT_MSEC), -EDEADLK);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	CHECK_UNLOCK_EPERM(&sh->m); /* not held */
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 10 * SHMKIT_MSEC), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	/* A timeout too large to add to the clock means "forever", not "expired". */
	CHECK_EQ(shmkit_mutex_lock(&sh->m, INT64_MAX), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	/* Not in the owner-died state: nothing to make consistent. */
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), -EINVAL);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
}

/* A child that takes the mutex, reports state 1, then does what cmd says:
 * 1 unlock and exit 0, 2 _exit holding it, 3 wait to be killed, 4 unlock as soon as the
 * parent sleeps (the parent is blocked in lock). */
static int holder(void *arg)
{
	pid_t parent = (pid_t)(intptr_t)arg;
	alarm(60); /* never outlives a failed test */
	int r = shmkit_mutex_lock(&sh->m, -1);
	if (r != 0) {
		fprintf(stderr, "holder: lock: %d\n", r);
		return 10;
	}
	atomic_store(&sh->state, 1);
	for (;;) {
		int c = atomic_load(&sh->cmd);
		if (c == 1)
			return shmkit_mutex_unlock(&sh->m) == 0 ? 0 : 11;
		if (c == 2)
			_exit(0); /* dies holding the lock */
		if (c == 4) {
			if (await_sleeping(parent) < 0)
				return 13;
			return shmkit_mutex_unlock(&sh->m) == 0 ? 0 : 12;
		}
		struct timespec ts = {0, c == 3 ? 10000000 : 100000};
		nanosleep(&ts, NULL);
	}
}

static pid_t start_holder(void)
{
	atomic_store(&sh->state, 0);
	atomic_store(&sh->cmd, 0);
	pid_t pid = t_fork(holder, (void *)(intptr_t)getpid());
	CHECK(pid > 0);
	await_int(&sh->state, 1);
	return pid;
}

/* A child's trylock result, +1000 so that 0 and negatives survive the exit status. */
static int child_trylock(void *arg)
{
	(void)arg;
	alarm(60);
	int r = shmkit_mutex_lock(&sh->m, 0);
	if (r == 0 || r == -EOWNERDEAD)
		shmkit_mutex_unlock(&sh->m);
	return r == 0 ? 0 : r == -EBUSY ? 1 : r == -ENOTRECOVERABLE ? 2 : r == -EOWNERDEAD ? 3 : 9;
}

static int trylock_in_child(void)
{
	pid_t pid = t_fork(child_trylock, NULL);
	CHECK(pid > 0);
	switch (t_wait(pid)) {
	case 0:
		return 0;
	case 1:
		return -EBUSY;
	case 2:
		return -ENOTRECOVERABLE;
	case 3:
		return -EOWNERDEAD;
	default:
		return -9999;
	}
}

static void test_mutex_other_process(void)
{
	reset();
	pid_t pid = start_holder();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -EBUSY);
	int64_t t0 = t_now_ns();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 50 * SHMKIT_MSEC), -ETIMEDOUT);
	CHECK(t_now_ns() - t0 >= 50 * SHMKIT_MSEC); /* did not give up early */
	CHECK_UNLOCK_EPERM(&sh->m); /* not ours to unlock */
	atomic_store(&sh->cmd, 1);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);

	/* Blocked in lock (forever, then with a timeout too large to add to the clock) until
	 * the holder unlocks. */
	const int64_t waits[] = {-1, INT64_MAX, 30 * SHMKIT_SEC};
	for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
		pid = start_holder();
		atomic_store(&sh->cmd, 4);
		CHECK_EQ(shmkit_mutex_lock(&sh->m, waits[i]), 0);
		CHECK_EQ(t_wait(pid), 0);
		CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	}
}

/* A killer child: SIGKILLs victim once the parent sleeps (blocked in lock). */
static int killer(void *arg)
{
	pid_t victim = (pid_t)(intptr_t)arg;
	alarm(60);
	if (await_sleeping(getppid()) < 0)
		return 2;
	return kill(victim, SIGKILL) == 0 ? 0 : 1;
}

/* The holder dies holding the mutex (how: 0 _exit, 1 SIGKILL while the parent already
 * waits in lock); the parent locks with timeout and gets -EOWNERDEAD, holding it. */
static void die_holding(int how, int64_t timeout)
{
	reset();
	sh->counter = 41;
	pid_t pid = start_holder();
	pid_t k = -1;
	if (how == 0) {
		atomic_store(&sh->cmd, 2);
		CHECK_EQ(t_wait(pid), 0);
	} else if (timeout == 0) {
		atomic_store(&sh->cmd, 3);
		CHECK_EQ(kill(pid, SIGKILL), 0);
		CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	} else {
		atomic_store(&sh->cmd, 3);
		k = t_fork(killer, (void *)(intptr_t)pid);
		CHECK(k > 0);
	}
	CHECK_EQ(shmkit_mutex_lock(&sh->m, timeout), -EOWNERDEAD);
	if (k > 0) {
		CHECK_EQ(t_wait(k), 0);
		CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	}
	/* Locked by us: another process cannot have it. */
	CHECK_EQ(trylock_in_child(), -EBUSY);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), -EDEADLK);
}

/* Locks the mutex, then makes a child with the raw fork system call (no atfork
 * handler runs in it) that outlives us, and waits to be killed. */
static int hold_with_raw_child(void *arg)
{
	(void)arg;
	if (shmkit_mutex_lock(&sh->m, -1) != 0)
		return 1;
	pid_t c = (pid_t)syscall(SYS_fork);
	if (c == 0) {
		struct timespec ts = {3, 0};
		nanosleep(&ts, NULL);
		_exit(0);
	}
	atomic_store(&sh->state, 1);
	for (;;)
		pause();
}

/* A holder killed while a child it made without fork(3) lives on is dead all the
 * same: the child does not inherit what proves its parent alive. */
static void test_mutex_owner_death_raw_child(void)
{
	reset();
	atomic_store(&sh->state, 0);
	pid_t pid = t_fork(hold_with_raw_child, NULL);
	CHECK(pid > 0);
	await_int(&sh->state, 1);
	kill(pid, SIGKILL);
	t_wait(pid);
	int64_t t0 = t_now_ns();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 2 * SHMKIT_SEC), -EOWNERDEAD);
	CHECK(t_now_ns() - t0 < SHMKIT_SEC);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
}

static void test_mutex_owner_death(void)
{
	const int64_t timeouts[] = {0, -1, 5 * SHMKIT_SEC};
	for (int how = 0; how < 2; how++)
		for (size_t t = 0; t < sizeof timeouts / sizeof timeouts[0]; t++) {
			/* Recovered: repair, consistent, unlock; then it is a normal mutex. */
			die_holding(how, timeouts[t]);
			sh->counter = 42; /* "repair the protected state" */
			CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
			CHECK_EQ(shmkit_mutex_consistent(&sh->m), -EINVAL); /* already consistent */
			CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
			CHECK_EQ(sh->counter, 42);
			CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
			CHECK_EQ(trylock_in_child(), 0);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, timeouts[t]), 0);
			CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);

			/* Not recovered: unlocking without consistent makes it unusable, for
			 * every locker and every kind of lock. */
			die_holding(how, timeouts[t]);
			CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), -ENOTRECOVERABLE);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 10 * SHMKIT_MSEC), -ENOTRECOVERABLE);
			CHECK_EQ(trylock_in_child(), -ENOTRECOVERABLE);
			/* A failed trylock must not leave it locked by the caller (glibc's
			 * trylock does, so the wrapper has to undo that): every kind of lock
			 * still reports -ENOTRECOVERABLE afterwards, here and elsewhere. */
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -ENOTRECOVERABLE);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -ENOTRECOVERABLE);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), -ENOTRECOVERABLE);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 10 * SHMKIT_MSEC), -ENOTRECOVERABLE);
			CHECK_EQ(trylock_in_child(), -ENOTRECOVERABLE);
			CHECK_EQ(trylock_in_child(), -ENOTRECOVERABLE);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 10 * SHMKIT_MSEC), -ENOTRECOVERABLE);
			/* Only a new init brings it back. */
			CHECK_OK(shmkit_mutex_init(&sh->m));
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), 0);
			CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
		}
}

static int count_child(void *arg)
{
	int iters = (int)(intptr_t)arg;
	alarm(120); /* the whole process: harmless in the thread version */
	atomic_fetch_add(&sh->ready, 1);
	await_int(&sh->ready, COUNT_PROCS); /* start together: maximal contention */
	for (int i = 0; i < iters; i++) {
		int r = shmkit_mutex_lock(&sh->m, -1);
		if (r != 0) {
			fprintf(stderr, "count_child: lock: %d\n", r);
			return 1;
		}
		sh->counter++;
		if (shmkit_mutex_unlock(&sh->m) != 0)
			return 2;
	}
	return 0;
}

static void test_mutex_count_processes(void)
{
	reset();
	pid_t pids[COUNT_PROCS];
	for (int i = 0; i < COUNT_PROCS; i++)
		CHECK((pids[i] = t_fork(count_child, (void *)(intptr_t)COUNT_ITERS)) > 0);
	for (int i = 0; i < COUNT_PROCS; i++)
		CHECK_EQ(t_wait(pids[i]), 0);
	CHECK_EQ(sh->counter, (uint64_t)COUNT_PROCS * COUNT_ITERS);
}

static void *count_thread(void *arg)
{
	return (void *)(intptr_t)count_child(arg);
}

static void test_mutex_count_threads(void)
{
	reset();
	pthread_t t[COUNT_PROCS];
	for (int i = 0; i < COUNT_PROCS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, count_thread, (void *)(intptr_t)COUNT_ITERS), 0);
	for (int i = 0; i < COUNT_PROCS; i++) {
		void *ret;
		CHECK_EQ(pthread_join(t[i], &ret), 0);
		CHECK_EQ((intptr_t)ret, 0);
	}
	CHECK_EQ(sh->counter, (uint64_t)COUNT_PROCS * COUNT_ITERS);
}

/* A child that takes the mutex, and so makes its process's liveness token, reports
 * the token through the counter and exits: afterwards the token names a dead process. */
static int token_reporter(void *arg)
{
	(void)arg;
	alarm(30);
	if (shmkit_mutex_lock(&sh->m, -1) != 0)
		return 1;
	sh->counter = sh->m.owner;
	return shmkit_mutex_unlock(&sh->m) == 0 ? 0 : 2;
}

static uint64_t dead_token(void)
{
	reset();
	pid_t pid = t_fork(token_reporter, NULL);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK(sh->counter != 0);
	return sh->counter;
}

static uint64_t own_token(void)
{
	reset();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	uint64_t t = sh->m.owner;
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	CHECK(t != 0);
	return t;
}

/* Each word of the mutex overwritten as a peer could, with the result it must give. */
static void test_mutex_hostile_words(void)
{
	const int64_t timeouts[] = {0, 5 * SHMKIT_MSEC, -1};
	uint64_t dead = dead_token();

	/* Zero-filled memory, or an overwritten magic: not a mutex. */
	memset(&sh->m, 0, sizeof sh->m);
	for (size_t t = 0; t < 3; t++)
		CHECK_EQ(shmkit_mutex_lock(&sh->m, timeouts[t]), -EINVAL);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), -EINVAL);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), -EINVAL);
	reset();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	sh->m.magic ^= 1; /* while held: the holder cannot unlock it either */
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), -EINVAL);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 5 * SHMKIT_MSEC), -EINVAL);
	reset(); /* init brings it back */
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);

	/* A state no mutex can be in: not recoverable, and never left taken. */
	const uint32_t bad_states[] = {3, 0x40, 0x80000000u, UINT32_MAX};
	for (size_t i = 0; i < 4; i++) {
		reset();
		sh->m.state = bad_states[i];
		for (size_t t = 0; t < 3; t++)
			CHECK_EQ(shmkit_mutex_lock(&sh->m, timeouts[t]), -ENOTRECOVERABLE);
		CHECK_EQ(sh->m.owner, 0);
		CHECK_EQ(trylock_in_child(), -ENOTRECOVERABLE);
	}

	/* An owner word naming no live process (garbage, a dead process's token, even the
	 * old glibc robust-list style pointer): taken over, -EOWNERDEAD, for every timeout,
	 * within a slice. */
	const uint64_t owners[] = {1, UINT64_MAX, UINT64_C(0x8000000000000000),
				   (uint64_t)(uintptr_t)&sh->counter, dead};
	for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++)
		for (size_t t = 0; t < 3; t++) {
			reset();
			sh->counter = 7;
			sh->m.owner = owners[i];
			sh->m.tid = (uint32_t)getpid(); /* a tid that is ours changes nothing */
			int64_t t0 = t_now_ns();
			CHECK_EQ(shmkit_mutex_lock(&sh->m, timeouts[t]), -EOWNERDEAD);
			CHECK(t_now_ns() - t0 < SHMKIT_SEC);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -EDEADLK);
			CHECK_EQ(trylock_in_child(), -EBUSY); /* ours now */
			CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
			CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
			CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), 0);
			CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
			CHECK_EQ(sh->counter, 7);
		}

	/* Our own token written into a free mutex: a sibling thread "holds" it, we are not
	 * the holder (no -EDEADLK, no unlock), and our live process is never judged dead. */
	uint64_t mine = own_token();
	reset();
	sh->m.owner = mine;
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -EBUSY);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 5 * SHMKIT_MSEC), -ETIMEDOUT);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), -EPERM);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), -EINVAL);

	/* Held by us, the owner word cleared or stolen by a peer: our unlock refuses to
	 * free what is no longer ours. */
	reset();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	sh->m.owner = dead;
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), -EPERM);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 5 * SHMKIT_MSEC), -EOWNERDEAD);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);

	/* Held by us, our tid overwritten: not provably ours, so no unlock and no
	 * -EDEADLK. The word now names a thread of our process that does not exist, as a
	 * thread that exited holding the lock would: a lock takes it over at once. */
	reset();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	sh->m.tid ^= 0x5a5a;
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), -EPERM);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 5 * SHMKIT_MSEC), -EOWNERDEAD);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);

	/* The words only waiting and people use: garbage costs nothing. */
	reset();
	sh->m.seq = UINT32_MAX;
	sh->m.waiters = UINT32_MAX;
	sh->m.pid = -1;
	memset(sh->m.reserved, 0xff, sizeof sh->m.reserved);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	pid_t pid = start_holder(); /* a sleeper with a garbage waiter count is still woken */
	sh->m.waiters = 0;
	atomic_store(&sh->cmd, 4);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 30 * SHMKIT_SEC), 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
}

/* The word a lock writes first, as a peer sees it without knowing the layout: lock,
 * diff the 64 bytes, unlock. Taken by a child that then exits (dead = 1: the token of a
 * dead process) or by us (our own token). */
static uint64_t first_changed_word(void)
{
	shmkit_mutex before;
	memcpy(&before, &sh->m, sizeof before);
	if (shmkit_mutex_lock(&sh->m, -1) != 0)
		return 0;
	uint64_t w = 0;
	for (size_t off = 0; off + 8 <= sizeof before && !w; off += 8) {
		uint64_t a, b;
		memcpy(&a, (unsigned char *)&before + off, 8);
		memcpy(&b, (unsigned char *)&sh->m + off, 8);
		if (a != b)
			w = b;
	}
	shmkit_mutex_unlock(&sh->m);
	return w;
}

static int report_word(void *arg)
{
	(void)arg;
	alarm(30);
	sh->counter = first_changed_word();
	return 0;
}

static uint64_t owner_word_of(int dead)
{
	reset();
	if (!dead)
		return first_changed_word();
	pid_t pid = t_fork(report_word, NULL);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	return sh->counter;
}

/* Raw bytes, as a peer would write them, over a mutex between guard bytes; forged
 * pointers aim at a target page. Whatever is written: every call returns an error or
 * success within its timeout, nothing outside the 64 bytes is written, and init makes
 * the mutex good again. (glibc's mutex aborted on a kind of 0x40 at offset 16 and wrote
 * through robust-list links at offsets 24 and 32.) */
struct guarded {
	unsigned char before[64];
	shmkit_mutex m;
	unsigned char after[64];
	_Atomic int state, cmd, result; /* with the holder child */
};
#define GUARD_BYTE 0xa5
#define HOSTILE_TIMEOUT (5 * SHMKIT_MSEC)
enum { PHASE_FREE, PHASE_HELD, PHASE_PEER, NPHASES };

static struct guarded *gd;
static unsigned char *target;
static char hcase[128];

#define HCHECK(cond)                                                                       \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
				hcase, #cond);                                             \
			exit(T_FAIL);                                                      \
		}                                                                          \
	} while (0)

static int guards_ok(void)
{
	for (int i = 0; i < 64; i++)
		if (gd->before[i] != GUARD_BYTE || gd->after[i] != GUARD_BYTE)
			return 0;
	for (int i = 0; i < 4096; i++)
		if (target[i] != GUARD_BYTE)
			return 0;
	return 1;
}

static int h_lock(int64_t timeout)
{
	int64_t t0 = t_now_ns();
	int r = shmkit_mutex_lock(&gd->m, timeout);
	/* Its timeout, a slice and a liveness check; generous for a loaded machine. */
	HCHECK(t_now_ns() - t0 < 2 * SHMKIT_SEC);
	HCHECK(r == 0 || r == -EOWNERDEAD || r == -ENOTRECOVERABLE || r == -EDEADLK ||
	       r == -EINVAL || r == (timeout == 0 ? -EBUSY : -ETIMEDOUT));
	return r;
}

/* Unlock whatever a lock gave us; repair first if asked to. */
static void h_release(int r)
{
	if (r == -EOWNERDEAD) {
		int c = shmkit_mutex_consistent(&gd->m);
		HCHECK(c == 0 || c == -EINVAL);
	}
	if (r == 0 || r == -EOWNERDEAD) {
		int u = shmkit_mutex_unlock(&gd->m);
		HCHECK(u == 0 || u == -EPERM || u == -EINVAL);
	}
}

static int peer_holder(void *arg)
{
	(void)arg;
	alarm(30);
	if (shmkit_mutex_lock(&gd->m, -1) != 0)
		return 20;
	atomic_store(&gd->state, 1);
	while (atomic_load(&gd->cmd) == 0) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	int u = shmkit_mutex_unlock(&gd->m);
	return u == 0 || u == -EPERM || u == -EINVAL ? 0 : 21;
}

static void hostile_write(size_t off, unsigned width, uint64_t v)
{
	unsigned char *p = (unsigned char *)&gd->m + off;
	if (width == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
	} else {
		memcpy(p, &v, 8);
	}
}

static void hostile_case(int phase, size_t off, unsigned width, uint64_t v)
{
	snprintf(hcase, sizeof hcase, "phase %d, %u bytes at %zu = %#" PRIx64, phase, width,
		 off, v);
	memset(gd->before, GUARD_BYTE, 64);
	memset(gd->after, GUARD_BYTE, 64);
	HCHECK(shmkit_mutex_init(&gd->m) == 0);
	pid_t pid = -1;
	int r;
	switch (phase) {
	case PHASE_FREE:
		hostile_write(off, width, v);
		r = h_lock(HOSTILE_TIMEOUT);
		h_release(r);
		h_release(h_lock(0));
		break;
	case PHASE_HELD:
		HCHECK(shmkit_mutex_lock(&gd->m, -1) == 0);
		hostile_write(off, width, v);
		h_release(0); /* our unlock, after the write */
		h_release(h_lock(HOSTILE_TIMEOUT));
		break;
	case PHASE_PEER:
		atomic_store(&gd->state, 0);
		atomic_store(&gd->cmd, 0);
		pid = t_fork(peer_holder, NULL);
		HCHECK(pid > 0);
		while (atomic_load(&gd->state) == 0)
			sched_yield();
		hostile_write(off, width, v);
		h_release(h_lock(HOSTILE_TIMEOUT));
		atomic_store(&gd->cmd, 1);
		HCHECK(t_wait(pid) == 0);
		break;
	}
	HCHECK(guards_ok());
	/* Whatever the words hold now, init makes a good mutex of them. */
	HCHECK(shmkit_mutex_init(&gd->m) == 0);
	HCHECK(shmkit_mutex_lock(&gd->m, 0) == 0);
	HCHECK(shmkit_mutex_unlock(&gd->m) == 0);
	HCHECK(guards_ok());
}

struct hostile_group {
	int phase;
	unsigned width;
	size_t off;
	const uint64_t *vals;
	size_t nvals;
};

static int hostile_group_run(void *arg)
{
	const struct hostile_group *g = arg;
	alarm(60);
	for (size_t i = 0; i < g->nvals; i++)
		hostile_case(g->phase, g->off, g->width, g->vals[i]);
	return 0;
}

static void test_mutex_hostile_bytes(void)
{
	gd = mmap(NULL, sizeof *gd, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	target = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(gd != MAP_FAILED && target != MAP_FAILED);
	memset(target, GUARD_BYTE, 4096);
	/* A token of a process that died, and of a live one (ours). */
	uint64_t dead = owner_word_of(1), mine = owner_word_of(0);
	const uint64_t vals[] = {
		0, 1, 2, 3, 0x40, 0x7f, 0x80000000u, UINT32_MAX, UINT64_MAX,
		UINT64_C(0x8000000000000000), UINT64_C(0x5555aaaa5555aaaa),
		(uint64_t)(uintptr_t)(target + 8), (uint64_t)(uintptr_t)(target + 24),
		(uint64_t)(uintptr_t)&gd->after[0], mine, dead,
	};
	const size_t nvals = sizeof vals / sizeof vals[0];
	int cases = 0;
	for (int phase = 0; phase < NPHASES; phase++)
		for (unsigned width = 4; width <= 8; width += 4)
			for (size_t off = 0; off + width <= sizeof(shmkit_mutex); off += width) {
				struct hostile_group g = {phase, width, off, vals, nvals};
				pid_t pid = t_fork(hostile_group_run, &g);
				CHECK(pid > 0);
				int st = t_wait(pid);
				if (st != 0) {
					fprintf(stderr, "hostile bytes: phase %d, %u bytes at %zu: "
						"status %d\n", phase, width, off, st);
					exit(T_FAIL);
				}
				cases += (int)nvals;
			}
	printf("hostile bytes: %d cases\n", cases);
	CHECK_EQ(munmap(gd, sizeof *gd), 0);
	CHECK_EQ(munmap(target, 4096), 0);
}

/* The holder of a lock is a thread: another thread of its process waits like anyone,
 * may not unlock, and is not told -EDEADLK. */
static _Atomic int thr_step;

static void *thread_holder(void *arg)
{
	(void)arg;
	if (shmkit_mutex_lock(&sh->m, -1) != 0)
		return (void *)1;
	atomic_store(&thr_step, 1);
	while (atomic_load(&thr_step) != 2)
		sched_yield();
	return (void *)(intptr_t)(shmkit_mutex_unlock(&sh->m) == 0 ? 0 : 2);
}

static void *thread_waiter(void *arg)
{
	(void)arg;
	atomic_store(&thr_step, 3);
	int r = shmkit_mutex_lock(&sh->m, 30 * SHMKIT_SEC);
	if (r != 0)
		return (void *)(intptr_t)(100 - r);
	return (void *)(intptr_t)(shmkit_mutex_unlock(&sh->m) == 0 ? 0 : 3);
}

static void test_mutex_threads_of_one_process(void)
{
	reset();
	pthread_t t;
	void *ret;
	atomic_store(&thr_step, 0);
	CHECK_EQ(pthread_create(&t, NULL, thread_holder, NULL), 0);
	while (atomic_load(&thr_step) != 1)
		sched_yield();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -EBUSY);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 5 * SHMKIT_MSEC), -ETIMEDOUT);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), -EPERM);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), -EINVAL);
	atomic_store(&thr_step, 2);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 30 * SHMKIT_SEC), 0);
	CHECK_EQ(pthread_join(t, &ret), 0);
	CHECK_EQ((intptr_t)ret, 0);

	/* We hold it; a thread of ours sleeps in lock until we unlock. */
	atomic_store(&thr_step, 0);
	CHECK_EQ(pthread_create(&t, NULL, thread_waiter, NULL), 0);
	while (atomic_load(&thr_step) != 3)
		sched_yield();
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL); /* let it reach its sleep; it must wait either way */
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	CHECK_EQ(pthread_join(t, &ret), 0);
	CHECK_EQ((intptr_t)ret, 0);
}

static void *thread_exits_holding(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)shmkit_mutex_lock(&sh->m, -1);
}

/* A thread that exits holding the mutex, its process living on, is dead to the
 * mutex: a sibling waiting for it (and a try after it) takes it over with
 * -EOWNERDEAD, as after a process's death. */
static void test_mutex_thread_exit(void)
{
	for (int round = 0; round < 2; round++) {
		reset();
		pthread_t t;
		void *ret;
		CHECK_EQ(pthread_create(&t, NULL, thread_exits_holding, NULL), 0);
		CHECK_EQ(pthread_join(t, &ret), 0);
		CHECK_EQ((intptr_t)ret, 0);
		int64_t t0 = t_now_ns();
		int r = shmkit_mutex_lock(&sh->m, round ? 0 : 5 * SHMKIT_SEC);
		/* pthread_join() returns once the kernel cleared the thread's tid word, which
		 * happens a little before the thread is gone from tgkill()'s view: a try
		 * (timeout 0) in that window rightly finds the holder still there. It must
		 * see it gone within the second. */
		while (round && r == -EBUSY && t_now_ns() - t0 < SHMKIT_SEC) {
			t_nap_ms(1);
			r = shmkit_mutex_lock(&sh->m, 0);
		}
		CHECK_EQ(r, -EOWNERDEAD);
		CHECK(t_now_ns() - t0 < SHMKIT_SEC);
		CHECK_OK(shmkit_mutex_consistent(&sh->m));
		CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
		CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), 0);
		CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	}
}

/* A forked child does not own its parent's lock. */
static int child_of_holder(void *arg)
{
	(void)arg;
	if (shmkit_mutex_lock(&sh->m, 0) != -EBUSY)
		return 1;
	if (shmkit_mutex_unlock(&sh->m) != -EPERM)
		return 2;
	if (shmkit_mutex_lock(&sh->m, 5 * SHMKIT_MSEC) != -ETIMEDOUT)
		return 3;
	return 0;
}

static void test_mutex_fork_while_held(void)
{
	reset();
	CHECK_EQ(shmkit_mutex_lock(&sh->m, -1), 0);
	pid_t pid = t_fork(child_of_holder, NULL);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
}

/* A taker that got -EOWNERDEAD and died before shmkit_mutex_consistent(): the next
 * locker is told again. */
static int die_after_ownerdead(void *arg)
{
	(void)arg;
	alarm(30);
	return shmkit_mutex_lock(&sh->m, -1) == -EOWNERDEAD ? 0 : 1;
}

static void test_mutex_owner_death_chain(void)
{
	die_holding(0, -1);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	pid_t pid = start_holder();
	atomic_store(&sh->cmd, 2);
	CHECK_EQ(t_wait(pid), 0);
	pid = t_fork(die_after_ownerdead, NULL);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(shmkit_mutex_lock(&sh->m, 5 * SHMKIT_SEC), -EOWNERDEAD);
	CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
	CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
}

/* A holder in its own pid namespace (as in another container sharing /dev/shm): it is
 * pid 1 there, a pid that means some other process here. The lock must neither judge
 * it dead while it lives nor miss its death. The intermediate child makes the
 * namespace, forks the holder into it and reports the holder's pid as we see it. */
static int ns_intermediate(void *arg)
{
	(void)arg;
	alarm(60);
	if (unshare(CLONE_NEWPID) != 0)
		return errno == EPERM || errno == EINVAL ? T_SKIP : 2;
	pid_t pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (shmkit_mutex_lock(&sh->m, -1) != 0)
			_exit(4);
		atomic_store(&sh->state, 1);
		for (;;)
			pause(); /* until killed */
	}
	sh->counter = (uint64_t)pid;
	atomic_store(&sh->ready, 1);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 5;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : 6;
}

static void test_mutex_pid_namespace(void)
{
	for (int waiting = 0; waiting < 2; waiting++) {
		reset();
		pid_t mid = t_fork(ns_intermediate, NULL);
		CHECK(mid > 0);
		for (;;) {
			if (atomic_load(&sh->state) == 1 && atomic_load(&sh->ready) == 1)
				break;
			int st;
			pid_t w = waitpid(mid, &st, WNOHANG);
			if (w == mid) {
				int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				if (code == T_SKIP) {
					printf("pid namespace: skipped (unshare not permitted)\n");
					return;
				}
				fprintf(stderr, "pid namespace: intermediate ended: %d\n", code);
				exit(T_FAIL);
			}
			sched_yield();
		}
		pid_t holder = (pid_t)sh->counter;
		CHECK_EQ(sh->m.pid, 1); /* its pid in its namespace: no proof of anything here */
		/* Alive: never taken, through several slices and liveness checks. */
		CHECK_EQ(shmkit_mutex_lock(&sh->m, 0), -EBUSY);
		CHECK_EQ(shmkit_mutex_lock(&sh->m, 150 * SHMKIT_MSEC), -ETIMEDOUT);
		pid_t k = -1;
		int64_t t0 = t_now_ns();
		if (waiting) {
			k = t_fork(killer, (void *)(intptr_t)holder); /* once we sleep in lock */
			CHECK(k > 0);
		} else {
			CHECK_EQ(kill(holder, SIGKILL), 0);
		}
		CHECK_EQ(shmkit_mutex_lock(&sh->m, 5 * SHMKIT_SEC), -EOWNERDEAD);
		/* Dead: told within the bound (100 ms; 1 s for a loaded machine). */
		CHECK(t_now_ns() - t0 < SHMKIT_SEC);
		if (k > 0)
			CHECK_EQ(t_wait(k), 0);
		CHECK_EQ(t_wait(mid), 0);
		CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
		CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	}
}

/* A looper for the kill test: critical sections that move counter and payload
 * together, with a window between the two; on -EOWNERDEAD it records the time and
 * repairs. Returns nonzero if it ever finds the pair torn without being told. */
static int kill_looper(void *arg)
{
	int id = (int)(intptr_t)arg;
	alarm(60);
	atomic_fetch_add(&sh->ready, 1);
	for (;;) {
		int r = shmkit_mutex_lock(&sh->m, -1);
		if (r == -EOWNERDEAD) {
			atomic_store(&sh->died_ns[id], t_now_ns());
			sh->payload = sh->counter; /* the repair, */
			atomic_store(&sh->inside, 0); /* of what a holder killed inside left */
			r = shmkit_mutex_consistent(&sh->m);
		} else if (r == 0 && sh->payload != sh->counter) {
			return 12; /* torn, and nobody said so: two holders, or a lost death */
		}
		if (r != 0)
			return 10;
		if (atomic_fetch_add(&sh->inside, 1) != 0)
			return 13;
		sh->counter++;
		for (volatile int i = 0; i < 200; i++)
			;
		sh->payload++;
		atomic_fetch_sub(&sh->inside, 1);
		atomic_fetch_add(&sh->iters[id], 1);
		if (shmkit_mutex_unlock(&sh->m) != 0)
			return 11;
	}
}

/* Two loopers contend; one is SIGKILLed at a random moment (inside or outside its
 * critical section, in lock, asleep, in unlock). The survivor must go on, and if the
 * victim died holding it, get -EOWNERDEAD within the documented bound (100 ms slice,
 * plus a liveness check; checked against 1 s for loaded machines). Then the survivor is
 * killed too and the parent takes over. */
static void test_mutex_kill_random(void)
{
	const int trials = SANITIZED ? 40 : 150;
	uint64_t seed = (uint64_t)t_now_ns() | 1;
	int64_t worst = 0;
	int noticed = 0, parent_dead = 0;
	printf("kill random: seed %" PRIu64 "\n", seed);
	for (int trial = 0; trial < trials; trial++) {
		reset();
		atomic_store(&sh->ready, 0);
		pid_t p[2];
		for (int id = 0; id < 2; id++) {
			atomic_store(&sh->iters[id], 0);
			atomic_store(&sh->died_ns[id], 0);
			CHECK((p[id] = t_fork(kill_looper, (void *)(intptr_t)id)) > 0);
		}
		await_int(&sh->ready, 2);
		struct timespec ts = {0, (long)(t_rand(&seed) % 2000000)};
		nanosleep(&ts, NULL);
		int64_t killed_at = t_now_ns();
		CHECK_EQ(kill(p[0], SIGKILL), 0);
		CHECK_EQ(t_wait(p[0]), 128 + SIGKILL);
		/* The survivor makes progress: no deadlock behind a dead holder. */
		uint64_t base = atomic_load(&sh->iters[1]);
		int64_t limit = t_now_ns() + 10 * SHMKIT_SEC;
		while (atomic_load(&sh->iters[1]) < base + 50) {
			if (t_now_ns() > limit) {
				fprintf(stderr, "kill random: trial %d: survivor stalled: "
					"owner %#" PRIx64 " tid %u state %u waiters %u, "
					"status %d\n", trial, sh->m.owner, sh->m.tid,
					sh->m.state, sh->m.waiters,
					(kill(p[1], SIGKILL), t_wait(p[1])));
				exit(T_FAIL);
			}
			sched_yield();
		}
		int64_t d = atomic_load(&sh->died_ns[1]);
		if (d) {
			noticed++;
			if (d - killed_at > worst)
				worst = d - killed_at;
			CHECK(d - killed_at < SHMKIT_SEC);
		}
		ts.tv_nsec = (long)(t_rand(&seed) % 1000000);
		nanosleep(&ts, NULL);
		CHECK_EQ(kill(p[1], SIGKILL), 0);
		int st = t_wait(p[1]);
		if (st != 128 + SIGKILL) {
			fprintf(stderr, "kill random: survivor exited %d\n", st);
			exit(T_FAIL);
		}
		int64_t t0 = t_now_ns();
		int r = shmkit_mutex_lock(&sh->m, 5 * SHMKIT_SEC);
		CHECK(t_now_ns() - t0 < SHMKIT_SEC);
		if (r == -EOWNERDEAD) {
			parent_dead++;
			sh->payload = sh->counter;
			atomic_store(&sh->inside, 0);
			CHECK_EQ(shmkit_mutex_consistent(&sh->m), 0);
		} else {
			/* 0 means nobody died inside: nothing to repair. */
			CHECK_EQ(r, 0);
			CHECK_EQ(sh->payload, sh->counter);
			CHECK_EQ(atomic_load(&sh->inside), 0);
		}
		CHECK_EQ(shmkit_mutex_unlock(&sh->m), 0);
	}
	printf("kill random: %d trials, survivor told %d times (worst %.1f ms after the kill), "
	       "parent told %d times\n",
	       trials, noticed, (double)worst / 1e6, parent_dead);
	/* The loopers hold the lock most of the time: some kills must land inside. */
	CHECK(noticed + parent_dead > 0);
}

/* Processes of several threads each, with every kind of timeout: one holder at a time,
 * and the count exact. */
#define MIX_PROCS 2
#define MIX_THREADS 3
#define MIX_ITERS (SANITIZED ? 3000 : 20000)

static void *mix_thread(void *arg)
{
	(void)arg;
	const int64_t timeouts[] = {-1, 0, SHMKIT_MSEC, 10 * SHMKIT_SEC};
	for (int done = 0, i = 0; done < MIX_ITERS; i++) {
		int r = shmkit_mutex_lock(&sh->m, timeouts[i % 4]);
		if (r == -EBUSY || r == -ETIMEDOUT)
			continue;
		if (r != 0)
			return (void *)(intptr_t)(100 - r);
		if (atomic_fetch_add(&sh->inside, 1) != 0)
			return (void *)1;
		sh->counter++;
		atomic_fetch_sub(&sh->inside, 1);
		if (shmkit_mutex_unlock(&sh->m) != 0)
			return (void *)2;
		done++;
	}
	return NULL;
}

static int mix_process(void *arg)
{
	(void)arg;
	alarm(120);
	pthread_t t[MIX_THREADS];
	for (int i = 0; i < MIX_THREADS; i++)
		if (pthread_create(&t[i], NULL, mix_thread, NULL) != 0)
			return 3;
	int bad = 0;
	for (int i = 0; i < MIX_THREADS; i++) {
		void *ret;
		if (pthread_join(t[i], &ret) != 0 || ret != NULL) {
			fprintf(stderr, "mix thread: %d\n", (int)(intptr_t)ret);
			bad = 1;
		}
	}
	return bad;
}

static void test_mutex_count_mixed(void)
{
	reset();
	pid_t p[MIX_PROCS];
	for (int i = 0; i < MIX_PROCS; i++)
		CHECK((p[i] = t_fork(mix_process, NULL)) > 0);
	CHECK_EQ(mix_process(NULL), 0); /* threads of this process too: forks are done */
	for (int i = 0; i < MIX_PROCS; i++)
		CHECK_EQ(t_wait(p[i]), 0);
	CHECK_EQ(sh->counter, (uint64_t)(MIX_PROCS + 1) * MIX_THREADS * MIX_ITERS);
}

/* ---------------------------------------------------------------- event */

static void test_event_local(void)
{
	/* Zero-filled memory is a valid event. */
	struct shared *fresh = map_shared();
	shmkit_event *ev = &fresh->ev[0];
	uint32_t s = shmkit_event_prepare(ev);
	CHECK_EQ(s, 0);
	CHECK_EQ(shmkit_event_wait(ev, s, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	CHECK_EQ(shmkit_event_wait(ev, s, 20 * SHMKIT_MSEC), -ETIMEDOUT);
	CHECK(t_now_ns() - t0 >= 20 * SHMKIT_MSEC);
	CHECK_EQ(ev->waiters, 0); /* a timed-out waiter leaves */

	/* Nobody sleeps: signal wakes nobody, but moves the counter. */
	CHECK_EQ(shmkit_event_signal(ev, 0), 0);
	CHECK_EQ(shmkit_event_signal(ev, 1), 0);
	CHECK_EQ(shmkit_event_prepare(ev), s + 2);

	/* A stale value returns at once, whatever the timeout. */
	CHECK_EQ(shmkit_event_wait(ev, s, 0), 0);
	CHECK_EQ(shmkit_event_wait(ev, s, -1), 0);
	CHECK_EQ(shmkit_event_wait(ev, s, INT64_MAX), 0);
	CHECK_EQ(shmkit_event_wait(ev, s + 1, 20 * SHMKIT_MSEC), 0);
	s = shmkit_event_prepare(ev);
	CHECK_EQ(shmkit_event_wait(ev, s, 0), -EAGAIN);

	/* NULL: nothing to reset, nothing to read; wait and signal refuse it. */
	shmkit_event_init(NULL);
	CHECK_EQ(shmkit_event_prepare(NULL), 0);
	CHECK_EQ(shmkit_event_wait(NULL, shmkit_event_prepare(NULL), 0), -EINVAL);

	/* init resets. */
	shmkit_event_init(ev);
	CHECK_EQ(shmkit_event_prepare(ev), 0);
	CHECK_EQ(ev->waiters, 0);
	CHECK_EQ(munmap(fresh, sizeof *fresh), 0);
}

/* Sleeps in wait(-1) from the value it read; exits 0 if woken by a signal. */
static int sleeper(void *arg)
{
	(void)arg;
	alarm(30);
	uint32_t s = shmkit_event_prepare(&sh->ev[0]);
	atomic_fetch_add(&sh->ready, 1);
	int r;
	do
		r = shmkit_event_wait(&sh->ev[0], s, -1);
	while (r == 0 && shmkit_event_prepare(&sh->ev[0]) == s); /* spurious: sleep again */
	return r == 0 ? 0 : 1;
}

static void wait_waiters(uint32_t n)
{
	/* The waiter count is the event's own "inside wait" word: once it reads n, every
	 * sleeper has announced itself and a signal cannot be lost. */
	while (__atomic_load_n(&sh->ev[0].waiters, __ATOMIC_ACQUIRE) != n)
		sched_yield();
}

static void test_event_wake_process(void)
{
	reset();
	/* One sleeper, one signal. */
	pid_t pid = t_fork(sleeper, NULL);
	CHECK(pid > 0);
	wait_waiters(1);
	await_child_sleeping(pid);
	int r = shmkit_event_signal(&sh->ev[0], 0);
	CHECK(r == 0 || r == 1);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(sh->ev[0].waiters, 0);

	/* Three sleepers, one broadcast. */
	enum { N = 3 };
	pid_t pids[N];
	for (int i = 0; i < N; i++)
		CHECK((pids[i] = t_fork(sleeper, NULL)) > 0);
	wait_waiters(N);
	for (int i = 0; i < N; i++)
		await_child_sleeping(pids[i]);
	r = shmkit_event_signal(&sh->ev[0], 1);
	CHECK(r >= 0 && r <= N);
	for (int i = 0; i < N; i++)
		CHECK_EQ(t_wait(pids[i]), 0);
	CHECK_EQ(sh->ev[0].waiters, 0);

	/* A sleeper killed in wait leaves the count high; later signals still work. */
	pid = t_fork(sleeper, NULL);
	CHECK(pid > 0);
	wait_waiters(1);
	CHECK_EQ(kill(pid, SIGKILL), 0);
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	CHECK_EQ(sh->ev[0].waiters, 1);
	pid = t_fork(sleeper, NULL);
	CHECK(pid > 0);
	wait_waiters(2);
	await_child_sleeping(pid);
	CHECK(shmkit_event_signal(&sh->ev[0], 0) >= 0);
	CHECK_EQ(t_wait(pid), 0);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* Sleeps in wait(timeout) with a SIGUSR1 handler (no SA_RESTART); exits 0 on -EINTR. */
static int interrupted(void *arg)
{
	int64_t timeout = (int64_t)(intptr_t)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	alarm(30);
	uint32_t s = shmkit_event_prepare(&sh->ev[0]);
	atomic_store(&sh->state, 1);
	int r = shmkit_event_wait(&sh->ev[0], s, timeout);
	atomic_store(&sh->state, 2);
	return r == -EINTR ? 0 : 1;
}

static void test_event_eintr(void)
{
	const int64_t timeouts[] = {-1, 20 * SHMKIT_SEC};
	for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
		reset();
		pid_t pid = t_fork(interrupted, (void *)(intptr_t)timeouts[i]);
		CHECK(pid > 0);
		await_int(&sh->state, 1);
		/* A signal that lands before the child sleeps only runs the handler: repeat
		 * until the wait reports it. */
		while (atomic_load(&sh->state) != 2) {
			if (await_sleeping(pid) < 0)
				break; /* it ended: its status tells how */
			kill(pid, SIGUSR1);
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		CHECK_EQ(t_wait(pid), 0);
		CHECK_EQ(sh->ev[0].waiters, 0);
	}
}

/* One side of the ping-pong: side 0 moves when turn is even, side 1 when odd. Each move
 * checks the payload the other side left, writes its own, passes the turn and signals
 * the other side's event. Returns 0, or 1 on a wrong payload. */
static int pingpong(struct shared *p, int side, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		uint32_t mine = (uint32_t)(2 * i + side);
		for (;;) {
			uint32_t s = shmkit_event_prepare(&p->ev[side]);
			if (atomic_load_explicit(&p->turn, memory_order_acquire) == mine)
				break;
			int r = shmkit_event_wait(&p->ev[side], s, -1);
			if (r != 0) {
				fprintf(stderr, "pingpong side %d round %d: wait %d\n", side, i, r);
				return 1;
			}
		}
		if (p->payload != mine) {
			fprintf(stderr, "pingpong side %d: payload %" PRIu64 " != %u\n", side,
				p->payload, mine);
			return 1;
		}
		p->payload = mine + 1;
		atomic_store_explicit(&p->turn, mine + 1, memory_order_release);
		if (shmkit_event_signal(&p->ev[side ^ 1], 0) < 0)
			return 1;
	}
	return 0;
}

static int pingpong_child(void *arg)
{
	(void)arg;
	alarm(60); /* a lost wake-up fails instead of hanging */
	return pingpong(sh, 1, PINGPONG_ROUNDS);
}

static void test_event_pingpong_processes(void)
{
	reset();
	alarm(60);
	pid_t pid = t_fork(pingpong_child, NULL);
	CHECK(pid > 0);
	CHECK_EQ(pingpong(sh, 0, PINGPONG_ROUNDS), 0);
	CHECK_EQ(t_wait(pid), 0);
	alarm(GUARD_SECONDS);
	CHECK_EQ(atomic_load(&sh->turn), 2 * PINGPONG_ROUNDS);
	CHECK_EQ(sh->payload, 2 * PINGPONG_ROUNDS);
}

static void *pingpong_thread(void *arg)
{
	return (void *)(intptr_t)pingpong(sh, (int)(intptr_t)arg, PINGPONG_ROUNDS);
}

static void test_event_pingpong_threads(void)
{
	reset();
	alarm(60);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, pingpong_thread, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 2; i++) {
		void *ret;
		CHECK_EQ(pthread_join(t[i], &ret), 0);
		CHECK_EQ((intptr_t)ret, 0);
	}
	alarm(GUARD_SECONDS);
	CHECK_EQ(atomic_load(&sh->turn), 2 * PINGPONG_ROUNDS);
	CHECK_EQ(sh->payload, 2 * PINGPONG_ROUNDS);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	sh = map_shared();
	alarm(GUARD_SECONDS); /* nothing here may hang the suite */
	T_RUN(test_mutex_bad_arguments());
	T_RUN(test_mutex_basic());
	T_RUN(test_mutex_other_process());
	T_RUN(test_mutex_owner_death());
	T_RUN(test_mutex_owner_death_raw_child());
	T_RUN(test_mutex_count_processes());
	T_RUN(test_mutex_hostile_words());
	T_RUN(test_mutex_hostile_bytes());
	T_RUN(test_mutex_fork_while_held());
	T_RUN(test_mutex_owner_death_chain());
	T_RUN(test_mutex_kill_random());
	T_RUN(test_mutex_pid_namespace());
	T_RUN(test_event_local());
	T_RUN(test_event_wake_process());
	T_RUN(test_event_eintr());
	T_RUN(test_event_pingpong_processes());
	/* Threads last: every fork above happens while the process is single-threaded. */
	T_RUN(test_mutex_count_threads());
	T_RUN(test_mutex_threads_of_one_process());
	T_RUN(test_mutex_thread_exit());
	T_RUN(test_mutex_count_mixed()); /* forks, then threads */
	T_RUN(test_event_pingpong_threads());
	return T_PASS;
}
