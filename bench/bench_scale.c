/* shmkit bench — the scale section (issue 10): a consumer multiplexing 1 000 channels
 * through one epoll set against the same loop over one channel, the CPU a consumer
 * waiting on idle channels uses, and the time to open 10 000 channel ends.
 *
 * Why it is built this way:
 * - Wake-up latency is the time from the producer's send (the clock read just before
 *   it) to the consumer's receive returning the message, the consumer asleep in
 *   epoll_wait() beforehand: the producer waits until the consumer announced that it
 *   is about to wait, then SC_SETTLE_NS more, so that the consumer sleeps in the kernel
 *   when the message comes. Both ends read CLOCK_MONOTONIC, one clock for every CPU
 *   (the time-stamp counters of two CPUs need not agree); a read costs tens of
 *   nanoseconds against wake-ups of microseconds.
 * - One consumer process serves every trial. It holds 1 001 channels' consumer ends
 *   and two epoll sets, one holding the descriptor of channel 0, the other those of
 *   the other 1 000, so the 1-channel and the 1 000-channel trials run the same loop
 *   in the same process, alternately (A B A B), as the other sections interleave. The
 *   channels are made once for the section, not per trial: opening 1 000 costs about
 *   as much as a whole round of trials. The producer (this process) made them before
 *   the fork, so every consumer's descriptor watches it through a pidfd from the start
 *   (the common case: same pid namespace; otherwise a 200 ms timer would tick).
 * - A trial's figure is its median sample; the ratio is the median of the per-round
 *   ratios, with their quartiles, as everywhere in the bench. p99 pools every sample.
 * - Idle: the consumer waits in epoll_wait() on each set for SC_IDLE_MS while its
 *   producer lives and sends nothing: its CPU time (getrusage) and the reports epoll
 *   made meanwhile.
 * - Opening: 5 000 channels, both ends, in this process (4 KiB rings, the smallest),
 *   SC_OPEN_REPS times: the median time to open them, and to close and remove them.
 */
#include "bench.h" /* first: it defines _GNU_SOURCE */

#include <dirent.h>
#include <sys/epoll.h>

#include "json.h"

#define SC_CHANS 1000	    /* channels in the big epoll set */
#define SC_ENDS 10000	    /* ends opened by the opening case (both ends) */
#define SC_CAP 4096	    /* every ring: the smallest */
#define SC_SETTLE_NS 100000 /* the consumer has been waiting this long */
#define SC_SAMPLES_MAX 4096 /* per trial */
#define SC_MIN_SAMPLES 16   /* per trial, whatever its length */
#define SC_WAIT_S 5	    /* a wake-up this late is lost: the case fails */
#define SC_IDLE_MS 2000	    /* idle measurement, each set (quick: 300) */
#define SC_OPEN_REPS 3	    /* opening case repetitions (quick: 1) */
#define SC_STOP UINT64_MAX  /* sample number that ends a trial */

enum sc_op { SC_OP_NONE, SC_OP_TRIAL1, SC_OP_TRIALN, SC_OP_IDLE1, SC_OP_IDLEN, SC_OP_QUIT };

/* The cases, in the order each round runs them (the two wake cases) and then once. */
enum { SC_WAKE1, SC_WAKEN, SC_IDLE1, SC_IDLEN, SC_OPEN, SC_NCASES };
static const struct {
	const char *id, *label;
} sc_cases[SC_NCASES] = {
    {"scale.wake.1", "1 channel in the epoll set"},
    {"scale.wake.1000", "1 000 channels in the epoll set"},
    {"scale.idle.1", "1 idle channel"},
    {"scale.idle.1000", "1 000 idle channels"},
    {"scale.open.10000", "10 000 channel ends"},
};

/* One message: its number in the trial and the producer's clock just before the send. */
struct sc_msg {
	uint64_t k;
	int64_t t0;
};

/* Shared by the producer (parent) and the consumer (child), MAP_SHARED | MAP_ANONYMOUS.
 * cmd is written by the parent only: (sequence << 8) | op; done by the child only: the
 * sequence of the last command it finished (release: what it wrote for it, below, is
 * visible to the parent's acquire). waiting: in a trial, the messages the child has
 * taken before its next epoll_wait() (release, read with acquire). */
struct sc_ctl {
	alignas(64) _Atomic uint32_t cmd;
	alignas(64) _Atomic uint32_t done;
	alignas(64) _Atomic uint64_t waiting;
	alignas(64) _Atomic int ready; /* 1: the child's ends are open; -1: it failed */
	int failed;		       /* the child failed a command: msg says why */
	char msg[200];
	/* a trial's results */
	uint64_t reports, empty;
	int64_t lat[SC_SAMPLES_MAX];
	/* an idle period's */
	int64_t idle_cpu_ns, idle_wall_ns;
	uint64_t idle_reports;
	int pidfds, timers;
	/* opening the consumer ends and taking their descriptors, in the child */
	int64_t open_ns, fd_ns;
};

struct sc_res {
	enum state state;
	char why[200];
	double *val;  /* per round: the trial's median latency, ns */
	int64_t *all; /* every sample, for p99 */
	size_t nall;
	uint64_t reports, empty;
};

struct sbench {
	struct sc_cfg cfg;
	int ran;
	struct sc_res res[SC_NCASES];
	/* idle cases */
	int64_t idle_cpu_ns[2], idle_wall_ns[2];
	uint64_t idle_reports[2];
	int pidfds[2], timers[2];
	/* the consumer's 1 001 ends */
	int64_t copen_ns, cfd_ns;
	/* the opening case: the median over its repetitions */
	double open_s, close_s;
	int open_reps;
	long fds_needed;
	double seconds; /* the section's wall time */
};

