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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

/* A zero-filled shared anonymous mapping, for the counters and flags that a test's
 * processes share across fork(). Never NULL (a failure ends the test). */
static inline void *t_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

/* A bijective 64-bit mixer (splitmix64's finalizer): patterns that no bug in the
 * library could produce by accident, computed from a message or snapshot number. */
static inline uint64_t t_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* ---- self-checking messages: the number, length and content all follow from seq ----
 * Bytes 0-7: seq; 8-15: a checksum of seq, the length and the payload; then payload
 * words t_mix64(seq ^ index). Any message alone says which one it is, so a receiver
 * that does not know where it starts (a consumer taking over) can still check it. */

#define T_MSG_MIN 16

/* Length of message @seq, from T_MSG_MIN to @max: mostly small, a good share up to
 * 2 KiB, a few up to @max (these fill rings and make them wrap). */
static inline size_t t_msg_len(uint64_t seq, size_t max)
{
	uint64_t h = t_mix64(seq ^ UINT64_C(0x6d736c656e));
	unsigned r = (unsigned)(h % 100);
	size_t n;
	if (r < 8)
		n = (size_t)((h >> 32) % max);
	else if (r < 35)
		n = (size_t)((h >> 32) % 2048);
	else
		n = (size_t)((h >> 32) % 200);
	if (n < T_MSG_MIN)
		n = T_MSG_MIN;
	return n > max ? max : n;
}

static inline uint64_t t_msg_sum(uint64_t seq, size_t len, const unsigned char *payload)
{
	uint64_t s = t_mix64(seq + len);
	for (size_t i = 0; i < len; i++)
		s = (s ^ payload[i]) * UINT64_C(0x100000001b3);
	return s;
}

static inline void t_msg_fill(unsigned char *b, size_t len, uint64_t seq)
{
	size_t i;
	for (i = 16; i + 8 <= len; i += 8) {
		uint64_t w = t_mix64(seq ^ (i << 40));
		memcpy(b + i, &w, 8);
	}
	if (i < len) {
		uint64_t w = t_mix64(seq ^ (i << 40));
		memcpy(b + i, &w, len - i);
	}
	uint64_t sum = t_msg_sum(seq, len - 16, b + 16);
	memcpy(b, &seq, 8);
	memcpy(b + 8, &sum, 8);
}

/* 1 if @b (@len bytes, at least 16) holds message @seq's number, checksum and bytes,
 * whatever rule chose its length. */
static inline int t_msg_check_bytes(const unsigned char *b, size_t len, uint64_t seq)
{
	uint64_t got, sum;
	memcpy(&got, b, 8);
	memcpy(&sum, b + 8, 8);
	if (got != seq || sum != t_msg_sum(seq, len - 16, b + 16))
		return 0;
	size_t i;
	for (i = 16; i + 8 <= len; i += 8) {
		uint64_t w = t_mix64(seq ^ (i << 40)), x;
		memcpy(&x, b + i, 8);
		if (x != w)
			return 0;
	}
	if (i < len) {
		uint64_t w = t_mix64(seq ^ (i << 40));
		if (memcmp(b + i, &w, len - i))
			return 0;
	}
	return 1;
}

/* 1 if @b (@len bytes) is exactly message @seq of a channel whose largest message is
 * @max: its number, its length, its checksum and every payload byte. */
static inline int t_msg_check(const unsigned char *b, size_t len, uint64_t seq, size_t max)
{
	return len == t_msg_len(seq, max) && t_msg_check_bytes(b, len, seq);
}

/* The message number a buffer claims (its first 8 bytes), for a receiver that does
 * not know it yet; check it with t_msg_check() before trusting it. */
static inline uint64_t t_msg_seq(const unsigned char *b, size_t len)
{
	uint64_t seq = UINT64_MAX;
	if (len >= 8)
		memcpy(&seq, b, 8);
	return seq;
}

