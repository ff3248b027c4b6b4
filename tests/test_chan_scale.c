/* Channels at scale.
 *
 * 1. One consumer process multiplexes 1 000 channels through one epoll set, each
 *    channel's level-triggered descriptor (shmkit_chan_fd()) registered before any
 *    message is sent, while 4 producer processes (each the producer of a quarter of
 *    the channels) send self-checking messages on them in random order, with send,
 *    reserve/commit and sendv, non-blocking and blocking. The consumer receives only
 *    on descriptors epoll reported, so a lost wake-up shows as a channel with
 *    messages sent and no report for 10 s. Every message arrives once, in order per
 *    channel, intact; a report with nothing to receive (allowed: level-triggered) is
 *    counted and bounded by the messages of that channel; the idle set reports
 *    nothing once everything is taken (where the kernel gives pidfds: a timer would
 *    tick); every descriptor reports end-of-stream when the producers close; and
 *    closing everything leaves no descriptor, mapping or segment behind.
 * 2. One process holds 10 000 open channel ends (5 000 channels, both ends, with the
 *    consumer's descriptor of each in one epoll set) and moves one message through
 *    each; the descriptors this needs are measured on one channel first, RLIMIT_NOFILE
 *    is raised to match (soft to hard; the hard one too where permitted), and the part
 *    is skipped, saying why, where it cannot be. Opening and closing them all, twice,
 *    leaves no descriptor or segment behind and no mapping after the first time (the
 *    SIGBUS guard's table grows once, by a mapping per 1 024 segments).
 *
 * No timing is asserted; times are printed. SHMKIT_TEST_SCALE multiplies the messages
 * per channel and the open/close cycles. Exit 77 when part 2 had to be skipped (part 1
 * passed). */
#include <dirent.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "common.h"

#define NCHAN 1000    /* part 1: channels in the consumer's epoll set */
#define NPROD 4	      /* part 1: producer processes */
#define CAP 4096      /* every ring: the smallest, so that rings fill and wrap */
#define MAXLEN 1024   /* largest message sent (the ring takes CAP / 2) */
#define NCHAN2 5000   /* part 2: channels, both ends open here */
#define WAIT_MS 10000 /* no report at all for this long, with messages waiting: lost */

/* ThreadSanitizer maps memory of its own as the program runs: there the mappings are
 * printed, not compared. */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef TSAN
#define TSAN 0
#endif

/* Part 1's processes share this (t_shared()). */
struct shared {
	_Atomic uint32_t sent[NCHAN]; /* messages committed on channel i (its producer) */
	_Atomic int done;	      /* producers that committed all their messages */
	_Atomic int quit;	      /* the consumer took everything: producers close */
	_Atomic uint64_t refused;     /* non-blocking sends refused (-EAGAIN), all producers */
	_Atomic uint64_t blocking;    /* sends that waited for room, all producers */
};

static struct shared *sh;
static uint64_t per_chan; /* part 1: messages per channel */
static pid_t main_pid;
static int made[2]; /* highest channel count of each part: removed at exit */

static const char *chan_name(int part, int i)
{
	static char b[96];
	snprintf(b, sizeof b, "/shmkit-test-%d-scale%d-%d", (int)main_pid, part, i);
	return b;
}

static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	for (int part = 0; part < 2; part++)
		for (int i = 0; i < made[part]; i++)
			shmkit_seg_unlink(chan_name(part + 1, i), 0);
	shmkit_live_sweep();
}

/* The message number n of channel i: any message says which one it is. */
static inline uint64_t msg_id(int i, uint64_t n)
{
	return (uint64_t)i << 32 | n;
}

/* Descriptors open in this process (t_count_fds() stops at 4 096). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Pidfds open in this process, any descriptor number. */
static int count_pidfds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		char path[300], link[64];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(path, link, sizeof link - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		n += strstr(link, "pidfd") != NULL;
	}
	closedir(d);
	return n;
}

/* Our segments still in /dev/shm. */
static int count_segments(void)
{
	char pre[64];
	int n = 0;
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	CHECK(d != NULL);
	snprintf(pre, sizeof pre, "shmkit-test-%d-scale", (int)main_pid);
	while ((e = readdir(d)) != NULL)
		n += !strncmp(e->d_name, pre, strlen(pre));
	closedir(d);
	return n;
}