static struct sc_ctl *s_ctl;

static int s_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int s_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int s_pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) ? -errno : 0;
}

static void s_nap(int64_t ns)
{
	struct timespec ts = {ns / 1000000000, ns % 1000000000};
	nanosleep(&ts, NULL);
}

static void s_name(char *b, size_t n, pid_t pid, const char *what, int i)
{
	snprintf(b, n, "/shmkit-bench-%d-scale-%s-%d", (int)pid, what, i);
}

/* Soft RLIMIT_NOFILE up to the hard limit when @need is more than the soft one. 0, or
 * -1 when the hard limit is too low (*why says so). *old keeps the limit to restore. */
static int s_fd_room(long need, struct rlimit *old, char *why, size_t n)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(why, n, "getrlimit: %s", strerror(errno));
		return -1;
	}
	*old = rl;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)need) {
		snprintf(why, n, "needs %ld descriptors; RLIMIT_NOFILE's hard limit is %llu", need,
			 (unsigned long long)rl.rlim_max);
		return -1;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(why, n, "setrlimit: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int s_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;
}

/* Pidfds and timerfds this process holds: what the channels' descriptors watch their
 * producers with. */
static void s_count_watchers(int *pidfds, int *timers)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	*pidfds = *timers = 0;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[300], link[64];
		ssize_t k;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		k = readlink(path, link, sizeof link - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		*pidfds += strstr(link, "pidfd") != NULL;
		*timers += strstr(link, "timerfd") != NULL;
	}
	closedir(d);
}

