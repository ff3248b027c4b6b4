/* shmkit — small helpers every layer uses: clocks, futexes, process liveness, errors,
 * version. The -errno syscall wrappers live here and nowhere else. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <shmkit/base.h>
#include "internal.h"

int64_t shmkit__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

int64_t shmkit__deadline(int64_t timeout_ns)
{
	if (timeout_ns <= 0)
		return timeout_ns;
	int64_t now = shmkit__now_ns();
	/* A timeout so large that it overflows is as good as forever. */
	if (timeout_ns > INT64_MAX - now)
		return -1;
	return now + timeout_ns;
}

int shmkit__futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline_ns)
{
	struct timespec ts, *tp = NULL;
	if (deadline_ns >= 0) {
		ts.tv_sec = deadline_ns / SHMKIT_SEC;
		ts.tv_nsec = deadline_ns % SHMKIT_SEC;
		tp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a wait that is
	 * interrupted and retried never stretches the caller's timeout. Not private: the
	 * word is shared between processes. */
	long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, tp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno; /* EAGAIN: the word already changed */
	return 0;
}

int shmkit__futex_wake(_Atomic uint32_t *word, int count)
{
	long r = syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
	return r < 0 ? -errno : (int)r;
}

/* Reads the state letter (field 3) and start time (field 22) of a process; 0 if it
 * does not exist or /proc cannot tell. */
static uint64_t proc_stat(pid_t pid, char *state)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: fields resume after
	 * the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return 0;
	*state = p[2];
	p++; /* the space before field 3 */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

uint64_t shmkit__proc_start(pid_t pid)
{
	char state;
	return proc_stat(pid, &state);
}

int shmkit__proc_alive(pid_t pid, uint64_t start)
{
	if (pid <= 0)
		return -1;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	char state = '?';
	uint64_t now = proc_stat(pid, &state);
	if (now == 0)
		return -1; /* another pid namespace, or /proc hidden: cannot tell */
	/* A zombie has released its memory and locks: for its peers it is dead. */
	if (state == 'Z' || state == 'X')
		return 0;
	/* The same pid with another start time is a new process: the old one died. */
	return start == 0 || now == start ? 1 : 0;
}

const char *shmkit_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return "Success";
	switch (err) {
	case EPROTO:
		return "Not a valid shmkit segment (bad or foreign header)";
	case EIDRM:
		return "Segment was deleted";
	case EADDRINUSE:
		return "System V key is used by a segment of another name";
	case EPIPE:
		return "Peer closed or died";
	case EOWNERDEAD:
		return "Previous lock owner died; state must be repaired";
	default:
		break;
	}
	/* strerror() may use a static buffer for unknown values; strerrordesc_np() never
	 * does and is thread-safe. */
	const char *s = strerrordesc_np(err);
	return s ? s : "Unknown error";
}

unsigned shmkit_version(void)
{
	return SHMKIT_VERSION;
}

const char *shmkit_version_string(void)
{
	return SHMKIT_VERSION_STRING;
}