static int64_t cpu_ns(void)
{
	struct rusage ru;
	CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SHMKIT_SEC +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Make room for @need descriptors: the soft limit up to the hard one, and the hard one
 * too where we may (root). 0, or -1 (printed why: the caller skips). */
static int fd_budget(long need, const char *what, int quiet)
{
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need) {
		rlim_t hard = rl.rlim_max;
		if (hard != RLIM_INFINITY && hard < (rlim_t)need) {
			struct rlimit up = {(rlim_t)need, (rlim_t)need};
			if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
				printf("%s: RLIMIT_NOFILE hard limit raised from %llu to %ld\n",
				       what, (unsigned long long)hard, need);
				return 0;
			}
			if (!quiet)
				printf("SKIP %s: needs %ld descriptors, and RLIMIT_NOFILE's hard "
				       "limit is %llu (raising it: %s); raise it (ulimit -Hn) to "
				       "run this part\n",
				       what, need, (unsigned long long)hard, strerror(errno));
			return -1;
		}
		rl.rlim_cur = hard;
		CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}
	return 0;
}

/* ---- part 1: 1 000 channels in one epoll set ---- */

static unsigned char pbuf[4][MAXLEN];

static int producer_main(void *arg)
{
	int k = (int)(intptr_t)arg, n = 0;
	int idx[NCHAN / NPROD + 1];
	shmkit_chan *ch[NCHAN / NPROD + 1];
	uint32_t next[NCHAN / NPROD + 1];
	t_guard(150, "scale: a producer of the 1000 channels");
	for (int i = k; i < NCHAN; i += NPROD) {
		idx[n] = i;
		next[n] = 0;
		ch[n++] = t_chan_open_ok(chan_name(1, i), SHMKIT_CHAN_PRODUCER, 0, 0);
	}
	/* live[0..nlive) are the local channels with messages left, in any order. */
	int live[NCHAN / NPROD + 1], nlive = n;
	for (int j = 0; j < n; j++)
		live[j] = j;
	uint64_t rng = UINT64_C(0x5ca1e) + (uint64_t)k * 7919, eagain = 0, blocking = 0;
	while (nlive) {
		uint64_t x = t_rand(&rng);
		int lj = (int)(x % (uint64_t)nlive), j = live[lj];
		uint64_t m = next[j];
		size_t len = t_msg_len(msg_id(idx[j], m), MAXLEN);
		/* Mostly non-blocking; every 16th refusal waits (the consumer takes what
		 * its descriptor reports, so the ring drains). */
		int64_t to = eagain % 16 == 15 ? 30 * SHMKIT_SEC : 0;
		int r, sent = 0;
		switch ((x >> 32) % 4) {
		case 0: {
			void *q;
			r = shmkit_chan_reserve(ch[j], len, to, &q);
			if (r == 0) {
				t_msg_fill(q, len, msg_id(idx[j], m));
				CHECK_OK(shmkit_chan_commit(ch[j], len));
				sent = 1;
			}
			break;
		}
		case 1: {
			struct iovec iov[3];
			int b = 1 + (int)((x >> 40) % 3);
			if ((uint64_t)b > per_chan - m)
				b = (int)(per_chan - m);
			for (int v = 0; v < b; v++) {
				iov[v].iov_len = t_msg_len(msg_id(idx[j], m + (uint64_t)v), MAXLEN);
				iov[v].iov_base = pbuf[v];
				t_msg_fill(pbuf[v], iov[v].iov_len,
					   msg_id(idx[j], m + (uint64_t)v));
			}
			r = shmkit_chan_sendv(ch[j], iov, b, to);
			if (r > 0) {
				sent = r;
				r = 0;
			}
			break;
		}
		default:
			t_msg_fill(pbuf[3], len, msg_id(idx[j], m));
			r = shmkit_chan_send(ch[j], pbuf[3], len, to);
			sent = r == 0;
			break;
		}
		blocking += to != 0;
		if (to != 0 || r == -EAGAIN)
			eagain++; /* the next refusals are non-blocking again */
		if (r == -EAGAIN && to == 0)
			continue;
		if (r < 0) {
			fprintf(stderr, "producer %d, channel %d, message %" PRIu64 ": %s\n", k,
				idx[j], m, shmkit_strerror(r));
			return T_FAIL;
		}
		next[j] += (uint32_t)sent;
		/* Release: for the consumer's report of a lost wake-up only. */
		atomic_store_explicit(&sh->sent[idx[j]], next[j], memory_order_release);
		if (next[j] == per_chan)
			live[lj] = live[--nlive];
	}
	atomic_fetch_add(&sh->refused, eagain - blocking);
	atomic_fetch_add(&sh->blocking, blocking);
	atomic_fetch_add(&sh->done, 1);
	while (!atomic_load(&sh->quit))
		t_nap_ms(2);
	for (int j = 0; j < n; j++)
		CHECK_OK(shmkit_chan_close(ch[j]));
	return T_PASS;
}

