/* Test helpers: check macros that print both values and the line, a per-test unique
 * name, and child-process helpers. Exit 0 pass, 1 fail, 77 skip. */
#ifndef SHMKIT_TEST_COMMON_H
#define SHMKIT_TEST_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <shmkit/shmkit.h>

/* 1 in sanitizer builds, where tests scale their iteration counts down. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: CHECK(%s) failed (errno %d %s)\n", __FILE__,  \
				__LINE__, #cond, errno, strerror(errno));                  \
			exit(T_FAIL);                                                      \
		}                                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                                     \
	do {                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                        \
		if (a_ != b_) {                                                            \
			fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s): %lld != %lld\n", __FILE__,  \
				__LINE__, #a, #b, a_, b_);                                 \
			exit(T_FAIL);                                                      \
		}                                                                          \
	} while (0)

/* A shmkit call that must return 0 (or >= 0); prints the error name otherwise. */
#define CHECK_OK(expr)                                                                     \
	do {                                                                               \
		long long r_ = (long long)(expr);                                          \
		if (r_ < 0) {                                                              \
			fprintf(stderr, "%s:%d: %s returned %lld (%s)\n", __FILE__, __LINE__, \
				#expr, r_, shmkit_strerror((int)r_));                      \
			exit(T_FAIL);                                                      \
		}                                                                          \
	} while (0)

/* Names handed out by t_name(), removed at exit (even when a CHECK fails) by the
 * process that made them, so /dev/shm and System V IPC keep no test leftovers. */
static char *t_names[512];
static int t_nnames;
static pid_t t_names_pid;

static void t_cleanup(void)
{
	if (getpid() != t_names_pid)
		return; /* a forked child that called exit(): not its segments */
	for (int i = 0; i < t_nnames; i++) {
		shmkit_seg_unlink(t_names[i], SHMKIT_SEG_RAW);
		shmkit_seg_unlink(t_names[i], SHMKIT_SEG_RAW | SHMKIT_SEG_SYSV);
	}
	/* Children killed or ended with _exit() leave their liveness tokens behind. */
	shmkit_live_sweep();
}

/* Monotonic clock in nanoseconds. */
static inline int64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

/* Run one test function and print how long it took. */
#define T_RUN(call)                                                                        \
	do {                                                                               \
		int64_t t_run_ = t_now_ns();                                               \
		call;                                                                      \
		printf("%s: %.2f s\n", #call, (double)(t_now_ns() - t_run_) / 1e9);         \
	} while (0)

/* A unique name for this process and tag, "/shmkit-test-<pid>-<tag>", valid for both
 * backends. The same tag gives the same (stable) pointer. */
static inline const char *t_name(const char *tag)
{
	char buf[160];
	snprintf(buf, sizeof buf, "/shmkit-test-%d-%s", (int)getpid(), tag);
	for (int i = 0; i < t_nnames; i++)
		if (!strcmp(t_names[i], buf))
			return t_names[i];
	if (t_nnames == 0 || t_names_pid != getpid()) {
		t_nnames = 0;
		t_names_pid = getpid();
		atexit(t_cleanup);
	}
	if (t_nnames == (int)(sizeof t_names / sizeof t_names[0])) {
		fprintf(stderr, "t_name: too many names\n");
		exit(T_FAIL);
	}
	t_names[t_nnames] = strdup(buf);
	return t_names[t_nnames++];
}

/* Wait for a child and return its exit status, or 128+signal. */
static inline int t_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

/* fork() for tests: the child dies with its parent, so a test that fails (exits)
 * while children loop never leaves them spinning on the machine. */
static inline pid_t t_fork_raw(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(T_FAIL); /* the parent died before the line above */
	}
	return pid;
}

/* Fork a child that runs fn(arg) and exits with its return value. */
static inline pid_t t_fork(int (*fn)(void *), void *arg)
{
	pid_t pid = t_fork_raw();
	if (pid == 0)
		_exit(fn(arg));
	return pid;
}

/* Number of open descriptors of this process. */
static inline int t_count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* Number of mappings of this process. */
static inline int t_count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, c;
	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		if (c == '\n')
			n++;
	fclose(f);
	return n;
}

static inline uint64_t t_rand(uint64_t *s)
{
	/* xorshift64*: reproducible from a printed seed */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

#endif
