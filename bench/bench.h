/* shmkit bench — what bench.c (measuring) and report.c (statistics, output) share. Each
 * is a translation unit of its own, linked into the tool (CMakeLists.txt lists them). The
 * tables below are static const, so each unit holds the same read-only copy; the state
 * that both read is defined once, in bench.c. */
#ifndef SHMKIT_BENCH_H
#define SHMKIT_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <math.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "cmd.h"
#include <shmkit/shmkit.h>

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)
#define RTT_BYTES 64		 /* round-trip message size */
#define CHAN_CAP_RTT (64 * KIB)	 /* ring of a round-trip channel: a pipe's default */
#define CHAN_CAP_MIN (256 * KIB) /* throughput rings: at least this, and 4 messages */
#define ROUNDS_DEFAULT 30
#define ROUNDS_QUICK 3
#define TRIAL_MS_DEFAULT 40
#define TRIAL_MS_QUICK 8
#define BENCH_NICE (-20)   /* priority while measuring, when permitted */
#define TRIAL_TIMEOUT_S 30 /* a trial this long is hung: the watchdog ends it */
#define STOP UINT64_MAX	   /* sequence number that ends a round-trip trial */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum kind { K_RTT, K_TPUT, K_BW };

enum mech {
	M_CACHELINE,  /* limit: two cache lines, each side spins on one and writes the other */
	M_FUTEX,      /* limit: two futex words, each side FUTEX_WAKE / FUTEX_WAIT */
	M_MEMCPY,     /* limit: one core copying a 1 MiB buffer, hot in cache */
	M_CHAN,	      /* shmkit channel, send/recv, default spin */
	M_CHAN_SLEEP, /* shmkit channel, send/recv, spin 0 on both ends */
	M_CHAN_ZC,    /* shmkit channel, reserve/commit and peek/release */
	M_PIPE,	      /* pipe(2), one per direction */
	M_UNIX,	      /* socketpair(AF_UNIX, SOCK_STREAM) */
	M_EVENTFD,    /* data in a shared mapping, one eventfd per direction, blocking read */
	M_MQ,	      /* POSIX message queue, one per direction */
	/* issue 10: the yardstick and the zero-copy comparison */
	M_RING,	     /* textbook SPSC ring (bench_ring.c), one per direction */
	M_CHAN_WORK, /* shmkit channel, send/recv, with zero-copy's payload work: the
		      * sender writes every byte before send, the receiver checksums
		      * every byte after recv */
};

static inline int mech_is_chan(enum mech m)
{
	return m == M_CHAN || m == M_CHAN_SLEEP || m == M_CHAN_ZC || m == M_CHAN_WORK;
}

/* The cases, in the order each round runs them. limit and shmkit name the cases this
 * one is divided by; pairs that a ratio compares sit close together. */
struct bcase {
	const char *id;
	const char *label;
	enum kind kind;
	enum mech mech;
	size_t size;
	const char *limit;
	const char *shmkit;
};

/* Per size: the channel's copy first (bw.memcpy, just before the 1 MiB group, divides
 * it), the textbook ring next to it, then copy with payload work next to zero-copy. */