/* A channel stalled: messages sent and no report for WAIT_MS. */
static void report_stall(shmkit_chan **c, const uint64_t *next, int ep)
{
	int stalled = 0;
	for (int i = 0; i < NCHAN; i++) {
		uint32_t s = atomic_load_explicit(&sh->sent[i], memory_order_acquire);
		if (s <= next[i])
			continue;
		struct shmkit_chan_stats st;
		CHECK_OK(shmkit_chan_stats(c[i], &st));
		struct pollfd pf = {shmkit_chan_fd(c[i]), POLLIN, 0};
		int pr = poll(&pf, 1, 0);
		if (stalled++ < 10)
			fprintf(stderr,
				"channel %d: %u sent, %" PRIu64 " received, no epoll report "
				"for %d ms (poll() of its descriptor alone: %d, revents %#x; sent "
				"%" PRIu64 " received %" PRIu64 " wakes %" PRIu64 ")\n",
				i, s, next[i], WAIT_MS, pr, (unsigned)pf.revents, st.msgs_sent,
				st.msgs_recv, st.wakes);
	}
	(void)ep;
	if (stalled) {
		fprintf(stderr,
			"LOST WAKE-UP: %d channel(s) with messages waiting and no "
			"readiness reported\n",
			stalled);
		exit(T_FAIL);
	}
}