static int64_t s_cpu_ns(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* ---- the consumer (child) ---- */

static _Noreturn void s_child_fail(const char *what, int err)
{
	snprintf(s_ctl->msg, sizeof s_ctl->msg, "consumer: %s: %s", what,
		 err ? shmkit_strerror(err) : "unexpected");
	s_ctl->failed = 1;
	atomic_store_explicit(&s_ctl->ready, -1, memory_order_release);
	_exit(1);
}

/* One trial: take messages where the set @ep reports them until SC_STOP. */
static void s_child_trial(int ep, shmkit_chan **c)
{
	struct epoll_event evs[64];
	uint64_t got = 0, reports = 0, empty = 0;
	int stop = 0;
	atomic_store_explicit(&s_ctl->waiting, 0, memory_order_release);
	while (!stop) {
		/* A second at a time: a report late by SC_WAIT_S is the parent's to judge. */
		int n = epoll_wait(ep, evs, 64, 1000);
		if (n < 0 && errno != EINTR)
			s_child_fail("epoll_wait", -errno);
		for (int e = 0; e < n; e++) {
			int i = (int)evs[e].data.u32, any = 0;
			reports++;
			for (;;) {
				struct sc_msg m;
				ssize_t r = shmkit_chan_recv(c[i], &m, sizeof m, 0);
				int64_t t1 = now_ns();
				if (r == -EAGAIN)
					break; /* drained: armed again */
				if (r != (ssize_t)sizeof m)
					s_child_fail("shmkit_chan_recv", r < 0 ? (int)r : 0);
				any = 1;
				if (m.k == SC_STOP)
					stop = 1;
				else if (m.k < SC_SAMPLES_MAX)
					s_ctl->lat[m.k] = t1 - m.t0;
				else
					s_child_fail("sample number out of range", 0);
				got++;
			}
			empty += !any;
		}
		/* After the receives that re-armed the descriptors, before the next wait. */
		if (!stop)
			atomic_store_explicit(&s_ctl->waiting, got, memory_order_release);
	}
	s_ctl->reports = reports;
	s_ctl->empty = empty;
}

/* Wait on @ep for @ms with nothing sent: CPU time and reports. */
static void s_child_idle(int ep, shmkit_chan **c, int64_t ms)
{
	struct epoll_event evs[64];
	uint64_t reports = 0;
	s_count_watchers(&s_ctl->pidfds, &s_ctl->timers);
	int64_t cpu0 = s_cpu_ns(), t0 = now_ns(), end = t0 + ms * 1000000;
	for (int64_t now = t0; now < end; now = now_ns()) {
		int n = epoll_wait(ep, evs, 64, (int)((end - now + 999999) / 1000000));
		if (n < 0 && errno != EINTR)
			s_child_fail("epoll_wait", -errno);
		for (int e = 0; e < n; e++) {
			unsigned char b[64];
			reports++;
			/* Nothing was sent: a report is a timer's tick (or a spare one). */
			if (shmkit_chan_recv(c[evs[e].data.u32], b, sizeof b, 0) != -EAGAIN)
				s_child_fail("a message in an idle channel", 0);
		}
	}
	s_ctl->idle_cpu_ns = s_cpu_ns() - cpu0;
	s_ctl->idle_wall_ns = now_ns() - t0;
	s_ctl->idle_reports = reports;
}

static _Noreturn void s_child(const struct sc_cfg *cfg, shmkit_chan **prod, const char names[][64])
{
	static shmkit_chan *c[SC_CHANS + 1];
	int ep[2], r;
	uint32_t seen = 0;

	if (cfg->pinned && (r = s_pin(cfg->cpu[1])) < 0)
		s_child_fail("sched_setaffinity", r);
	/* The parent's ends, inherited: this frees only our copy (their descriptors). */
	for (int i = 0; i <= SC_CHANS; i++)
		shmkit_chan_close(prod[i]);
	int64_t t0 = now_ns();
	for (int i = 0; i <= SC_CHANS; i++) {
		r = shmkit_chan_open(names[i], SHMKIT_CHAN_CONSUMER, 0, 0, 0, &c[i]);
		if (r < 0)
			s_child_fail("shmkit_chan_open", r);
	}
	int64_t t1 = now_ns();
	for (int s = 0; s < 2; s++)
		if ((ep[s] = epoll_create1(EPOLL_CLOEXEC)) < 0)
			s_child_fail("epoll_create1", -errno);
	for (int i = 0; i <= SC_CHANS; i++) {
		int fd = shmkit_chan_fd(c[i]);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		if (fd < 0)
			s_child_fail("shmkit_chan_fd", fd);
		if (epoll_ctl(ep[i > 0], EPOLL_CTL_ADD, fd, &ev) < 0)
			s_child_fail("epoll_ctl", -errno);
	}
	s_ctl->open_ns = t1 - t0;
	s_ctl->fd_ns = now_ns() - t1;
	atomic_store_explicit(&s_ctl->ready, 1, memory_order_release);
	for (;;) {
		/* Acquire pairs with the parent's release of the command. */
		uint32_t cmd = atomic_load_explicit(&s_ctl->cmd, memory_order_acquire);
		if (cmd >> 8 == seen) {
			s_nap(100000); /* between trials: nothing measured */
			continue;
		}
		seen = cmd >> 8;
		switch (cmd & 0xff) {
		case SC_OP_TRIAL1:
		case SC_OP_TRIALN:
			s_child_trial(ep[(cmd & 0xff) == SC_OP_TRIALN], c);
			break;
		case SC_OP_IDLE1:
		case SC_OP_IDLEN:
			s_child_idle(ep[(cmd & 0xff) == SC_OP_IDLEN], c,
				     cfg->quick ? SC_IDLE_MS / 7 : SC_IDLE_MS);
			break;
		default:
			for (int i = 0; i <= SC_CHANS; i++)
				shmkit_chan_close(c[i]);
			_exit(0);
		}
		/* Release: the results above are visible with it. */
		atomic_store_explicit(&s_ctl->done, seen, memory_order_release);
	}
}

/* ---- the producer (this process) ---- */

/* Wait until *@w reaches @v: 0, or -1 (the child died or failed, or SC_WAIT_S passed:
 * *why says which). Spins on two CPUs, yields on one. */
static int s_await(_Atomic uint64_t *w, uint64_t v, pid_t child, char *why, size_t n)
{
	int64_t deadline = now_ns() + (int64_t)SC_WAIT_S * 1000000000;
	for (unsigned i = 1;; i++) {
		/* Acquire pairs with the child's release. */
		if (atomic_load_explicit(w, memory_order_acquire) >= v)
			return 0;
		if (g_onecpu)
			sched_yield();
#if defined(__x86_64__) || defined(__i386__)
		else
			_mm_pause();
#endif
		if (i % 1024)
			continue;
		if (s_ctl->failed || waitpid(child, NULL, WNOHANG) != 0) {
			snprintf(why, n, "%s", s_ctl->failed ? s_ctl->msg : "the consumer died");
			return -1;
		}
		if (now_ns() > deadline) {
			snprintf(why, n, "no wake-up within %d s: message %" PRIu64 " lost",
				 SC_WAIT_S, v);
			return -1;
		}
	}
}

/* Send command @op and wait until the child finished it (@limit_ns at most). */
static int s_command(uint32_t *seq, enum sc_op op, pid_t child, int64_t limit_ns, char *why,
		     size_t n)
{
	uint32_t s = ++*seq;
	int64_t deadline = now_ns() + limit_ns;
	/* Release: the child sees what we prepared for the command. */
	atomic_store_explicit(&s_ctl->cmd, s << 8 | (uint32_t)op, memory_order_release);
	while (atomic_load_explicit(&s_ctl->done, memory_order_acquire) != s) {
		if (s_ctl->failed || waitpid(child, NULL, WNOHANG) != 0) {
			snprintf(why, n, "%s", s_ctl->failed ? s_ctl->msg : "the consumer died");
			return -1;
		}
		if (now_ns() > deadline) {
			snprintf(why, n, "the consumer did not finish in time");
			return -1;
		}
		s_nap(200000);
	}
	return 0;
}

/* One wake-up trial on the set of @ch (@nch channels, starting at @first). Its median
 * sample goes to @res's round; every sample to res->all. */
static int s_trial(struct sbench *sb, struct sc_res *res, int round, shmkit_chan **prod, int first,
		   int nch, enum sc_op op, uint32_t *seq, pid_t child, uint64_t *rng)
{
	int64_t trial_ns = (int64_t)sb->cfg.trial_ms * 1000000, t_end;
	uint32_t s = ++*seq;
	uint64_t k = 0;
	int r;

	atomic_store_explicit(&s_ctl->waiting, UINT64_MAX, memory_order_relaxed);
	atomic_store_explicit(&s_ctl->cmd, s << 8 | (uint32_t)op, memory_order_release);
	/* The child stores waiting = 0 when it starts the trial. */
	for (int64_t d = now_ns() + (int64_t)SC_WAIT_S * 1000000000;
	     atomic_load_explicit(&s_ctl->waiting, memory_order_acquire) != 0;) {
		if (now_ns() > d || s_ctl->failed || waitpid(child, NULL, WNOHANG) != 0) {
			snprintf(res->why, sizeof res->why, "%s",
				 s_ctl->failed ? s_ctl->msg
					       : "the consumer did not start the trial");
			return -1;
		}
		s_nap(50000);
	}
	t_end = now_ns() + trial_ns;
	for (; k < SC_SAMPLES_MAX && (k < SC_MIN_SAMPLES || now_ns() < t_end); k++) {
		struct sc_msg m;
		shmkit_chan *ch;
		if (s_await(&s_ctl->waiting, k, child, res->why, sizeof res->why) < 0)
			return -1;
		/* Settle: the consumer is asleep in epoll_wait() by now. */
		if (g_onecpu) {
			s_nap(SC_SETTLE_NS);
		} else {
			int64_t t = now_ns();
			while (now_ns() - t < SC_SETTLE_NS)
#if defined(__x86_64__) || defined(__i386__)
				_mm_pause();
#else
				;
#endif
		}
		ch = prod[first + (nch > 1 ? (int)((*rng = *rng * 6364136223846793005ULL +
							   1442695040888963407ULL) >>
						   33) %
						 nch
					   : 0)];
		m.k = k;
		m.t0 = now_ns();
		r = shmkit_chan_send(ch, &m, sizeof m, 0);
		if (r < 0) {
			snprintf(res->why, sizeof res->why, "shmkit_chan_send: %s",
				 shmkit_strerror(r));
			return -1;
		}
	}
	if (s_await(&s_ctl->waiting, k, child, res->why, sizeof res->why) < 0)
		return -1;
	struct sc_msg stop = {SC_STOP, 0};
	r = shmkit_chan_send(prod[first], &stop, sizeof stop, 0);
	if (r < 0) {
		snprintf(res->why, sizeof res->why, "shmkit_chan_send: %s", shmkit_strerror(r));
		return -1;
	}
	for (int64_t d = now_ns() + (int64_t)SC_WAIT_S * 1000000000;
	     atomic_load_explicit(&s_ctl->done, memory_order_acquire) != s;) {
		if (now_ns() > d || s_ctl->failed || waitpid(child, NULL, WNOHANG) != 0) {
			snprintf(res->why, sizeof res->why, "%s",
				 s_ctl->failed ? s_ctl->msg : "the consumer did not end the trial");
			return -1;
		}
		s_nap(50000);
	}
	res->reports += s_ctl->reports;
	res->empty += s_ctl->empty;
	memcpy(res->all + res->nall, s_ctl->lat, k * sizeof *res->all);
	qsort(res->all + res->nall, k, sizeof *res->all, s_cmp_i64);
	res->val[round] = (double)res->all[res->nall + k / 2];
	res->nall += k;
	return 0;
}

/* The wake-up rounds and the idle periods: one consumer process for all of them. */
static int s_wake_idle(struct sbench *sb)
{
	static shmkit_chan *prod[SC_CHANS + 1];
	static char names[SC_CHANS + 1][64];
	struct sc_res *w1 = &sb->res[SC_WAKE1], *wn = &sb->res[SC_WAKEN];
	struct rlimit old;
	char why[200];
	pid_t self = getpid(), child = -1;
	uint32_t seq = 0;
	uint64_t rng = (uint64_t)self * 0x9e3779b97f4a7c15ULL;
	int want_wake = w1->state == ST_OK || wn->state == ST_OK;
	int want_idle = sb->res[SC_IDLE1].state == ST_OK || sb->res[SC_IDLEN].state == ST_OK;
	int r = 0, made = 0, progress = isatty(STDERR_FILENO);

	if (!want_wake && !want_idle)
		return 0;
	/* Here, one descriptor per end and one socket to signal each; in the child, four
	 * per end (the segment's, the epoll, the socket, the pidfd). */
	if (s_fd_room(s_count_fds() + 4L * (SC_CHANS + 1) + 64, &old, why, sizeof why) < 0) {
		for (int i = 0; i < SC_OPEN; i++)
			if (sb->res[i].state == ST_OK) {
				sb->res[i].state = ST_UNAVAILABLE;
				snprintf(sb->res[i].why, sizeof sb->res[i].why, "%s", why);
			}
		return 0;
	}
	for (int i = 0; i <= SC_CHANS; i++, made++) {
		s_name(names[i], sizeof names[i], self, "wake", i);
		r = shmkit_chan_open(names[i], SHMKIT_CHAN_PRODUCER, SC_CAP, 0600,
				     SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &prod[i]);
		if (r < 0) {
			snprintf(why, sizeof why, "shmkit_chan_open: %s", shmkit_strerror(r));
			goto fail;
		}
	}
	memset(s_ctl, 0, sizeof *s_ctl);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		snprintf(why, sizeof why, "fork: %s", strerror(errno));
		goto fail;
	}
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(1);
		s_child(&sb->cfg, prod, (const char(*)[64])names);
	}
	for (int64_t d = now_ns() + 60 * (int64_t)1000000000;
	     atomic_load_explicit(&s_ctl->ready, memory_order_acquire) == 0;) {
		if (now_ns() > d || waitpid(child, NULL, WNOHANG) != 0) {
			snprintf(why, sizeof why, "the consumer did not open its ends");
			goto fail;
		}
		s_nap(1000000);
	}
	if (s_ctl->ready < 0) {
		snprintf(why, sizeof why, "%s", s_ctl->msg);
		goto fail;
	}
	sb->copen_ns = s_ctl->open_ns;
	sb->cfd_ns = s_ctl->fd_ns;

	for (int round = 0; want_wake && round < sb->cfg.rounds; round++) {
		if (progress)
			fprintf(stderr, "\rshmkit bench: scale, round %d/%d ", round + 1,
				sb->cfg.rounds);
		for (int c = SC_WAKE1; c <= SC_WAKEN; c++) {
			struct sc_res *res = &sb->res[c];
			if (res->state != ST_OK)
				continue;
			if (s_trial(sb, res, round, prod, c == SC_WAKE1 ? 0 : 1,
				    c == SC_WAKE1 ? 1 : SC_CHANS,
				    c == SC_WAKE1 ? SC_OP_TRIAL1 : SC_OP_TRIALN, &seq, child,
				    &rng) < 0) {
				res->state = ST_FAILED;
				goto failed_case; /* the consumer's state is unknown: end here */
			}
		}
	}
	if (progress)
		fprintf(stderr, "\r%50s\r", "");
	for (int s = 0; s < 2; s++) {
		struct sc_res *res = &sb->res[SC_IDLE1 + s];
		if (res->state != ST_OK)
			continue;
		if (s_command(&seq, s ? SC_OP_IDLEN : SC_OP_IDLE1, child,
			      (int64_t)(SC_IDLE_MS + 30000) * 1000000, res->why,
			      sizeof res->why) < 0) {
			res->state = ST_FAILED;
			goto failed_case;
		}
		sb->idle_cpu_ns[s] = s_ctl->idle_cpu_ns;
		sb->idle_wall_ns[s] = s_ctl->idle_wall_ns;
		sb->idle_reports[s] = s_ctl->idle_reports;
		sb->pidfds[s] = s_ctl->pidfds;
		sb->timers[s] = s_ctl->timers;
	}
	(void)s_command(&seq, SC_OP_QUIT, child, (int64_t)5 * 1000000000, why, sizeof why);
	goto out;