/* clang-format off */
#define TPUT(sz)                                                                          \
	{"tput.chan_copy." #sz, "shmkit chan, copy", K_TPUT, M_CHAN, sz,                  \
	 "bw.memcpy", "tput.chan_copy." #sz},                                             \
	{"tput.ring." #sz, "textbook ring [yardstick]", K_TPUT, M_RING, sz,               \
	 "bw.memcpy", "tput.chan_copy." #sz},                                             \
	{"tput.chan_copy_work." #sz, "shmkit chan, copy+fill+check", K_TPUT, M_CHAN_WORK, \
	 sz, "bw.memcpy", "tput.chan_copy." #sz},                                         \
	{"tput.chan_zerocopy." #sz, "shmkit chan, zero-copy", K_TPUT, M_CHAN_ZC, sz,      \
	 "bw.memcpy", "tput.chan_copy." #sz},                                             \
	{"tput.pipe." #sz, "pipe", K_TPUT, M_PIPE, sz,                                    \
	 "bw.memcpy", "tput.chan_copy." #sz},                                             \
	{"tput.unix." #sz, "UNIX socket (stream)", K_TPUT, M_UNIX, sz,                    \
	 "bw.memcpy", "tput.chan_copy." #sz}

static const struct bcase cases[] = {
	{"rtt.cacheline", "cache-line ping-pong [limit]", K_RTT, M_CACHELINE, 8,
	 "rtt.cacheline", "rtt.chan_spin"},
	{"rtt.chan_spin", "shmkit chan, spinning", K_RTT, M_CHAN, RTT_BYTES,
	 "rtt.cacheline", "rtt.chan_spin"},
	{"rtt.ring", "textbook ring [yardstick]", K_RTT, M_RING, RTT_BYTES,
	 "rtt.cacheline", "rtt.chan_spin"},
	{"rtt.futex", "futex wake [limit]", K_RTT, M_FUTEX, 4,
	 "rtt.futex", "rtt.chan_spin"},
	{"rtt.chan_sleep", "shmkit chan, sleeping", K_RTT, M_CHAN_SLEEP, RTT_BYTES,
	 "rtt.futex", "rtt.chan_spin"},
	{"rtt.pipe", "pipe", K_RTT, M_PIPE, RTT_BYTES,
	 "rtt.futex", "rtt.chan_spin"},
	{"rtt.unix", "UNIX socket (stream)", K_RTT, M_UNIX, RTT_BYTES,
	 "rtt.futex", "rtt.chan_spin"},
	{"rtt.eventfd", "eventfd + shared memory", K_RTT, M_EVENTFD, RTT_BYTES,
	 "rtt.futex", "rtt.chan_spin"},
	{"rtt.mq", "POSIX message queue", K_RTT, M_MQ, RTT_BYTES,
	 "rtt.futex", "rtt.chan_spin"},
	{"bw.memcpy", "memcpy, one core [limit]", K_BW, M_MEMCPY, MIB,
	 "bw.memcpy", NULL},
	TPUT(1048576),
	TPUT(4096),
	TPUT(64),
};
/* clang-format on */
#define NCASES (sizeof cases / sizeof cases[0])

/* The acceptance thresholds of the channel (issue 10's targets), each a ratio of two
 * cases of one round. Context lines keep an older threshold against a kernel mechanism
 * for reference only: the kernel's speed moves 2-3 x between CPUs, so it passes or
 * fails nothing. */
struct accept {
	const char *id;
	const char *what;
	const char *num, *den;
	int le; /* 1: ratio <= bound, 0: ratio >= bound */
	double bound;
	int context; /* 1: printed for reference, never PASS or MISS */
};

/* clang-format off */
static const struct accept accepts[] = {
	{"rtt_spin_vs_ring", "chan spinning RTT / textbook ring RTT",
	 "rtt.chan_spin", "rtt.ring", 1, 0.9, 0},
	{"rtt_spin_vs_cacheline", "chan spinning RTT / cache-line RTT",
	 "rtt.chan_spin", "rtt.cacheline", 1, 1.3, 0},
	{"tput64_vs_ring", "chan 64 B copy msgs/s / textbook ring",
	 "tput.chan_copy.64", "tput.ring.64", 0, 2.0, 0},
	{"tput4k_vs_ring", "chan 4 KiB copy msgs/s / textbook ring",
	 "tput.chan_copy.4096", "tput.ring.4096", 0, 1.3, 0},
	{"tput1m_vs_ring", "chan 1 MiB copy msgs/s / textbook ring",
	 "tput.chan_copy.1048576", "tput.ring.1048576", 0, 2.0, 0},
	{"tput1m_vs_memcpy", "chan 1 MiB copy GB/s / memcpy GB/s",
	 "tput.chan_copy.1048576", "bw.memcpy", 0, 0.8, 0},
	{"zc64_vs_copy", "64 B zero-copy / copy, same work",
	 "tput.chan_zerocopy.64", "tput.chan_copy_work.64", 0, 1.0, 0},
	{"zc4k_vs_copy", "4 KiB zero-copy / copy, same work",
	 "tput.chan_zerocopy.4096", "tput.chan_copy_work.4096", 0, 1.0, 0},
	{"zc1m_vs_copy", "1 MiB zero-copy / copy, same work",
	 "tput.chan_zerocopy.1048576", "tput.chan_copy_work.1048576", 0, 1.0, 0},
	{"rtt_spin_vs_pipe", "chan spinning RTT / pipe RTT",
	 "rtt.chan_spin", "rtt.pipe", 1, 1.0 / 20, 1},
	{"rtt_sleep_vs_futex", "chan sleeping RTT / futex wake RTT",
	 "rtt.chan_sleep", "rtt.futex", 1, 1.3, 1},
	{"tput64_vs_pipe", "chan 64 B msgs/s / pipe 64 B msgs/s",
	 "tput.chan_copy.64", "tput.pipe.64", 0, 40, 1},
	{"tput1m_vs_unix", "chan 1 MiB copy / UNIX socket 1 MiB",
	 "tput.chan_copy.1048576", "tput.unix.1048576", 0, 2, 1},
};
/* clang-format on */
#define NACCEPTS (sizeof accepts / sizeof accepts[0])

/* Round-trip latencies: a log-linear histogram, 64 buckets per power of two (1.6 %),
 * exact below 64 ns, up to 2^40 ns. */
#define H_SUB_BITS 6
#define H_SUB (1u << H_SUB_BITS)
#define H_N (H_SUB * 36)

struct hist {
	uint64_t n;
	uint64_t c[H_N];
};

enum state { ST_OK, ST_UNAVAILABLE, ST_FAILED, ST_SKIPPED };

struct result {
	double *val;	   /* per round: typical round trip ns (K_RTT) or payload bytes/s, NAN
			    * if missing: the figure that ratios divide */
	double *mean;	   /* per round, K_RTT: mean round trip ns */
	struct hist *hist; /* K_RTT: every timed round trip of every round */
	enum state state;
	char why[200];
	/* Channel cases: the channel's own counters summed over every trial (both
	 * channels of a round trip), to show how often each side slept. */
	uint64_t msgs, c_sleeps, p_sleeps, wakes;
};

struct machine {
	char cpu[160];
	long nproc;
	char kernel[300];
	double load_before, load_after; /* 1-minute load average */
	long nivcsw;			/* involuntary context switches, both processes */
};

struct cfg {
	int rounds;
	int trial_ms;
	int json;
	int quick;
	int no_nice;
	const char *only; /* run only the cases whose id contains this */
	int topic;	  /* 1: only the topic section (--topic), -1: without it */
	int scale;	  /* 1: only the scale section (--scale) */
	int no_install;	  /* never install libzmq3-dev */
	const char *svg;  /* --svg FILE: the run as a chart, or NULL */
	int bridge;	  /* 1: only the NATS bridge section (--bridge) */
};

/* How the run was placed, set by bench.c before the first trial, read by both units:
 * pinned to two CPUs (g_cpu: parent, child; -1 when not pinned), only one CPU allowed,
 * how many CPUs were allowed, the nice value the benchmark ran at. */
extern int g_pinned, g_onecpu, g_cpu[2], g_allowed, g_nice;

#if defined(__x86_64__) || defined(__i386__)
#define CLOCK_NAME "tsc"
#else
#define CLOCK_NAME "clock_gettime"
#endif

static inline unsigned h_index(uint64_t v)
{
	unsigned e, i;
	if (v < H_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= H_SUB_BITS */
	i = (e - H_SUB_BITS + 1) * H_SUB + (unsigned)((v >> (e - H_SUB_BITS)) & (H_SUB - 1));
	return i < H_N ? i : H_N - 1;
}

/* Formatting, shared by both sections (report.c). */
const char *shmkit__bench_state_name(enum state s);
/* "PASS", "MISS", or "SKIP" (a case is missing) for a target's measured ratio. */
const char *shmkit__bench_verdict(const struct accept *a, double v);
const char *shmkit__bench_fmt_ratio(char *b, size_t n, double v);
const char *shmkit__bench_fmt_rate(char *b, size_t n, double v);

/* Clocks, shared by both sections (bench.c defines g_ns_per_tick: ns per tick(),
 * set by calibrate()). */
extern double g_ns_per_tick;

static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The TSC costs 14 ns to read here against 36 ns for clock_gettime (kvm-clock), which
 * matters when a round trip is 100 ns. Both reads of a sample are on the same CPU. */
#if defined(__x86_64__) || defined(__i386__)
static inline uint64_t tick(void)
{
	return __rdtsc();
}
#else
static inline uint64_t tick(void)
{
	return (uint64_t)now_ns();
}
#endif

static inline void calibrate(int ms)
{
	int64_t t0 = now_ns(), t1;
	uint64_t c0 = tick(), c1;
	while ((t1 = now_ns()) - t0 < (int64_t)ms * 1000000)
		;
	c1 = tick();
	if (c1 > c0)
		g_ns_per_tick = (double)(t1 - t0) / (double)(c1 - c0);
}

static inline uint64_t ticks_for(int64_t ns)
{
	return (uint64_t)((double)ns / g_ns_per_tick);
}

/* The payload: the sequence number, then its low byte repeated. Writing it touches
 * every byte; check() reads every byte into a checksum and verifies the ends. */
static inline void fill(void *p, size_t n, uint64_t seq)
{
	memset(p, (int)(seq & 0xff), n);
	memcpy(p, &seq, sizeof seq);
}

static inline int check(const void *p, size_t n, uint64_t seq, uint64_t *sum)
{
	const unsigned char *b = p;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, w[4];
	size_t i = 0;

	for (; i + sizeof w <= n; i += sizeof w) {
		memcpy(w, b + i, sizeof w);
		s0 += w[0];
		s1 += w[1];
		s2 += w[2];
		s3 += w[3];
	}
	for (; i < n; i++)
		s0 += b[i];
	*sum += s0 + s1 + s2 + s3;
	memcpy(w, b, sizeof w[0]);
	return w[0] == seq && b[n - 1] == (unsigned char)seq;
}

/* The copying mechanisms' per-message payload (both sections): the sequence number
 * stamped every STAMP_STRIDE bytes and in the last 8 bytes of a buffer that fill()
 * wrote once. */
#define STAMP_STRIDE 65536 /* 4 KiB cost the 1 MiB copy cases about 5 %: 512 lines touched */

static inline void stamp(unsigned char *p, size_t n, uint64_t seq)
{
	for (size_t i = 0; i + sizeof seq <= n; i += STAMP_STRIDE)
		memcpy(p + i, &seq, sizeof seq);
	if (n >= 2 * sizeof seq)
		memcpy(p + n - sizeof seq, &seq, sizeof seq);
}

static inline int check_stamps(const unsigned char *p, size_t n, uint64_t seq, uint64_t *sum)
{
	uint64_t w, bad = 0;
	for (size_t i = 0; i + sizeof w <= n; i += STAMP_STRIDE) {
		memcpy(&w, p + i, sizeof w);
		bad |= w ^ seq;
		*sum += w;
	}
	if (n >= 2 * sizeof seq) {
		memcpy(&w, p + n - sizeof w, sizeof w);
		bad |= w ^ seq;
		*sum += w;
	}
	return bad == 0;
}

/* The topic section (issue 9): bench/bench_topic.c. */
struct tb_cfg {
	int rounds, trial_ms, quick, no_install, nice;
	const char *only;	  /* as struct cfg */
	int pinned, cpu;	  /* the caller runs pinned to this CPU (the publisher's) */
	cpu_set_t allowed;	  /* the CPUs the run may use (subscribers: all but cpu) */
	const char *machine;	  /* CPU model, kernel: for --topic alone */
	const char *kernel;
	long nproc;
};
struct tbench;
/* Measure (interleaved rounds; call at the benchmark's priority, pinned). *out gets
 * the results (free them) even on failure. Returns 0, -1 a case failed, -ENOMEM. */
int shmkit__bench_topic_run(const struct tb_cfg *cfg, struct tbench **out);
/* The section as a table, or as a JSON object (the value of "topic"); alone: with
 * the machine's description (--topic), and in JSON a whole document. */
void shmkit__bench_topic_print(FILE *f, const struct tbench *tb, int json, int alone);
void shmkit__bench_topic_free(struct tbench *tb);
/* The topic section's results for report.c's JSON, or NULL (set by bench.c). */
extern struct tbench *g_topic;

/* The textbook ring (bench_ring.c): the yardstick every channel ratio is measured
 * against. Fixed slots of one message each, a power-of-two count of them, in one
 * MAP_SHARED mapping that the parent prepares before the fork; each process then
 * attaches its end. The functions are out of line, as the channel's are. */
struct ring;
struct ring_end {
	struct ring *r;	       /* the shared header */
	unsigned char *slots;  /* slot i at slots + i * slot */
	size_t msg, slot;      /* message bytes; slot bytes (msg rounded up to a line) */
	uint64_t nslots, mask; /* a power of two, and nslots - 1 */
	uint64_t pos;	       /* this side's own index: head (producer), tail (consumer) */
	uint64_t other;	       /* cached copy of the other side's index */
};
/* Bytes of a ring of nslots (a power of two) slots for messages of msg bytes. */
size_t shmkit__bench_ring_size(size_t msg, uint64_t nslots);
/* Initialize zeroed memory of shmkit__bench_ring_size() bytes, before the fork. */
void shmkit__bench_ring_init(void *mem, size_t msg, uint64_t nslots);
/* Take one end of the ring at mem, len bytes (either side: which index it moves is
 * decided by use). 0, or -EPROTO when the header's sizes do not fit len. */
int shmkit__bench_ring_attach(struct ring_end *e, void *mem, size_t len);
/* Copy one message of exactly e->msg bytes in, spinning while the ring is full.
 * 0, -EMSGSIZE (n is not the ring's message size), -EPIPE (the consumer closed),
 * -EPROTO (the consumer's index is impossible). */
int shmkit__bench_ring_send(struct ring_end *e, const void *buf, size_t n);
/* Copy the next message out, spinning while the ring is empty. e->msg, 0 (closed by
 * the producer and drained), -EMSGSIZE (cap too small), -EPROTO (bad index). */
ssize_t shmkit__bench_ring_recv(struct ring_end *e, void *buf, size_t cap);
/* This side is done (end of stream, or giving up): the other side's waits end. */
void shmkit__bench_ring_close(struct ring_end *e);

/* The scale section (issue 10): bench/bench_scale.c. */
struct sc_cfg {
	int rounds, trial_ms, quick, nice;
	const char *only; /* as struct cfg */
	int pinned, cpu[2]; /* producer's CPU (the caller's), consumer's */
	const char *machine, *kernel; /* for --scale alone */
	long nproc;
};
struct sbench;
/* Measure (interleaved rounds; call at the benchmark's priority, pinned). *out gets the
 * results (free them) even on failure. Returns 0, -1 a case failed, -ENOMEM. */
int shmkit__bench_scale_run(const struct sc_cfg *cfg, struct sbench **out);
/* As shmkit__bench_topic_print(), for "scale". */
void shmkit__bench_scale_print(FILE *f, const struct sbench *sb, int json, int alone);
void shmkit__bench_scale_free(struct sbench *sb);
/* The scale section's results for report.c's JSON, or NULL (set by bench.c). */
extern struct sbench *g_scale;

/* The NATS bridge section (issue 12): bench/bench_bridge.c, built only with the bridge
 * (SHMKIT_HAVE_BRIDGE). Runs it alone and prints it; returns the tool's exit status. */
#define ROUNDS_BRIDGE 10
#define TRIAL_MS_BRIDGE 250
#define TRIAL_MS_BRIDGE_QUICK 100
int shmkit__bench_bridge_run(const struct cfg *cfg);

/* report.c: the 1-minute load average; the machine's description (CPU, kernel, load
 * before); the results of every round as JSON (--json) or as a table. */
double shmkit__bench_loadavg(void);
void shmkit__bench_describe_machine(struct machine *m);
void shmkit__bench_print_json(FILE *f, const struct machine *m, const struct cfg *cfg,
			      const struct result *res);
void shmkit__bench_print_table(FILE *f, const struct machine *m, const struct cfg *cfg,
			       const struct result *res);

/* report.c, for the chart: the median over rounds of per-round values (NAN: that round
 * has none), and the median of the per-round ratios a / b over the rounds that have
 * both, as the table and JSON compute them. */
double shmkit__bench_median(const double *per_round, int rounds);
double shmkit__bench_ratio_of(const double *a, const double *b, int rounds);

/* bench_topic.c, for the chart: case i of the topic section, its id, label and figure
 * in each round (NAN: none that round). Returns the number of rounds, 0 when the case
 * has no figures (not measured, unavailable or failed), -1 when i is past the last
 * case or tb is NULL. */
int shmkit__bench_topic_case(const struct tbench *tb, size_t i, const char **id,
			     const char **label, const double **val);

/* svg.c: the run as one self-contained SVG 1.1 chart (--svg FILE): round trips and
 * throughput per message size of every case measured, the limits as lines, the
 * targets, and the topic section when tb has figures. Returns 0, or -errno when the
 * chart could not be written to f. */
int shmkit__bench_write_svg(FILE *f, const struct machine *m, const struct cfg *cfg,
			    const struct result *res, const struct tbench *tb);

static inline void h_add(struct hist *h, uint64_t v)
{
	h->c[h_index(v)]++;
	h->n++;
}

#endif