static void thousand_channels(void)
{
	static shmkit_chan *c[NCHAN];
	static uint64_t next[NCHAN], spurious[NCHAN], reports[NCHAN];
	static unsigned char buf[MAXLEN];
	static struct epoll_event evs[512];
	int pidfds = t_have_pidfd();
	const int64_t tick_ns = 200 * SHMKIT_MSEC; /* the timer that stands in for a pidfd */

	per_chan = (SANITIZED ? 25 : 100) * t_scale();
	if (fd_budget(count_fds() + NCHAN * 5L + 64, "1000 channels", 0) < 0)
		exit(T_SKIP);
	/* What a process makes once (its liveness file, the guard's first table) is not
	 * what this part looks for. */
	{
		const char *w = chan_name(1, NCHAN);
		made[0] = NCHAN + 1;
		shmkit_chan *wc = t_chan_open_ok(w, SHMKIT_CHAN_CONSUMER, CAP,
						 SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL);
		CHECK(shmkit_chan_fd(wc) >= 0);
		shmkit_chan *wp = t_chan_open_ok(w, SHMKIT_CHAN_PRODUCER, 0, 0);
		CHECK_OK(shmkit_chan_send(wp, "warm", 4, 0));
		CHECK_EQ(shmkit_chan_recv(wc, buf, sizeof buf, 0), 4);
		CHECK_OK(shmkit_chan_close(wp));
		CHECK_OK(shmkit_chan_close(wc));
		CHECK_OK(shmkit_seg_unlink(w, 0));
	}
	int fds0 = count_fds(), maps0 = t_count_maps();

	int64_t t0 = t_now_ns();
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	for (int i = 0; i < NCHAN; i++) {
		c[i] = t_chan_open_ok(chan_name(1, i), SHMKIT_CHAN_CONSUMER, CAP,
				      SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL);
		int fd = shmkit_chan_fd(c[i]);
		CHECK_OK(fd);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	}
	int fds_open = count_fds();
	/* Nothing sent yet: nothing readable. */
	CHECK_EQ(epoll_wait(ep, evs, 512, 0), 0);
	int64_t t_open = t_now_ns() - t0;

	fflush(stdout);
	pid_t pids[NPROD];
	t0 = t_now_ns();
	for (int k = 0; k < NPROD; k++)
		pids[k] = t_fork(producer_main, (void *)(intptr_t)k);
	t_guard(120, "scale: 1000 channels, receiving");
	uint64_t total = per_chan * NCHAN, delivered = 0, nreports = 0;
	while (delivered < total) {
		int n = epoll_wait(ep, evs, 512, WAIT_MS);
		CHECK(n >= 0 || errno == EINTR);
		if (n == 0)
			report_stall(c, next, ep); /* returns if only the producers are slow */
		for (int e = 0; e < n; e++) {
			int i = (int)evs[e].data.u32, style = i % 3, got = 0;
			reports[i]++;
			nreports++;
			/* Three ways to answer a report: one message (the descriptor stays
			 * readable while more wait), receive until -EAGAIN, peek/release until
			 * -EAGAIN. */
			for (;;) {
				ssize_t r;
				const void *p = NULL;
				size_t plen = 0;
				if (style == 2) {
					r = shmkit_chan_peek(c[i], &p, &plen, 0);
					if (r > 0)
						memcpy(buf, p, (size_t)r);
				} else {
					r = shmkit_chan_recv(c[i], buf, sizeof buf, 0);
				}
				if (r == -EAGAIN)
					break;
				if (r <= 0 || next[i] >= per_chan) {
					fprintf(
					    stderr,
					    "channel %d, after %" PRIu64 " messages: %zd (%s)\n", i,
					    next[i], r, r < 0 ? shmkit_strerror((int)r) : "");
					exit(T_FAIL);
				}
				if (!t_msg_check(buf, (size_t)r, msg_id(i, next[i]), MAXLEN)) {
					fprintf(stderr,
						"channel %d: message %" PRIu64 " wrong or out of "
						"order (got %zd bytes claiming %#" PRIx64 ")\n",
						i, next[i], r, t_msg_seq(buf, (size_t)r));
					exit(T_FAIL);
				}
				if (style == 2)
					CHECK_OK(shmkit_chan_release(c[i]));
				next[i]++;
				delivered++;
				got++;
				if (style == 0)
					break;
			}
			if (!got)
				spurious[i]++;
		}
	}
	int64_t t_recv = t_now_ns() - t0;
	t_guard(60, "scale: 1000 channels, idle and end-of-stream");
	while (atomic_load(&sh->done) < NPROD)
		t_nap_ms(1);
	/* Everything sent was taken once: nothing more in any channel. */
	for (int i = 0; i < NCHAN; i++) {
		CHECK_EQ(next[i], per_chan);
		CHECK_EQ(shmkit_chan_recv(c[i], buf, sizeof buf, 0), -EAGAIN);
	}
	/* A report with nothing to receive follows a signal for a message already taken
	 * (or a tick of the timer that stands in for a pidfd): never more than one per
	 * message, or per tick. */
	uint64_t nspur = 0, maxspur = 0;
	for (int i = 0; i < NCHAN; i++) {
		uint64_t bound = per_chan + 2 + (pidfds ? 0 : (uint64_t)(t_recv / tick_ns) + 1);
		if (spurious[i] > bound) {
			fprintf(stderr,
				"channel %d: %" PRIu64 " reports with nothing to receive "
				"(bound %" PRIu64 ")\n",
				i, spurious[i], bound);
			exit(T_FAIL);
		}
		nspur += spurious[i];
		if (spurious[i] > maxspur)
			maxspur = spurious[i];
	}
	/* Idle: the producers live, nothing moves. Watched through pidfds (every consumer
	 * has one of its producer, where the kernel gives them), the set reports nothing. */
	int npidfds = count_pidfds();
	int64_t cpu0 = cpu_ns(), w0 = t_now_ns();
	int idle_reports = 0;
	for (int64_t end = w0 + 500 * SHMKIT_MSEC; t_now_ns() < end;) {
		int n = epoll_wait(ep, evs, 512, 100);
		CHECK(n >= 0 || errno == EINTR);
		for (int e = 0; e < n; e++) {
			int i = (int)evs[e].data.u32;
			idle_reports++;
			CHECK_EQ(shmkit_chan_recv(c[i], buf, sizeof buf, 0), -EAGAIN);
		}
	}
	int64_t idle_cpu = cpu_ns() - cpu0, idle_wall = t_now_ns() - w0;
	if (pidfds) {
		CHECK_EQ(npidfds, NCHAN);
		CHECK_EQ(idle_reports, 0);
	}

	/* End-of-stream: every descriptor reports it, and keeps reporting it (a lasting
	 * condition, as a pipe at end-of-file): each is taken out of the set once seen. */
	atomic_store(&sh->quit, 1);
	int eos = 0;
	uint64_t eos_spurious = 0;
	static unsigned char at_eos[NCHAN];
	while (eos < NCHAN) {
		int n = epoll_wait(ep, evs, 512, WAIT_MS);
		CHECK(n >= 0 || errno == EINTR);
		if (n == 0) {
			for (int i = 0; i < NCHAN; i++)
				if (!at_eos[i]) {
					fprintf(stderr,
						"channel %d: no end-of-stream reported in %d ms "
						"(%d of %d seen)\n",
						i, WAIT_MS, eos, NCHAN);
					break;
				}
			exit(T_FAIL);
		}
		for (int e = 0; e < n; e++) {
			int i = (int)evs[e].data.u32;
			ssize_t r = shmkit_chan_recv(c[i], buf, sizeof buf, 0);
			if (r == -EAGAIN) {
				eos_spurious++;
				continue;
			}
			if (r != 0) {
				fprintf(stderr, "channel %d at end-of-stream: %zd (%s)\n", i, r,
					r < 0 ? shmkit_strerror((int)r) : "a message");
				exit(T_FAIL);
			}
			CHECK(!at_eos[i]);
			at_eos[i] = 1;
			eos++;
			/* It stays readable: another receive says so again. */
			CHECK_EQ(shmkit_chan_recv(c[i], buf, sizeof buf, 0), 0);
			CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, shmkit_chan_fd(c[i]), NULL) == 0);
		}
	}
	for (int k = 0; k < NPROD; k++)
		CHECK_EQ(t_wait(pids[k]), 0);
	t_guard(0, "");

	for (int i = 0; i < NCHAN; i++)
		CHECK_OK(shmkit_chan_close(c[i]));
	CHECK(close(ep) == 0);
	for (int i = 0; i < NCHAN; i++)
		CHECK_OK(shmkit_seg_unlink(chan_name(1, i), 0));
	int fds1 = count_fds(), maps1 = t_count_maps();
	CHECK_EQ(fds1, fds0);
	if (!TSAN)
		CHECK_EQ(maps1, maps0);
	CHECK_EQ(count_segments(), 0);
	printf("1000 channels, 1 epoll set, %d producer processes: %" PRIu64 " messages (%" PRIu64
	       " per channel) in %.2f s, %" PRIu64 " reports; %" PRIu64 " with nothing "
	       "to receive (at most %" PRIu64 " on one channel), %" PRIu64 " more at "
	       "end-of-stream; %" PRIu64 " sends refused on a full ring, %" PRIu64 " waited "
	       "for room\n",
	       NPROD, total, per_chan, (double)t_recv / 1e9, nreports, nspur, maxspur, eos_spurious,
	       atomic_load(&sh->refused), atomic_load(&sh->blocking));
	printf("  opened with descriptors in %.2f s (%d descriptors for them); idle with "
	       "%d pidfds: %d reports, %.2f ms CPU in %.0f ms\n",
	       (double)t_open / 1e9, fds_open - fds0, npidfds, idle_reports, (double)idle_cpu / 1e6,
	       (double)idle_wall / 1e6);
	printf("  closed: descriptors %d -> %d, mappings %d -> %d, segments left 0\n", fds0, fds1,
	       maps0, maps1);
}