failed_case:
	r = -1;
	goto out;
fail:
	r = -1;
	for (int i = 0; i < SC_OPEN; i++)
		if (sb->res[i].state == ST_OK) {
			sb->res[i].state = ST_FAILED;
			snprintf(sb->res[i].why, sizeof sb->res[i].why, "%s", why);
		}
out:
	if (child > 0) {
		int st;
		/* Ended by now, or stuck: either way it goes. */
		for (int i = 0; i < 50 && waitpid(child, &st, WNOHANG) == 0; i++)
			s_nap(10000000);
		if (waitpid(child, &st, WNOHANG) == 0) {
			kill(child, SIGKILL);
			waitpid(child, &st, 0);
		}
	}
	if (progress)
		fprintf(stderr, "\r%50s\r", "");
	for (int i = 0; i < made; i++) {
		shmkit_chan_close(prod[i]);
		shmkit_seg_unlink(names[i], 0);
	}
	setrlimit(RLIMIT_NOFILE, &old);
	return r;
}

/* Open 5 000 channels, both ends (*open_s), then close and remove them (*close_s). */
static int s_open_once(double *open_s, double *close_s, char *why, size_t n)
{
	static shmkit_chan *c[SC_ENDS / 2], *p[SC_ENDS / 2];
	char name[64];
	pid_t self = getpid();
	int made = 0, r = 0;
	int64_t t0 = now_ns(), t1, t2;
	for (; made < SC_ENDS / 2; made++) {
		s_name(name, sizeof name, self, "open", made);
		r = shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, SC_CAP, 0600,
				     SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &c[made]);
		if (r == 0) {
			r = shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, 0, 0, 0, &p[made]);
			if (r < 0) {
				shmkit_chan_close(c[made]);
				shmkit_seg_unlink(name, 0);
			}
		}
		if (r < 0) {
			snprintf(why, n, "shmkit_chan_open (channel %d): %s", made,
				 shmkit_strerror(r));
			break;
		}
	}
	t1 = now_ns();
	for (int i = 0; i < made; i++) {
		s_name(name, sizeof name, self, "open", i);
		shmkit_chan_close(p[i]);
		shmkit_chan_close(c[i]);
		shmkit_seg_unlink(name, 0);
	}
	t2 = now_ns();
	*open_s = (double)(t1 - t0) / 1e9;
	*close_s = (double)(t2 - t1) / 1e9;
	return r < 0 ? -1 : 0;
}