/* ---- self-checking snapshots (blobs): @words 64-bit words named by a tag ----
 * Word 0: the tag; word 1: a checksum of the others; word i >= 2: t_mix64(tag, i).
 * Tag 0 is the all-zero buffer of a blob never written. */

static inline uint64_t t_snap_word(uint64_t tag, size_t i)
{
	return t_mix64(tag * UINT64_C(0x9e3779b97f4a7c15) + i);
}

static inline void t_snap_fill(uint64_t *w, size_t words, uint64_t tag)
{
	uint64_t sum = tag;
	for (size_t i = 2; i < words; i++) {
		w[i] = tag ? t_snap_word(tag, i) : 0;
		sum = (sum ^ w[i]) * UINT64_C(0x100000001b3);
	}
	w[0] = tag;
	w[1] = tag ? sum : 0;
}

/* The tag of a consistent snapshot, or UINT64_MAX when any word disagrees (torn,
 * partial or garbage). */
static inline uint64_t t_snap_tag(const uint64_t *w, size_t words)
{
	uint64_t tag = w[0], sum = tag;
	for (size_t i = 2; i < words; i++) {
		if (w[i] != (tag ? t_snap_word(tag, i) : 0))
			return UINT64_MAX;
		sum = (sum ^ w[i]) * UINT64_C(0x100000001b3);
	}
	if (w[1] != (tag ? sum : 0))
		return UINT64_MAX;
	return tag;
}

/* ---- a guard against hangs: a call that never returns fails the test by name ---- */

static const char *volatile t_guard_what = "";

static void t_guard_fire(int sig)
{
	static const char pre[] = "\nHANG: no progress within the guard's time in: ";
	(void)sig;
	if (write(2, pre, sizeof pre - 1) < 0 ||
	    write(2, t_guard_what, strlen(t_guard_what)) < 0 || write(2, "\n", 1) < 0) {
		/* nothing more to say */
	}
	/* exit(), not _exit(): t_cleanup() removes the segments. Not async-signal-safe,
	 * but the test is failing anyway, and a hung call holds no lock cleanup needs. */
	exit(T_FAIL);
}

/* Arm (or re-arm) the guard: if @seconds pass before the next t_guard(), print @what
 * and fail. @what must stay valid (a literal, or a static buffer). 0 disarms. */
static inline void t_guard(unsigned seconds, const char *what)
{
	static int installed;
	if (!installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = t_guard_fire;
		sigaction(SIGALRM, &sa, NULL);
		installed = 1;
	}
	t_guard_what = what;
	alarm(seconds);
}

/* SHMKIT_TEST_SCALE=N (default 1) multiplies the long loops of a test, for a bigger run
 * than ctest's, which keeps each program well under a minute on a loaded machine. */
static inline uint64_t t_scale(void)
{
	const char *e = getenv("SHMKIT_TEST_SCALE");
	unsigned long long n = e ? strtoull(e, NULL, 10) : 1;
	return n >= 1 ? (uint64_t)n : 1;
}

static inline void t_nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A channel end that must open. */
static inline shmkit_chan *t_chan_open_ok(const char *name, unsigned role, size_t cap,
					  unsigned flags)
{
	shmkit_chan *ch = NULL;
	CHECK_OK(shmkit_chan_open(name, role, cap, 0, flags, &ch));
	CHECK(ch != NULL);
	return ch;
}

/* 1 under valgrind, which preloads its own libraries into the program it runs. */
static inline int t_under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "vgpreload") != NULL;
}

/* 1 if pidfd_open(2) works here (valgrind 3.19 does not know it: ENOSYS). */
static inline int t_have_pidfd(void)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
#endif
	return 0;
}

/* Pidfds this process holds (poll mode watches a producer in our pid namespace with
 * one). */
static inline int t_count_pidfds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++) {
		char path[64], link[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t k = readlink(path, link, sizeof link - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		n += strstr(link, "pidfd") != NULL;
	}
	return n;
}

#endif
