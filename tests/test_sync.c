/* Synchronization objects: the robust process-shared mutex (arguments, lock/unlock,
 * trylock and timeouts against another process, owner death by _exit and SIGKILL with
 * recovery or -ENOTRECOVERABLE, mutual exclusion between processes and threads) and the
 * futex event (timeouts, stale values, wake-ups across processes, -EINTR, ping-pong
 * between processes and between threads with no lost wake-up). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include "common.h"


/* Deliberate misuse that ThreadSanitizer reports as a bug of the caller (unlocking a
 * mutex this thread does not hold): checked in the other builds only. */
#if defined(__SANITIZE_THREAD__)
#define CHECK_UNLOCK_EPERM(m) ((void)(m))
#else
#define CHECK_UNLOCK_EPERM(m) CHECK_EQ(shmkit_mutex_unlock(m), -EPERM)
#endif

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
	uint64_t payload;   /* ping-pong: written before turn moves, checked after */
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
	T_RUN(test_mutex_count_processes());
	T_RUN(test_event_local());
	T_RUN(test_event_wake_process());
	T_RUN(test_event_eintr());
	T_RUN(test_event_pingpong_processes());
	/* Threads last: every fork above happens while the process is single-threaded. */
	T_RUN(test_mutex_count_threads());
	T_RUN(test_event_pingpong_threads());
	return T_PASS;
}