static void s_open(struct sbench *sb)
{
	struct sc_res *res = &sb->res[SC_OPEN];
	double o[SC_OPEN_REPS], c[SC_OPEN_REPS];
	struct rlimit old;
	int reps = sb->cfg.quick ? 1 : SC_OPEN_REPS;

	if (res->state != ST_OK)
		return;
	sb->fds_needed = s_count_fds() + SC_ENDS + 64;
	if (s_fd_room(sb->fds_needed, &old, res->why, sizeof res->why) < 0) {
		res->state = ST_UNAVAILABLE;
		return;
	}
	for (int i = 0; i < reps; i++)
		if (s_open_once(&o[i], &c[i], res->why, sizeof res->why) < 0) {
			res->state = ST_FAILED;
			break;
		}
	setrlimit(RLIMIT_NOFILE, &old);
	if (res->state != ST_OK)
		return;
	qsort(o, (size_t)reps, sizeof *o, s_cmp_double);
	qsort(c, (size_t)reps, sizeof *c, s_cmp_double);
	sb->open_s = o[reps / 2];
	sb->close_s = c[reps / 2];
	sb->open_reps = reps;
}

/* ---- results ---- */

static double s_median(const double *v, int n)
{
	double t[n > 0 ? n : 1];
	int k = 0;
	for (int i = 0; i < n; i++)
		if (isfinite(v[i]))
			t[k++] = v[i];
	if (!k)
		return NAN;
	qsort(t, (size_t)k, sizeof *t, s_cmp_double);
	return k % 2 ? t[k / 2] : (t[k / 2 - 1] + t[k / 2]) / 2;
}