/* ---- part 2: 10 000 open channel ends in one process ---- */

/* Open NCHAN2 channels, both ends, the first @polled consumers' descriptors in one
 * epoll set; send one message on each in random order and take each where epoll
 * reports it (the others with a non-blocking receive); close and remove everything.
 * Returns the seconds the opening took. */
static double ends_cycle(uint64_t *rng, int polled)
{
	static shmkit_chan *cc[NCHAN2], *pc[NCHAN2];
	static int order[NCHAN2];
	static unsigned char got[NCHAN2];
	static struct epoll_event evs[1024];
	unsigned char buf[64];

	int64_t t0 = t_now_ns();
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(ep >= 0);
	for (int i = 0; i < NCHAN2; i++) {
		const char *n = chan_name(2, i);
		cc[i] = t_chan_open_ok(n, SHMKIT_CHAN_CONSUMER, CAP,
				       SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL);
		if (i < polled) {
			int fd = shmkit_chan_fd(cc[i]);
			CHECK_OK(fd);
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
			CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
		}
		pc[i] = t_chan_open_ok(n, SHMKIT_CHAN_PRODUCER, 0, 0);
		order[i] = i;
		got[i] = 0;
	}
	double open_s = (double)(t_now_ns() - t0) / 1e9;
	/* A producer that attaches signals a consumer polling since before it (so that
	 * the consumer starts watching it): at most one readiness each, with nothing to
	 * receive, and none once drained. */
	for (int pass = 0;; pass++) {
		int n = epoll_wait(ep, evs, 1024, 0);
		CHECK(n >= 0 && pass <= polled / 1024 + 1);
		if (n <= 0)
			break;
		for (int e = 0; e < n; e++)
			CHECK_EQ(shmkit_chan_recv(cc[evs[e].data.u32], buf, sizeof buf, 0), -EAGAIN);
	}
	CHECK_EQ(epoll_wait(ep, evs, 1024, 0), 0);
	for (int i = NCHAN2 - 1; i > 0; i--) {
		int j = (int)(t_rand(rng) % (uint64_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < NCHAN2; k++) {
		uint64_t id = msg_id(order[k], 0);
		size_t len = t_msg_len(id, sizeof buf);
		t_msg_fill(buf, len, id);
		CHECK_OK(shmkit_chan_send(pc[order[k]], buf, len, 0));
	}
	for (int i = polled; i < NCHAN2; i++) {
		ssize_t r = shmkit_chan_recv(cc[i], buf, sizeof buf, 0);
		CHECK(r > 0);
		CHECK(t_msg_check(buf, (size_t)r, msg_id(i, 0), sizeof buf));
	}
	int left = polled;
	while (left) {
		int n = epoll_wait(ep, evs, 1024, WAIT_MS);
		CHECK(n >= 0 || errno == EINTR);
		if (n == 0) {
			for (int i = 0; i < polled; i++)
				if (!got[i]) {
					fprintf(stderr,
						"LOST WAKE-UP: channel %d of %d: its message was "
						"never reported (%d left)\n",
						i, polled, left);
					break;
				}
			exit(T_FAIL);
		}
		for (int e = 0; e < n; e++) {
			int i = (int)evs[e].data.u32;
			ssize_t r = shmkit_chan_recv(cc[i], buf, sizeof buf, 0);
			if (r == -EAGAIN) {
				CHECK(got[i]); /* a report left from the message taken */
				continue;
			}
			CHECK(r > 0 && !got[i]);
			CHECK(t_msg_check(buf, (size_t)r, msg_id(i, 0), sizeof buf));
			got[i] = 1;
			left--;
		}
	}
	for (int i = 0; i < NCHAN2; i++)
		CHECK_EQ(shmkit_chan_recv(cc[i], buf, sizeof buf, 0), -EAGAIN);
	/* Closed in the shuffled order, each channel's ends in either order. */
	for (int k = 0; k < NCHAN2; k++) {
		int i = order[k];
		if (k & 1) {
			CHECK_OK(shmkit_chan_close(pc[i]));
			CHECK_OK(shmkit_chan_close(cc[i]));
		} else {
			CHECK_OK(shmkit_chan_close(cc[i]));
			CHECK_OK(shmkit_chan_close(pc[i]));
		}
		CHECK_OK(shmkit_seg_unlink(chan_name(2, i), 0));
	}
	CHECK(close(ep) == 0);
	return open_s;
}

/* Descriptors one channel costs: both ends open (*bare); and the consumer's descriptor
 * with a message signalled through it (*polled, on top). */
static void channel_cost(int *bare, int *polled)
{
	unsigned char buf[16];
	const char *n = chan_name(2, 0);
	int base = count_fds();
	shmkit_chan *c =
	    t_chan_open_ok(n, SHMKIT_CHAN_CONSUMER, CAP, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL);
	shmkit_chan *p = t_chan_open_ok(n, SHMKIT_CHAN_PRODUCER, 0, 0);
	*bare = count_fds() - base;
	CHECK(shmkit_chan_fd(c) >= 0);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
	CHECK_OK(shmkit_chan_send(p, "one", 3, 0));
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 3);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
	*polled = count_fds() - base - *bare;
	CHECK_OK(shmkit_chan_close(p));
	CHECK_OK(shmkit_chan_close(c));
	CHECK_OK(shmkit_seg_unlink(n, 0));
	CHECK_EQ(count_fds(), base);
}

static int part2_skipped;

static void ten_thousand_ends(void)
{
	int bare, extra;
	made[1] = NCHAN2;
	channel_cost(&bare, &extra);
	int base = count_fds();
	long need_bare = base + (long)NCHAN2 * bare + 64, need = need_bare + (long)NCHAN2 * extra;
	printf("one channel costs %d descriptors with both ends open, %d more with the "
	       "consumer's descriptor signalled; %d channels need %ld, or %ld with every "
	       "consumer's descriptor\n",
	       bare, extra, NCHAN2, need_bare, need);
	/* The ends are the point: skipped only when they do not fit. The consumers'
	 * descriptors are taken on as many as the limit leaves room for. */
	if (fd_budget(need, "10000 channel ends", 1) < 0 &&
	    fd_budget(need_bare + 1000L * extra, "10000 channel ends (1000 with descriptors)", 0) <
		0) {
		part2_skipped = 1;
		return;
	}
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	long room = rl.rlim_cur == RLIM_INFINITY ? need : (long)rl.rlim_cur;
	int polled = room >= need ? NCHAN2 : (int)((room - need_bare) / extra);
	if (polled < NCHAN2)
		printf("RLIMIT_NOFILE %ld: descriptors on %d of the %d consumer ends (all of them "
		       "need %ld)\n",
		       room, polled, NCHAN2, need);

	uint64_t rng = 0x10000e4d5, cycles = 2 * t_scale();
	int fds0 = count_fds(), maps0 = t_count_maps(), maps1 = 0;
	for (uint64_t k = 0; k < cycles; k++) {
		t_guard(120, "scale: 10000 channel ends");
		int64_t t0 = t_now_ns();
		double open_s = ends_cycle(&rng, polled);
		int fds = count_fds(), maps = t_count_maps();
		CHECK_EQ(fds, fds0);
		CHECK_EQ(count_segments(), 0);
		if (k == 0) {
			/* The SIGBUS guard's table: a mapping per 1 024 segments, made once. */
			maps1 = maps;
			CHECK(TSAN ||
			      (maps1 >= maps0 && maps1 <= maps0 + (2 * NCHAN2 + 1023) / 1024));
		} else if (!TSAN) {
			CHECK_EQ(maps, maps1);
		}
		printf("cycle %" PRIu64 ": %d channel ends opened (%d consumer descriptors in one "
		       "epoll set) in %.2f s, a message through each, all closed: %.2f s in all; "
		       "descriptors %d -> %d, mappings %d -> %d\n",
		       k + 1, 2 * NCHAN2, polled, open_s, (double)(t_now_ns() - t0) / 1e9, fds0,
		       fds, maps0, maps);
	}
	t_guard(0, "");
}

int main(void)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	main_pid = getpid();
	atexit(cleanup);
	sh = t_shared(sizeof *sh);
	T_RUN(thousand_channels());
	T_RUN(ten_thousand_ends());
	printf("test_chan_scale: %s\n", part2_skipped ? "part 2 skipped" : "ok");
	return part2_skipped ? T_SKIP : T_PASS;
}