/* Quantile @q of the per-round ratios wake.1000 / wake.1; *used: rounds with both. */
static double s_ratio_q(const struct sbench *sb, double q, int *used)
{
	int rounds = sb->cfg.rounds, n = 0, k;
	double v[rounds > 0 ? rounds : 1], pos;
	const double *a = sb->res[SC_WAKEN].val, *b = sb->res[SC_WAKE1].val;
	for (int r = 0; a && b && r < rounds; r++)
		if (isfinite(a[r]) && isfinite(b[r]) && b[r] > 0)
			v[n++] = a[r] / b[r];
	if (used)
		*used = n;
	if (!n)
		return NAN;
	qsort(v, (size_t)n, sizeof *v, s_cmp_double);
	pos = q * (n - 1);
	k = (int)pos;
	return k + 1 < n ? v[k] + (v[k + 1] - v[k]) * (pos - k) : v[k];
}

static double s_p99(const struct sc_res *r)
{
	if (!r->nall)
		return NAN;
	return (double)r->all[(size_t)((double)(r->nall - 1) * 0.99)];
}

/* The pooled samples, sorted (each trial's were sorted alone). */
static void s_sort_all(struct sbench *sb)
{
	for (int c = SC_WAKE1; c <= SC_WAKEN; c++)
		if (sb->res[c].all)
			qsort(sb->res[c].all, sb->res[c].nall, sizeof *sb->res[c].all, s_cmp_i64);
}

#define SC_TARGET 1.5
static const char *s_verdict(double v)
{
	return !isfinite(v) ? "SKIP" : v <= SC_TARGET ? "PASS" : "MISS";
}

/* ---- the entry points ---- */

int shmkit__bench_scale_run(const struct sc_cfg *cfg, struct sbench **out)
{
	struct sbench *sb = calloc(1, sizeof *sb);
	int64_t t0 = now_ns();
	int failed = 0;

	*out = sb;
	if (!sb)
		goto nomem;
	sb->cfg = *cfg;
	for (int i = 0; i < SC_NCASES; i++) {
		struct sc_res *res = &sb->res[i];
		if (cfg->only && !strstr(sc_cases[i].id, cfg->only)) {
			res->state = ST_SKIPPED;
			snprintf(res->why, sizeof res->why, "not selected (--only %s)", cfg->only);
		} else {
			sb->ran = 1;
		}
		if (i <= SC_WAKEN) {
			res->val = malloc(sizeof(double) * (size_t)cfg->rounds);
			res->all = malloc(sizeof(int64_t) * SC_SAMPLES_MAX * (size_t)cfg->rounds);
			if (!res->val || !res->all)
				goto nomem;
			for (int k = 0; k < cfg->rounds; k++)
				res->val[k] = NAN;
		}
	}
	if (!sb->ran)
		return 0;
	s_ctl =
	    mmap(NULL, sizeof *s_ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s_ctl == MAP_FAILED) {
		s_ctl = NULL;
		goto nomem;
	}
	signal(SIGPIPE, SIG_IGN);
	failed |= s_wake_idle(sb) < 0;
	s_open(sb);
	s_sort_all(sb);
	munmap(s_ctl, sizeof *s_ctl);
	s_ctl = NULL;
	sb->seconds = (double)(now_ns() - t0) / 1e9;
	for (int i = 0; i < SC_NCASES; i++)
		if (sb->res[i].state == ST_FAILED) {
			failed = 1;
			fprintf(stderr, "shmkit bench: %s failed: %s\n", sc_cases[i].id,
				sb->res[i].why);
		}
	return failed ? -1 : 0;
nomem:
	fprintf(stderr, "shmkit bench: scale: out of memory\n");
	return -ENOMEM;
}

void shmkit__bench_scale_free(struct sbench *sb)
{
	if (!sb)
		return;
	for (int i = 0; i < SC_NCASES; i++) {
		free(sb->res[i].val);
		free(sb->res[i].all);
	}
	free(sb);
}

static void s_print_json(FILE *f, const struct sbench *sb)
{
	int rounds = sb->cfg.rounds, used;
	double v = s_ratio_q(sb, 0.5, &used);

	fprintf(f, "{\n    \"producer_cpu\": %d, \"consumer_cpu\": %d, \"seconds\": ",
		sb->cfg.pinned ? sb->cfg.cpu[0] : -1, sb->cfg.pinned ? sb->cfg.cpu[1] : -1);
	shmkit__json_num(f, sb->seconds);
	fprintf(f,
		",\n    \"method\": \"wake-up latency: 16-byte messages, one at a time, sent "
		"%d us after the consumer went back to epoll_wait on the set, on a random "
		"channel of it; time from before the send to after the receive, CLOCK_MONOTONIC "
		"on both sides; one consumer process holds both sets (1 and 1000 channels, "
		"4 KiB rings), trials alternate; a trial's figure is its median sample; the "
		"ratio is the median of per-round ratios; idle: getrusage over an epoll_wait "
		"with nothing sent, the producer alive in the same pid namespace\",\n",
		SC_SETTLE_NS / 1000);
	fprintf(f, "    \"cases\": [\n");
	for (int i = 0; i < SC_NCASES; i++) {
		const struct sc_res *r = &sb->res[i];
		fprintf(f, "      {\"id\": ");
		shmkit__json_str(f, sc_cases[i].id);
		fprintf(f, ", \"label\": ");
		shmkit__json_str(f, sc_cases[i].label);
		fprintf(f, ", \"status\": \"%s\", \"error\": ", shmkit__bench_state_name(r->state));
		if (r->state == ST_OK)
			fputs("null", f);
		else
			shmkit__json_str(f, r->why);
		if (i <= SC_WAKEN) {
			fprintf(f, ",\n       \"channels\": %d, \"median_ns\": ",
				i == SC_WAKE1 ? 1 : SC_CHANS);
			shmkit__json_num(f, r->state == ST_OK ? s_median(r->val, rounds) : NAN);
			fprintf(f, ", \"p99_ns\": ");
			shmkit__json_num(f, r->state == ST_OK ? s_p99(r) : NAN);
			fprintf(f,
				", \"samples\": %zu, \"reports\": %" PRIu64
				", \"empty_reports\": %" PRIu64 ", \"per_round_median_ns\": [",
				r->nall, r->reports, r->empty);
			for (int k = 0; k < rounds; k++) {
				fputs(k ? ", " : "", f);
				shmkit__json_num(f, r->val[k]);
			}
			fputc(']', f);
		} else if (i <= SC_IDLEN) {
			int s = i - SC_IDLE1, ok = r->state == ST_OK;
			fprintf(f, ",\n       \"channels\": %d, \"cpu_ms\": ", s ? SC_CHANS : 1);
			shmkit__json_num(f, ok ? (double)sb->idle_cpu_ns[s] / 1e6 : NAN);
			fprintf(f, ", \"seconds\": ");
			shmkit__json_num(f, ok ? (double)sb->idle_wall_ns[s] / 1e9 : NAN);
			fprintf(f, ", \"reports\": %" PRIu64 ", \"pidfds\": %d, \"timerfds\": %d",
				sb->idle_reports[s], sb->pidfds[s], sb->timers[s]);
		} else {
			int ok = r->state == ST_OK;
			fprintf(f, ",\n       \"ends\": %d, \"open_s\": ", SC_ENDS);
			shmkit__json_num(f, ok ? sb->open_s : NAN);
			fprintf(f, ", \"close_and_remove_s\": ");
			shmkit__json_num(f, ok ? sb->close_s : NAN);
			fprintf(f, ", \"repetitions\": %d, \"descriptors_needed\": %ld",
				sb->open_reps, sb->fds_needed);
		}
		fprintf(f, "}%s\n", i + 1 < SC_NCASES ? "," : "");
	}
	fprintf(f, "    ],\n    \"acceptance\": [\n      {\"id\": \"wake1000_vs_1\", \"what\": "
		   "\"wake-up latency, 1000 channels in one epoll set / 1 channel\", "
		   "\"numerator\": \"scale.wake.1000\", \"denominator\": \"scale.wake.1\", "
		   "\"op\": \"<=\", \"threshold\": ");
	shmkit__json_num(f, SC_TARGET);
	fprintf(f, ", \"measured\": ");
	shmkit__json_num(f, v);
	fprintf(f, ", \"p25\": ");
	shmkit__json_num(f, s_ratio_q(sb, 0.25, NULL));
	fprintf(f, ", \"p75\": ");
	shmkit__json_num(f, s_ratio_q(sb, 0.75, NULL));
	fprintf(f, ", \"rounds\": %d, \"result\": \"%s\"}\n    ],\n    \"all_pass\": %s\n  }", used,
		s_verdict(v), !strcmp(s_verdict(v), "PASS") ? "true" : "false");
}

static void s_print_table(FILE *f, const struct sbench *sb)
{
	int rounds = sb->cfg.rounds, used;
	char b[3][32];
	double v;

	fprintf(f,
		"\nScale (issue 10): %d rounds of 2 wake-up trials of %d ms, interleaved "
		"(1 channel, 1 000 channels, ...);\n",
		rounds, sb->cfg.trial_ms);
	if (sb->cfg.pinned)
		fprintf(f, "producer on CPU %d, consumer on CPU %d; ", sb->cfg.cpu[0],
			sb->cfg.cpu[1]);
	else
		fprintf(f, "producer and consumer unpinned (one CPU); ");
	fprintf(f, "the section took %.1f s.\n", sb->seconds);
	if (sb->copen_ns)
		fprintf(f,
			"The consumer opened its 1 001 ends in %.3f s and took their descriptors "
			"in %.3f s.\n\n",
			(double)sb->copen_ns / 1e9, (double)sb->cfd_ns / 1e9);
	else
		fputc('\n', f);

	fprintf(f, "Wake-up latency, consumer asleep in epoll_wait     median µs    p99 µs  "
		   "samples  empty reports\n");
	for (int i = SC_WAKE1; i <= SC_WAKEN; i++) {
		const struct sc_res *r = &sb->res[i];
		fprintf(f, "  %-46s", sc_cases[i].label);
		if (r->state != ST_OK) {
			fprintf(f, "  %s: %s\n", shmkit__bench_state_name(r->state), r->why);
			continue;
		}
		fprintf(f, " %9.2f %9.2f %8zu %8" PRIu64 "\n", s_median(r->val, rounds) / 1e3,
			s_p99(r) / 1e3, r->nall, r->empty);
	}
	fprintf(f,
		"  (16 B messages, one at a time, each sent %d µs after the consumer went "
		"back to\n   epoll_wait(), on a random channel of the set; send to receive "
		"returning, CLOCK_MONOTONIC;\n   empty reports: the set reported a channel "
		"with nothing to receive, allowed by level\n   triggering)\n\n",
		SC_SETTLE_NS / 1000);

	fprintf(f, "Idle consumer in epoll_wait, producer alive        CPU ms   seconds  "
		   "CPU %%   reports\n");
	for (int s = 0; s < 2; s++) {
		const struct sc_res *r = &sb->res[SC_IDLE1 + s];
		fprintf(f, "  %-46s", sc_cases[SC_IDLE1 + s].label);
		if (r->state != ST_OK) {
			fprintf(f, "  %s: %s\n", shmkit__bench_state_name(r->state), r->why);
			continue;
		}
		fprintf(f, " %8.3f %9.2f %7.4f %8" PRIu64 "\n", (double)sb->idle_cpu_ns[s] / 1e6,
			(double)sb->idle_wall_ns[s] / 1e9,
			100.0 * (double)sb->idle_cpu_ns[s] / (double)sb->idle_wall_ns[s],
			sb->idle_reports[s]);
	}
	if (sb->res[SC_IDLE1].state == ST_OK || sb->res[SC_IDLEN].state == ST_OK) {
		int s = sb->res[SC_IDLEN].state == ST_OK;
		fprintf(f,
			"  (the consumer's 1 001 descriptors watched their producer through %d "
			"pidfds and %d timers:\n   the common case, the producer in the same pid "
			"namespace; in another, or without\n   pidfd_open, a 200 ms timer per "
			"descriptor ticks instead)\n\n",
			sb->pidfds[s], sb->timers[s]);
	} else {
		fputc('\n', f);
	}

	{
		const struct sc_res *r = &sb->res[SC_OPEN];
		fprintf(f, "Opening %s (5 000 channels, both ends, 4 KiB rings)",
			sc_cases[SC_OPEN].label);
		if (r->state != ST_OK)
			fprintf(f, ": %s: %s\n\n", shmkit__bench_state_name(r->state), r->why);
		else
			fprintf(f,
				":\n  %.3f s (%.1f µs per end); closing and removing them %.3f s; "
				"the median of %d\n\n",
				sb->open_s, sb->open_s * 1e6 / SC_ENDS, sb->close_s, sb->open_reps);
	}

	v = s_ratio_q(sb, 0.5, &used);
	fprintf(f, "Scale target: the median of the per-round ratios, and their quartiles\n");
	if (isfinite(v) && v < 10)
		snprintf(b[0], 32, "%6.3f", v);
	else
		shmkit__bench_fmt_ratio(b[0], 32, v);
	fprintf(f, "  %s  %-42s %s %5.2f  measured %s  (quartiles %s %s; %d rounds)\n",
		s_verdict(v), "wake-up, 1 000 channels in epoll / 1", "<=", SC_TARGET, b[0],
		shmkit__bench_fmt_ratio(b[1], 32, s_ratio_q(sb, 0.25, NULL)),
		shmkit__bench_fmt_ratio(b[2], 32, s_ratio_q(sb, 0.75, NULL)), used);
	fprintf(f, "%s\n",
		!strcmp(s_verdict(v), "PASS")	? "The scale target is met."
		: !strcmp(s_verdict(v), "MISS") ? "The scale target is missed."
						: "The scale target could not be measured.");
}

void shmkit__bench_scale_print(FILE *f, const struct sbench *sb, int json, int alone)
{
	if (!sb || !sb->ran) {
		if (json && alone)
			fprintf(f, "{\"tool\": \"shmkit bench\", \"scale\": null}\n");
		else if (json)
			fputs("null", f);
		else if (alone)
			fprintf(f, "shmkit bench --scale: no scale case selected%s%s\n",
				sb && sb->cfg.only ? " by --only " : "",
				sb && sb->cfg.only ? sb->cfg.only : "");
		return;
	}
	if (alone && json) {
		fprintf(f, "{\n  \"tool\": \"shmkit bench\",\n  \"version\": ");
		shmkit__json_str(f, shmkit_version_string());
		fprintf(f, ",\n  \"machine\": {\"cpu\": ");
		shmkit__json_str(f, sb->cfg.machine);
		fprintf(f, ", \"nproc\": %ld, \"kernel\": ", sb->cfg.nproc);
		shmkit__json_str(f, sb->cfg.kernel);
		fprintf(f,
			", \"nice\": %d},\n  \"config\": {\"rounds\": %d, \"trial_ms\": %d, "
			"\"quick\": %s},\n  \"scale\": ",
			sb->cfg.nice, sb->cfg.rounds, sb->cfg.trial_ms,
			sb->cfg.quick ? "true" : "false");
		s_print_json(f, sb);
		fprintf(f, "\n}\n");
	} else if (json) {
		s_print_json(f, sb);
	} else {
		if (alone)
			fprintf(f,
				"shmkit bench --scale (shmkit %s)\nmachine: %s; nproc %ld; %s; "
				"nice %d\n",
				shmkit_version_string(), sb->cfg.machine, sb->cfg.nproc,
				sb->cfg.kernel, sb->cfg.nice);
		s_print_table(f, sb);
	}
}
