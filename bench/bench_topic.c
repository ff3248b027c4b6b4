/* shmkit bench — the topic section (issue 9): the topic against the channel, ZeroMQ
 * PUB/SUB and UNIX datagram sockets, and what waking sleeping subscribers costs the
 * publisher.
 *
 * The method is the channel section's (bench.c): every case runs once per round as a
 * short trial, in a fixed order that puts the cases a ratio compares next to each
 * other; a ratio is taken between two trials of the same round and the reported ratio
 * is the median of the per-round ratios. The channel cases this section divides by are
 * measured here, by the same loops as the topic's, so that a ratio compares two
 * transports and never two ways of measuring.
 *
 * Cases:
 * - Round trip of 64 B through two topics (one publisher and one subscriber each way;
 *   the default, lossy mode: one message in flight is never overwritten) against two
 *   channels; both spin by default. Typical round trip = median over ~10 µs batches of
 *   the batch's mean, as in bench.c.
 * - One-way throughput 1 -> 1 at 64 B, 4 KiB and 1 MiB, copying calls (publish /
 *   receive against send / recv), the topic in reliable mode: like the channel it then
 *   loses nothing, so both move every message. Same payload stamps as bench.c.
 * - Fan-out of 64 B messages from one publisher to 1, 2, 4 and 8 subscriber processes:
 *   aggregate deliveries per second, counted by the subscribers as they receive (each
 *   checks every message's sequence number and bytes). The topic in reliable mode
 *   (the figure the targets use: nothing is lost, so deliveries are the published
 *   messages times the subscribers), and in lossy mode for information (its losses
 *   are reported), both with a 16 MiB ring; ZeroMQ PUB/SUB over ipc:// with its
 *   defaults (PUB drops at the high-water mark: losses reported); one UNIX datagram
 *   socket per subscriber, the publisher sendto()s each (blocking: nothing lost).
 * - The publisher's cost of waking sleeping subscribers: 0, 1, 16 and 256 subscribers
 *   wait either through shmkit_topic_fd() in epoll, or in a blocking receive (futex,
 *   spin 0). The publisher publishes one message only once every subscriber has
 *   received the last one and gone back to waiting, and times the publish call alone.
 *
 * The publisher is the parent, on the first CPU; subscribers (children forked per
 * trial) run on the other CPUs. On a machine with two CPUs every subscriber shares
 * the second: fan-outs to 2, 4 and 8 subscribers are oversubscribed, and the output
 * says so.
 */
#include "bench.h"
#include "json.h"

#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/un.h>

#define TB_RTT_BYTES 64
#define TB_FAN_BYTES 64
#define TB_MAX_SUBS 256		      /* the largest subscriber count of any case */
#define TB_FAN_CAP (16 * MIB) /* fan-out rings: a time slice of the publisher's messages */
#define TB_POLL_NS (20 * SHMKIT_MSEC) /* subscribers' receive timeout: checks stop */
#define TB_SETTLE_NS 100000	      /* wake cost: subscribers asleep for this long */
#define TB_WAKE_POLL_NS (100 * SHMKIT_MSEC) /* wake cost: the subscribers' timeout (few
					     * spurious wake-ups; end-of-stream ends them) */
#define TB_WAKE_SAMPLES_MAX 4096
#define TB_STOP UINT64_MAX

enum tb_kind { TB_RTT, TB_TPUT, TB_FAN, TB_WAKE };

enum tb_mech {
	TB_CHAN,	/* shmkit channel(s), send/recv */
	TB_TOPIC,	/* shmkit topic, publish/receive; reliable except in round trips */
	TB_TOPIC_LOSSY, /* shmkit topic, lossy mode, 16 MiB ring (fan-out) */
	TB_UNIX,	/* one AF_UNIX SOCK_DGRAM socket per subscriber, sendto() each */
	TB_ZMQ,		/* ZeroMQ PUB/SUB over ipc:// */
	TB_EPOLL,	/* wake cost: subscribers in epoll_wait on shmkit_topic_fd() */
	TB_FUTEX,	/* wake cost: subscribers in a blocking receive, spin 0 */
};

struct tb_case {
	const char *id;
	const char *label;
	enum tb_kind kind;
	enum tb_mech mech;
	size_t size;
	int subs;
};

/* clang-format off */
#define TB_TPUT(sz)                                                                       \
	{"topic.tput.chan." #sz, "shmkit chan, copy", TB_TPUT, TB_CHAN, sz, 1},           \
	{"topic.tput.topic." #sz, "shmkit topic, copy (reliable)", TB_TPUT, TB_TOPIC, sz, 1}
#define TB_FAN(n)                                                                         \
	{"topic.fanout.topic." #n, "shmkit topic, reliable", TB_FAN, TB_TOPIC,            \
	 TB_FAN_BYTES, n},                                                                \
	{"topic.fanout.unix." #n, "UNIX datagram, sendto each", TB_FAN, TB_UNIX,          \
	 TB_FAN_BYTES, n},                                                                \
	{"topic.fanout.zmq." #n, "ZeroMQ PUB/SUB, ipc://", TB_FAN, TB_ZMQ,                \
	 TB_FAN_BYTES, n},                                                                \
	{"topic.fanout.topic_lossy." #n, "shmkit topic, lossy", TB_FAN,            \
	 TB_TOPIC_LOSSY, TB_FAN_BYTES, n}
#define TB_WAKE(n)                                                                        \
	{"topic.wake.futex." #n, "blocking receive (futex)", TB_WAKE, TB_FUTEX, 64, n},   \
	{"topic.wake.epoll." #n, "epoll on shmkit_topic_fd", TB_WAKE, TB_EPOLL, 64, n}

static const struct tb_case tb_cases[] = {
	{"topic.rtt.chan", "shmkit chan, two channels", TB_RTT, TB_CHAN, TB_RTT_BYTES, 1},
	{"topic.rtt.topic", "shmkit topic, two topics", TB_RTT, TB_TOPIC, TB_RTT_BYTES, 1},
	TB_TPUT(64),
	TB_TPUT(4096),
	TB_TPUT(1048576),
	TB_FAN(1),
	TB_FAN(2),
	TB_FAN(4),
	TB_FAN(8),
	{"topic.wake.none.0", "no subscriber", TB_WAKE, TB_FUTEX, 64, 0},
	TB_WAKE(1),
	TB_WAKE(16),
	TB_WAKE(256),
};
/* clang-format on */
#define TB_NCASES (sizeof tb_cases / sizeof tb_cases[0])

/* The targets of issue 9, each a ratio of two cases of one round (bench.h's struct
 * accept; none is context). */
/* clang-format off */
static const struct accept tb_accepts[] = {
	{"topic_rtt_vs_chan", "topic 64 B RTT / chan 64 B RTT",
	 "topic.rtt.topic", "topic.rtt.chan", 1, 1.3, 0},
	{"topic_tput64_vs_chan", "topic 64 B msgs/s / chan 64 B msgs/s",
	 "topic.tput.topic.64", "topic.tput.chan.64", 0, 0.7, 0},
	{"fanout1_vs_zmq", "fan-out 1: topic / ZeroMQ deliveries/s",
	 "topic.fanout.topic.1", "topic.fanout.zmq.1", 0, 10, 0},
	{"fanout2_vs_zmq", "fan-out 2: topic / ZeroMQ deliveries/s",
	 "topic.fanout.topic.2", "topic.fanout.zmq.2", 0, 10, 0},
	{"fanout4_vs_zmq", "fan-out 4: topic / ZeroMQ deliveries/s",
	 "topic.fanout.topic.4", "topic.fanout.zmq.4", 0, 10, 0},
	{"fanout8_vs_zmq", "fan-out 8: topic / ZeroMQ deliveries/s",
	 "topic.fanout.topic.8", "topic.fanout.zmq.8", 0, 10, 0},
	{"fanout1_vs_unix", "fan-out 1: topic / UNIX dgram deliveries/s",
	 "topic.fanout.topic.1", "topic.fanout.unix.1", 0, 3, 0},
	{"fanout2_vs_unix", "fan-out 2: topic / UNIX dgram deliveries/s",
	 "topic.fanout.topic.2", "topic.fanout.unix.2", 0, 3, 0},
	{"fanout4_vs_unix", "fan-out 4: topic / UNIX dgram deliveries/s",
	 "topic.fanout.topic.4", "topic.fanout.unix.4", 0, 3, 0},
	{"fanout8_vs_unix", "fan-out 8: topic / UNIX dgram deliveries/s",
	 "topic.fanout.topic.8", "topic.fanout.unix.8", 0, 3, 0},
};
/* clang-format on */
#define TB_NACCEPTS (sizeof tb_accepts / sizeof tb_accepts[0])

/* One case's results over the rounds. */
struct tb_res {
	double *val; /* per round: RTT typical ns, bytes/s, deliveries/s or publish ns; NAN:
		      * none that round */
	double *aux; /* per round: RTT mean ns; fan-out lost / (received + lost); wake: all
		      * subscribers had the message after this many ns (median) */
	enum state state;
	char why[200];
	uint64_t delivered, lost; /* fan-out: over every measured window */
};

struct tbench {
	struct tb_cfg cfg;
	struct tb_res res[TB_NCASES];
	int ran;	   /* any case was selected */
	int sub_cpus[8];   /* the CPUs subscribers run on */
	int nsub_cpus;	   /* 0: unpinned */
	char zmq_note[200]; /* why ZeroMQ was skipped, or its version */
};

/* ---- shared memory between the publisher (parent) and the subscribers ---- */

/* One subscriber's words: written by that subscriber, read by the parent. count is
 * stored (relaxed) after every message; the parent reads it twice per trial, as a
 * snapshot, and a few messages of skew between subscribers are noise next to
 * millions. waiting and acked (release) order the wake-cost trials: the parent's
 * acquire load of waiting == k means the subscriber has everything of message k and
 * is about to wait. err and msg are written before the child exits and read after
 * waitpid(). */
struct tb_slot {
	alignas(64) _Atomic uint64_t count; /* messages received */
	_Atomic uint64_t lost;		    /* messages lost (gaps, overflows) */
	_Atomic uint64_t waiting;	    /* wake cost: messages had when it last waited */
	_Atomic uint64_t acked;		    /* wake cost: messages had */
	int err;
	char msg[100];
};
_Static_assert(sizeof(struct tb_slot) % 64 == 0, "a slot is whole cache lines");

struct tb_ctl {
	alignas(64) _Atomic int ready;	 /* subscribers (children) that opened their end */
	_Atomic int failed;		 /* a child failed before it was ready */
	alignas(64) _Atomic uint32_t go; /* parent: my ends are open, start receiving (a
					  * futex word: 256 subscribers yielding in turn
					  * would slow the ones still opening) */
	alignas(64) _Atomic int stop;	 /* parent: the trial is over, leave */
	alignas(64) _Atomic uint64_t sum;	 /* children's checksums: keeps reads observable */
	struct tb_slot slot[TB_MAX_SUBS];
};

static struct tb_ctl *t_ctl;
static unsigned t_serial;
static uint64_t *t_samples; /* wake cost: the parent's per-message figures */
static uint64_t *t_samples2;
static uint64_t *t_batches; /* round trips: per-batch ticks */
#define TB_BATCH_CAP ((size_t)1 << 17)

/* What the watchdog (SIGALRM) and interrupts clean up. */
static pid_t t_pids[TB_MAX_SUBS + 1];
static int t_npids;
static char t_names[2][64];	   /* channel or topic names of the trial in flight */
static char t_ipc_path[108];	   /* ZeroMQ's socket file */
static struct sigaction t_old_sa[4];

static const int t_signals[] = {SIGALRM, SIGINT, SIGTERM, SIGHUP};
#define TB_NSIGNALS (sizeof t_signals / sizeof t_signals[0])

static inline void t_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_pause();
#endif
}

static void t_sleep_ns(int64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int t_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int t_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The payload, as bench.c writes and checks it: the sequence number, then its low byte
 * repeated (fill, check: every byte); or a buffer written once with the sequence
 * number stamped every 64 KiB and in its last 8 bytes (stamp, check_stamps), for the
 * copying throughput cases, where rewriting the whole buffer would be the
 * application's work and hide the transport. */
/* Fault a mapping in before the clock starts, without changing a byte. */
static void t_prefault(void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
	size_t len = n + ((uintptr_t)p - a);
	if (madvise((void *)a, len, MADV_POPULATE_WRITE) == 0)
		return;
	for (size_t off = 0; off < len; off += 4096)
		(void)*(const volatile unsigned char *)(a + off);
}

static int t_pin(int cpu)
{
	cpu_set_t set;
	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) ? -errno : 0;
}

/* ---- ZeroMQ, loaded at run time: the tool has no build dependency on it ---- */

/* Values from zmq.h (stable since libzmq 3; libzmq.so.5 is 4.x). */
#define TZ_PUB 1
#define TZ_SUB 2
#define TZ_SUBSCRIBE 6
#define TZ_LINGER 17
#define TZ_RECONNECT_IVL 18
#define TZ_RCVTIMEO 27
#define TZ_DONTWAIT 1

static struct {
	void *lib;
	void *(*ctx_new)(void);
	int (*ctx_term)(void *);
	void *(*socket)(void *, int);
	int (*close)(void *);
	int (*setsockopt)(void *, int, const void *, size_t);
	int (*bind)(void *, const char *);
	int (*connect)(void *, const char *);
	int (*send)(void *, const void *, size_t, int);
	int (*recv)(void *, void *, size_t, int);
	int (*errno_)(void);
	void (*version)(int *, int *, int *);
} tz;

static int tz_bind_symbols(void)
{
	/* dlsym returns void *; a function pointer is assigned through memcpy, which ISO C
	 * allows where the cast would warn under -Wpedantic. */
	static const struct {
		const char *name;
		size_t off;
	} syms[] = {
	    {"zmq_ctx_new", offsetof(__typeof__(tz), ctx_new)},
	    {"zmq_ctx_term", offsetof(__typeof__(tz), ctx_term)},
	    {"zmq_socket", offsetof(__typeof__(tz), socket)},
	    {"zmq_close", offsetof(__typeof__(tz), close)},
	    {"zmq_setsockopt", offsetof(__typeof__(tz), setsockopt)},
	    {"zmq_bind", offsetof(__typeof__(tz), bind)},
	    {"zmq_connect", offsetof(__typeof__(tz), connect)},
	    {"zmq_send", offsetof(__typeof__(tz), send)},
	    {"zmq_recv", offsetof(__typeof__(tz), recv)},
	    {"zmq_errno", offsetof(__typeof__(tz), errno_)},
	    {"zmq_version", offsetof(__typeof__(tz), version)},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		void *p = dlsym(tz.lib, syms[i].name);
		if (!p)
			return -1;
		memcpy((char *)&tz + syms[i].off, &p, sizeof p);
	}
	return 0;
}

static cpu_set_t t_allowed; /* the CPUs the run may use; t_nallowed of them */
static int t_nallowed;

/* ZeroMQ moves messages on I/O threads that the first zmq_socket() of a context
 * starts, and a thread starts with its creator's affinity. The publisher's (@wide)
 * may run on every allowed CPU, as a ZeroMQ user's would (pinned beside the publisher
 * it would compete with it for one CPU), then the calling thread is pinned back. A
 * subscriber's stay on its CPU, as the topic's subscribers do: given the publisher's
 * CPU too, ZeroMQ's subscribers had more CPU than the topic's. */
static void *tz_socket(void **ctx, int type, int wide)
{
	cpu_set_t mine;
	int have = sched_getaffinity(0, sizeof mine, &mine) == 0;
	void *s = NULL;

	if (wide && t_nallowed)
		sched_setaffinity(0, sizeof t_allowed, &t_allowed);
	if ((*ctx = tz.ctx_new()))
		s = tz.socket(*ctx, type);
	if (have)
		sched_setaffinity(0, sizeof mine, &mine);
	return s;
}

/* Run argv with output to /dev/null; its exit status, or -1. */
static int t_run_quiet(char *const argv[])
{
	pid_t pid = fork();
	int st;
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		setenv("DEBIAN_FRONTEND", "noninteractive", 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Load libzmq.so.5; when it is missing and we are root, install Debian's libzmq3-dev
 * once (with `apt-get update` first only if the install fails, e.g. for lack of
 * package lists). Returns 0, or -1 with why set. */
static int tz_load(int may_install, char *why, size_t n)
{
	static char install[] = "install", yes[] = "-y", pkg[] = "libzmq3-dev", apt[] = "apt-get",
		    update[] = "update", quiet[] = "-q";
	char *const inst_argv[] = {apt, quiet, yes, install, pkg, NULL};
	char *const upd_argv[] = {apt, quiet, update, NULL};
	int maj = 0, min = 0, pat = 0, st;

	if (!(tz.lib = dlopen("libzmq.so.5", RTLD_NOW | RTLD_LOCAL))) {
		if (!may_install) {
			snprintf(why, n, "libzmq.so.5 not found, and --no-install");
			return -1;
		}
		if (geteuid() != 0) {
			snprintf(why, n,
				 "libzmq.so.5 not found; not root, so not installing libzmq3-dev");
			return -1;
		}
		fprintf(stderr, "shmkit bench: libzmq.so.5 not found; apt-get install -y "
				"libzmq3-dev ...\n");
		st = t_run_quiet(inst_argv);
		if (st != 0) {
			fprintf(stderr, "shmkit bench: the install failed (status %d); apt-get "
					"update, then again ...\n",
				st);
			t_run_quiet(upd_argv);
			st = t_run_quiet(inst_argv);
		}
		if (st != 0) {
			snprintf(why, n, "libzmq.so.5 not found and apt-get install libzmq3-dev "
					 "failed (status %d)",
				 st);
			return -1;
		}
		if (!(tz.lib = dlopen("libzmq.so.5", RTLD_NOW | RTLD_LOCAL))) {
			snprintf(why, n, "libzmq3-dev installed but dlopen failed: %s", dlerror());
			return -1;
		}
	}
	if (tz_bind_symbols()) {
		snprintf(why, n, "libzmq.so.5 lacks a symbol: %s", dlerror());
		dlclose(tz.lib);
		tz.lib = NULL;
		return -1;
	}
	tz.version(&maj, &min, &pat);
	snprintf(why, n, "libzmq %d.%d.%d (dlopen libzmq.so.5), default options", maj, min, pat);
	return 0;
}

/* ---- one trial's transports ---- */

struct tb_link {
	enum tb_mech mech;
	size_t size;
	int subs;
	char name[2][64];	/* [0] parent -> children, [1] child -> parent (RTT) */
	shmkit_chan *ctx, *crx; /* channel ends of this side */
	shmkit_topic *pub, *sub;	/* topic ends of this side */
	int sfd;		/* UNIX: the parent's sending socket, or a child's socket */
	int rfds[TB_MAX_SUBS];	/* UNIX: the subscribers' sockets (parent, before fork) */
	struct sockaddr_un addr[TB_MAX_SUBS];
	socklen_t addrlen[TB_MAX_SUBS];
	void *zctx, *zsock; /* ZeroMQ */
	char endpoint[128];
	uint64_t sum;
};

static void t_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int t_is_topic(enum tb_mech m)
{
	return m == TB_TOPIC || m == TB_TOPIC_LOSSY || m == TB_EPOLL || m == TB_FUTEX;
}

static size_t t_capacity(const struct tb_case *c)
{
	size_t cap = 256 * KIB;
	if (c->kind == TB_RTT)
		return 64 * KIB; /* as bench.c's round trips: a pipe's default */
	/* Fan-out: subscribers share a CPU, so one is often off it for a whole time
	 * slice (a few ms); a ring that holds the publisher's messages of that long
	 * spares a reliable publisher from waiting and a lossy subscriber from losing. */
	if (c->kind == TB_FAN)
		return TB_FAN_CAP;
	if (c->kind == TB_WAKE)
		return 64 * KIB; /* one message at a time; 256 subscribers map it */
	while (cap < 4 * c->size)
		cap *= 2;
	return cap;
}

/* Create a topic with no role, so that no process inherits an end. A ring whose
 * largest message is too small for the case doubles until it fits. */
static int t_topic_create(const char *name, const struct tb_case *c)
{
	struct shmkit_topic_opts o;
	struct shmkit_topic_stats st;
	shmkit_topic *t;
	int r;

	memset(&o, 0, sizeof o);
	o.capacity = t_capacity(c);
	o.mode = 0600;
	o.flags = SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL;
	/* Reliable wherever every message must arrive: throughput against the flow-
	 * controlled channel and the fan-out the targets use. Round trips and wake-ups
	 * have one message in flight: the default (lossy) mode. */
	if (c->mech == TB_TOPIC && c->kind != TB_RTT)
		o.flags |= SHMKIT_TOPIC_RELIABLE;
	for (;;) {
		r = shmkit_topic_open_opts(name, SHMKIT_TOPIC_OBSERVER, &o, &t);
		if (r == -EINVAL) /* should creating take a role, a publisher's it is */
			r = shmkit_topic_open_opts(name, SHMKIT_TOPIC_PUBLISHER, &o, &t);
		if (r)
			return r;
		r = shmkit_topic_stats(t, &st);
		shmkit_topic_close(t);
		if (r)
			return r;
		if (st.max_msg >= c->size)
			return 0;
		shmkit_seg_unlink(name, 0);
		if (o.capacity >= 256 * MIB)
			return -EMSGSIZE;
		o.capacity *= 2;
	}
}

static int t_topic_attach(const char *name, unsigned role, shmkit_topic **out)
{
	shmkit_seg *seg;
	int r = shmkit_topic_open(name, role, 0, 0, 0, out);
	if (r)
		return r;
	if ((seg = shmkit_topic_seg(*out)))
		t_prefault(shmkit_seg_data(seg), shmkit_seg_size(seg));
	return 0;
}

static int t_chan_attach(const char *name, unsigned role, shmkit_chan **out)
{
	shmkit_seg *seg;
	int r = shmkit_chan_open(name, role, 0, 0, 0, out);
	if (r)
		return r;
	seg = shmkit_chan_seg(*out);
	t_prefault(shmkit_seg_data(seg), shmkit_seg_size(seg));
	return 0;
}

/* Parent, before the fork: create what the trial needs. 0 or -errno with why. */
static int t_link_setup(struct tb_link *l, const struct tb_case *c, char *why, size_t n)
{
	int r = 0, two = c->kind == TB_RTT;

	l->mech = c->mech;
	l->size = c->size;
	l->subs = c->subs;
	l->sfd = -1;
	for (int i = 0; i < TB_MAX_SUBS; i++)
		l->rfds[i] = -1;
	for (int i = 0; i < 1 + two; i++)
		snprintf(l->name[i], sizeof l->name[i], "/shmkit-bench-t%d-%u", (int)getpid(),
			 ++t_serial);

	switch (c->mech) {
	case TB_CHAN:
		for (int i = 0; i < 1 + two && !r; i++) {
			shmkit_chan *ch;
			size_t cap = t_capacity(c);
			r = shmkit_chan_open(l->name[i], SHMKIT_CHAN_OBSERVER, cap, 0600,
					     SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &ch);
			if (r)
				l->name[i][0] = '\0';
			else
				shmkit_chan_close(ch);
		}
		if (r)
			snprintf(why, n, "shmkit_chan_open: %s", shmkit_strerror(r));
		break;
	case TB_TOPIC:
	case TB_TOPIC_LOSSY:
	case TB_EPOLL:
	case TB_FUTEX:
		for (int i = 0; i < 1 + two && !r; i++)
			if ((r = t_topic_create(l->name[i], c)))
				l->name[i][0] = '\0';
		if (r)
			snprintf(why, n, "creating the topic: %s", shmkit_strerror(r));
		break;
	case TB_UNIX:
		l->name[0][0] = '\0';
		if ((l->sfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
			r = -errno;
		for (int i = 0; i < c->subs && !r; i++) {
			struct sockaddr_un *a = &l->addr[i];
			int len;
			memset(a, 0, sizeof *a);
			a->sun_family = AF_UNIX;
			/* abstract: nothing to remove afterwards */
			len = snprintf(a->sun_path + 1, sizeof a->sun_path - 1,
				       "shmkit-bench-%d-%u-%d", (int)getpid(), t_serial, i);
			l->addrlen[i] = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
						    (size_t)len);
			if ((l->rfds[i] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
			    bind(l->rfds[i], (struct sockaddr *)a, l->addrlen[i]))
				r = -errno;
		}
		t_serial++;
		if (r)
			snprintf(why, n, "UNIX datagram socket: %s", strerror(-r));
		break;
	case TB_ZMQ:
		l->name[0][0] = '\0';
		snprintf(t_ipc_path, sizeof t_ipc_path, "/tmp/shmkit-bench-zmq-%d-%u",
			 (int)getpid(), ++t_serial);
		snprintf(l->endpoint, sizeof l->endpoint, "ipc://%s", t_ipc_path);
		break;
	}
	snprintf(t_names[0], sizeof t_names[0], "%s", l->name[0]);
	snprintf(t_names[1], sizeof t_names[1], "%s", two ? l->name[1] : "");
	return r;
}

/* Parent, after every child was reaped. */
static void t_link_teardown(struct tb_link *l)
{
	shmkit_chan_close(l->ctx);
	shmkit_chan_close(l->crx);
	shmkit_topic_close(l->pub);
	shmkit_topic_close(l->sub);
	l->ctx = l->crx = NULL;
	l->pub = l->sub = NULL;
	for (int i = 0; i < 2; i++)
		if (l->name[i][0])
			shmkit_seg_unlink(l->name[i], 0);
	t_close_fd(&l->sfd);
	for (int i = 0; i < TB_MAX_SUBS; i++)
		t_close_fd(&l->rfds[i]);
	if (l->zsock)
		tz.close(l->zsock);
	if (l->zctx)
		tz.ctx_term(l->zctx);
	l->zsock = l->zctx = NULL;
	if (t_ipc_path[0])
		unlink(t_ipc_path);
	t_ipc_path[0] = '\0';
	t_names[0][0] = t_names[1][0] = '\0';
}

/* ---- the watchdog ---- */

static void t_on_signal(int sig)
{
	static const char msg[] = "shmkit bench: topic trial timed out or interrupted; "
				  "cleaned up\n";
	ssize_t w;
	for (int i = 0; i < t_npids; i++)
		if (t_pids[i] > 0)
			kill(t_pids[i], SIGKILL);
	for (int i = 0; i < 2; i++)
		if (t_names[i][0])
			shm_unlink(t_names[i]);
	if (t_ipc_path[0])
		unlink(t_ipc_path);
	w = write(STDERR_FILENO, msg, sizeof msg - 1);
	/* what a subscriber said before it failed (it may be why the publisher hung) */
	for (int i = 0; t_ctl && i < TB_MAX_SUBS; i++)
		if (t_ctl->slot[i].msg[0]) {
			w = write(STDERR_FILENO, t_ctl->slot[i].msg,
				  strnlen(t_ctl->slot[i].msg, sizeof t_ctl->slot[i].msg));
			w = write(STDERR_FILENO, "\n", 1);
			break;
		}
	(void)w;
	_exit(sig == SIGALRM ? SHMKIT_EXIT_FAIL : 128 + sig);
}

static void t_set_handlers(int on)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = t_on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < TB_NSIGNALS; i++) {
		if (on)
			sigaction(t_signals[i], &sa, &t_old_sa[i]);
		else
			sigaction(t_signals[i], &t_old_sa[i], NULL);
	}
}

/* ---- children ---- */

static void t_child_fail(int idx, const char *what, int err)
{
	struct tb_slot *s = &t_ctl->slot[idx];
	s->err = err ? err : -EPROTO;
	snprintf(s->msg, sizeof s->msg, "subscriber %d: %s: %s", idx, what,
		 err < 0 ? shmkit_strerror(err) : "bad message");
}

/* A subscriber has opened its end; it starts receiving only once the publisher has
 * opened its own (a topic without any publisher yet may read as ended). */
static void t_ready(void)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	atomic_fetch_add_explicit(&t_ctl->ready, 1, memory_order_release);
	/* acquire pairs with the parent's release of go; the kernel compares go with 0
	 * under its lock, so a store and wake between our load and the wait is not lost
	 * (and the timeout lets a stopped trial go) */
	while (!atomic_load_explicit(&t_ctl->go, memory_order_acquire) &&
	       !atomic_load_explicit(&t_ctl->stop, memory_order_relaxed))
		syscall(SYS_futex, (void *)&t_ctl->go, FUTEX_WAIT, 0, &ts, NULL, 0);
}

static int t_stopped(void)
{
	return atomic_load_explicit(&t_ctl->stop, memory_order_acquire);
}

/* Round trip, child: echo every message back until TB_STOP. */
static int t_rtt_echo(struct tb_link *l, int idx)
{
	alignas(64) unsigned char buf[TB_RTT_BYTES];
	uint64_t last = 0, seq;
	ssize_t r;
	int topic = l->mech == TB_TOPIC;

	if (topic) {
		if ((r = t_topic_attach(l->name[0], SHMKIT_TOPIC_SUBSCRIBER, &l->sub)) ||
		    (r = t_topic_attach(l->name[1], SHMKIT_TOPIC_PUBLISHER, &l->pub)))
			goto fail;
	} else if ((r = t_chan_attach(l->name[0], SHMKIT_CHAN_CONSUMER, &l->crx)) ||
		   (r = t_chan_attach(l->name[1], SHMKIT_CHAN_PRODUCER, &l->ctx))) {
		goto fail;
	}
	t_ready();
	for (;;) {
		r = topic ? shmkit_topic_receive(l->sub, buf, sizeof buf, SHMKIT_FOREVER)
			  : shmkit_chan_recv(l->crx, buf, sizeof buf, SHMKIT_FOREVER);
		if (r != TB_RTT_BYTES) {
			t_child_fail(idx, "receive", r < 0 ? (int)r : -EPIPE);
			return -1;
		}
		memcpy(&seq, buf, sizeof seq);
		if (!check(buf, TB_RTT_BYTES, seq, &l->sum) ||
		    (seq != TB_STOP && seq != last + 1)) {
			t_child_fail(idx, "receive", 0);
			return -1;
		}
		fill(buf, TB_RTT_BYTES, seq);
		r = topic ? shmkit_topic_publish(l->pub, buf, TB_RTT_BYTES, SHMKIT_FOREVER)
			  : shmkit_chan_send(l->ctx, buf, TB_RTT_BYTES, SHMKIT_FOREVER);
		if (r) {
			t_child_fail(idx, "send", (int)r);
			return -1;
		}
		if (seq == TB_STOP)
			return 0;
		last = seq;
	}
fail:
	t_child_fail(idx, "open", (int)r);
	atomic_store_explicit(&t_ctl->failed, 1, memory_order_release);
	return -1;
}

/* Throughput, child: consume to the end of the stream, counting into the slot; the
 * parent measures the window. */
static int t_tput_drain(struct tb_link *l, int idx)
{
	struct tb_slot *s = &t_ctl->slot[idx];
	unsigned char *buf = aligned_alloc(64, (l->size + 63) & ~(size_t)63);
	uint64_t count = 0;
	ssize_t r;
	int topic = l->mech == TB_TOPIC;

	if (!buf) {
		r = -ENOMEM;
		goto fail;
	}
	memset(buf, 0, l->size);
	if ((r = topic ? t_topic_attach(l->name[0], SHMKIT_TOPIC_SUBSCRIBER, &l->sub)
		       : t_chan_attach(l->name[0], SHMKIT_CHAN_CONSUMER, &l->crx)))
		goto fail;
	t_ready();
	for (;;) {
		r = topic ? shmkit_topic_receive(l->sub, buf, l->size, SHMKIT_FOREVER)
			  : shmkit_chan_recv(l->crx, buf, l->size, SHMKIT_FOREVER);
		if (r == 0)
			break;
		if (r < 0) {
			t_child_fail(idx, "receive", (int)r);
			return -1;
		}
		if ((size_t)r != l->size || !check_stamps(buf, l->size, count + 1, &l->sum)) {
			t_child_fail(idx, "receive", 0);
			return -1;
		}
		atomic_store_explicit(&s->count, ++count, memory_order_relaxed);
	}
	free(buf);
	return 0;
fail:
	free(buf);
	t_child_fail(idx, "open", (int)r);
	atomic_store_explicit(&t_ctl->failed, 1, memory_order_release);
	return -1;
}

/* Fan-out, child: receive until stopped, checking order and bytes; count deliveries
 * and losses (gaps in the sequence numbers, or the topic's own loss count). */
static int t_fan_sub(struct tb_link *l, int idx)
{
	alignas(64) unsigned char buf[TB_FAN_BYTES];
	struct tb_slot *s = &t_ctl->slot[idx];
	uint64_t count = 0, last = 0, lost = 0, seq;
	int fd = -1, reliable = l->mech == TB_TOPIC || l->mech == TB_UNIX;
	ssize_t r;

	switch (l->mech) {
	case TB_TOPIC:
	case TB_TOPIC_LOSSY:
		if ((r = t_topic_attach(l->name[0], SHMKIT_TOPIC_SUBSCRIBER, &l->sub)))
			goto fail;
		break;
	case TB_UNIX: {
		struct timeval tv = {0, TB_POLL_NS / 1000};
		fd = l->rfds[idx];
		l->rfds[idx] = -1;
		for (int i = 0; i < TB_MAX_SUBS; i++)
			t_close_fd(&l->rfds[i]);
		t_close_fd(&l->sfd);
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)) {
			r = -errno;
			goto fail;
		}
		break;
	}
	case TB_ZMQ: {
		int ms = (int)(TB_POLL_NS / SHMKIT_MSEC), ivl = 1, zero = 0;
		if (!(l->zsock = tz_socket(&l->zctx, TZ_SUB, 0)) ||
		    tz.setsockopt(l->zsock, TZ_RCVTIMEO, &ms, sizeof ms) ||
		    tz.setsockopt(l->zsock, TZ_RECONNECT_IVL, &ivl, sizeof ivl) ||
		    tz.setsockopt(l->zsock, TZ_LINGER, &zero, sizeof zero) ||
		    tz.setsockopt(l->zsock, TZ_SUBSCRIBE, "", 0) ||
		    tz.connect(l->zsock, l->endpoint)) {
			r = -tz.errno_();
			goto fail;
		}
		/* ready once the first probe arrived: the publisher sees every
		 * subscriber connected before it measures (ZeroMQ's slow joiner) */
		for (;;) {
			r = tz.recv(l->zsock, buf, sizeof buf, 0);
			if (r >= 0)
				break;
			if (tz.errno_() != EAGAIN && tz.errno_() != EINTR) {
				r = -tz.errno_();
				goto fail;
			}
		}
		break;
	}
	default:
		r = -ENOSYS;
		goto fail;
	}
	t_ready();
	while (!t_stopped()) {
		switch (l->mech) {
		case TB_TOPIC:
		case TB_TOPIC_LOSSY:
			r = shmkit_topic_receive(l->sub, buf, sizeof buf, TB_POLL_NS);
			if (r == -EOVERFLOW) {
				lost += shmkit_topic_lost(l->sub);
				atomic_store_explicit(&s->lost, lost, memory_order_relaxed);
				continue;
			}
			if (r == -ETIMEDOUT || r == -EAGAIN)
				continue;
			if (r == 0 || r == -EPIPE)
				goto done;
			break;
		case TB_UNIX:
			r = recv(fd, buf, sizeof buf, 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r < 0)
				r = -errno;
			break;
		default:
			r = tz.recv(l->zsock, buf, sizeof buf, 0);
			if (r < 0 && (tz.errno_() == EAGAIN || tz.errno_() == EINTR))
				continue;
			if (r < 0)
				r = -tz.errno_();
			break;
		}
		if (r < 0) {
			t_child_fail(idx, "receive", (int)r);
			return -1;
		}
		memcpy(&seq, buf, sizeof seq);
		if (r != TB_FAN_BYTES || !check(buf, TB_FAN_BYTES, seq, &l->sum)) {
			t_child_fail(idx, "receive", 0);
			return -1;
		}
		if (seq == 0)
			continue; /* ZeroMQ's probes */
		/* A reliable transport delivers every message in order; a lossy one in
		 * order with gaps (the first message may be any). */
		if (last && (reliable ? seq != last + 1 : seq <= last)) {
			t_child_fail(idx, "order", 0);
			return -1;
		}
		if (last && !t_is_topic(l->mech) && seq > last + 1) {
			lost += seq - last - 1;
			atomic_store_explicit(&s->lost, lost, memory_order_relaxed);
		}
		last = seq;
		atomic_store_explicit(&s->count, ++count, memory_order_relaxed);
	}
done:
	if (fd >= 0)
		close(fd);
	return 0;
fail:
	t_child_fail(idx, "open", (int)r);
	atomic_store_explicit(&t_ctl->failed, 1, memory_order_release);
	return -1;
}

/* Wake cost, child: wait (epoll on the topic's descriptor, or a blocking receive with
 * spin 0), take everything, say so, wait again. */
static int t_wake_sub(struct tb_link *l, int idx)
{
	alignas(64) unsigned char buf[64];
	struct tb_slot *s = &t_ctl->slot[idx];
	struct epoll_event ev = {.events = EPOLLIN};
	uint64_t count = 0;
	int ep = -1, fd;
	ssize_t r;

	if ((r = t_topic_attach(l->name[0], SHMKIT_TOPIC_SUBSCRIBER, &l->sub)))
		goto fail;
	if (l->mech == TB_EPOLL) {
		if ((fd = shmkit_topic_fd(l->sub)) < 0) {
			r = fd;
			goto fail;
		}
		if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
			r = -errno;
			goto fail;
		}
	} else if ((r = shmkit_topic_set_spin(l->sub, 0))) {
		goto fail;
	}
	t_ready();
	for (;;) {
		/* release: the parent's acquire of waiting sees count's messages taken */
		atomic_store_explicit(&s->waiting, count, memory_order_release);
		if (l->mech == TB_EPOLL) {
			int k = epoll_wait(ep, &ev, 1, (int)(TB_WAKE_POLL_NS / SHMKIT_MSEC));
			if (k < 0 && errno != EINTR) {
				r = -errno;
				t_child_fail(idx, "epoll_wait", (int)r);
				return -1;
			}
			/* drain: the descriptor is level-triggered */
			while ((r = shmkit_topic_receive(l->sub, buf, sizeof buf, 0)) > 0) {
				if (r != 64 || !check(buf, 64, count + 1, &l->sum)) {
					t_child_fail(idx, "receive", 0);
					return -1;
				}
				count++;
			}
		} else {
			r = shmkit_topic_receive(l->sub, buf, sizeof buf, TB_WAKE_POLL_NS);
			if (r > 0) {
				if (r != 64 || !check(buf, 64, count + 1, &l->sum)) {
					t_child_fail(idx, "receive", 0);
					return -1;
				}
				count++;
			}
		}
		if (r == 0 || r == -EPIPE)
			return 0;
		if (r < 0 && r != -EAGAIN && r != -ETIMEDOUT) {
			t_child_fail(idx, "receive", (int)r);
			return -1;
		}
		atomic_store_explicit(&s->acked, count, memory_order_release);
		if (t_stopped())
			return 0;
	}
fail:
	t_child_fail(idx, "open", (int)r);
	atomic_store_explicit(&t_ctl->failed, 1, memory_order_release);
	return -1;
}

static _Noreturn void t_child_main(struct tbench *tb, const struct tb_case *c,
				   struct tb_link *l, int idx, pid_t parent)
{
	int r;

	t_npids = 0;
	for (size_t i = 0; i < TB_NSIGNALS; i++)
		signal(t_signals[i], SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(SHMKIT_EXIT_FAIL);
	if (tb->nsub_cpus && (r = t_pin(tb->sub_cpus[idx % tb->nsub_cpus]))) {
		t_child_fail(idx, "sched_setaffinity", r);
		atomic_store_explicit(&t_ctl->failed, 1, memory_order_release);
		_exit(SHMKIT_EXIT_FAIL);
	}
	switch (c->kind) {
	case TB_RTT:
		r = t_rtt_echo(l, idx);
		break;
	case TB_TPUT:
		r = t_tput_drain(l, idx);
		break;
	case TB_FAN:
		r = t_fan_sub(l, idx);
		break;
	default:
		r = t_wake_sub(l, idx);
		break;
	}
	atomic_fetch_add_explicit(&t_ctl->sum, l->sum, memory_order_relaxed);
	/* Close, then exit() rather than _exit(): the library's exit handler removes this
	 * process's liveness file, which _exit() left behind (256 per wake-cost trial). */
	shmkit_topic_close(l->sub);
	shmkit_topic_close(l->pub);
	shmkit_chan_close(l->crx);
	shmkit_chan_close(l->ctx);
	if (l->zsock)
		tz.close(l->zsock);
	if (l->zctx)
		tz.ctx_term(l->zctx);
	exit(r ? SHMKIT_EXIT_FAIL : SHMKIT_EXIT_OK);
}

/* ---- the parent's side of each kind ---- */

/* Wait until n subscribers opened their ends, then let them go: the caller's ends
 * are open. */
static int t_wait_ready(int n)
{
	/* acquire pairs with the children's release of ready and failed */
	while (atomic_load_explicit(&t_ctl->ready, memory_order_acquire) < n) {
		if (atomic_load_explicit(&t_ctl->failed, memory_order_acquire))
			return -1;
		sched_yield();
	}
	atomic_store_explicit(&t_ctl->go, 1, memory_order_release);
	syscall(SYS_futex, (void *)&t_ctl->go, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
	return 0;
}

static inline int t_rt_once(struct tb_link *l, int topic, unsigned char *buf, uint64_t seq)
{
	ssize_t r;
	fill(buf, TB_RTT_BYTES, seq);
	r = topic ? shmkit_topic_publish(l->pub, buf, TB_RTT_BYTES, SHMKIT_FOREVER)
		  : shmkit_chan_send(l->ctx, buf, TB_RTT_BYTES, SHMKIT_FOREVER);
	if (r)
		return (int)r;
	r = topic ? shmkit_topic_receive(l->sub, buf, TB_RTT_BYTES, SHMKIT_FOREVER)
		  : shmkit_chan_recv(l->crx, buf, TB_RTT_BYTES, SHMKIT_FOREVER);
	if (r != TB_RTT_BYTES)
		return r < 0 ? (int)r : -EPIPE;
	return check(buf, TB_RTT_BYTES, seq, &l->sum) ? 0 : -EBADMSG;
}

/* Round trip, parent: warm-up, then batches of about 10 µs with no timer inside; the
 * typical round trip is the median batch's mean (bench.c's method). */
static int t_rtt_parent(struct tb_link *l, int64_t trial_ns, double *typical, double *mean)
{
	alignas(64) unsigned char buf[TB_RTT_BYTES];
	int topic = l->mech == TB_TOPIC;
	uint64_t seq = 0, n = 0, nb = 0, batch, end, a, b;
	int64_t t0, t1;
	int r;

	if (topic ? (r = t_topic_attach(l->name[0], SHMKIT_TOPIC_PUBLISHER, &l->pub)) ||
			 (r = t_topic_attach(l->name[1], SHMKIT_TOPIC_SUBSCRIBER, &l->sub))
		  : (r = t_chan_attach(l->name[0], SHMKIT_CHAN_PRODUCER, &l->ctx)) ||
			 (r = t_chan_attach(l->name[1], SHMKIT_CHAN_CONSUMER, &l->crx)))
		return r;
	if (t_wait_ready(1))
		return -1;
	end = tick() + ticks_for(trial_ns / 10);
	t0 = now_ns();
	do {
		if ((r = t_rt_once(l, topic, buf, ++seq)))
			return r;
		n++;
	} while (tick() < end);
	t1 = now_ns();
	batch = (uint64_t)(10000.0 * (double)n / (double)(t1 - t0 + 1));
	batch = batch < 1 ? 1 : batch > 64 ? 64 : batch;

	end = tick() + ticks_for(trial_ns * 9 / 10);
	n = 0;
	t0 = now_ns();
	do {
		a = tick();
		for (uint64_t j = 0; j < batch; j++)
			if ((r = t_rt_once(l, topic, buf, ++seq)))
				return r;
		b = tick();
		if (nb < TB_BATCH_CAP)
			t_batches[nb++] = b - a;
		n += batch;
	} while (b < end);
	t1 = now_ns();
	*mean = (double)(t1 - t0) / (double)n;
	qsort(t_batches, nb, sizeof *t_batches, t_cmp_u64);
	*typical = (double)t_batches[nb / 2] * g_ns_per_tick / (double)batch;
	return t_rt_once(l, topic, buf, TB_STOP);
}

/* Sum of the subscribers' counts: a snapshot. */
static uint64_t t_delivered(int subs)
{
	uint64_t n = 0;
	for (int i = 0; i < subs; i++)
		n += atomic_load_explicit(&t_ctl->slot[i].count, memory_order_relaxed);
	return n;
}

static uint64_t t_lost(int subs)
{
	uint64_t n = 0;
	for (int i = 0; i < subs; i++)
		n += atomic_load_explicit(&t_ctl->slot[i].lost, memory_order_relaxed);
	return n;
}

/* One message from the publisher to every subscriber. */
static inline int t_publish(struct tb_link *l, const unsigned char *buf, size_t n)
{
	switch (l->mech) {
	case TB_CHAN:
		return shmkit_chan_send(l->ctx, buf, n, SHMKIT_FOREVER);
	case TB_TOPIC:
	case TB_TOPIC_LOSSY:
		return shmkit_topic_publish(l->pub, buf, n, SHMKIT_FOREVER);
	case TB_UNIX:
		for (int i = 0; i < l->subs; i++)
			while (sendto(l->sfd, buf, n, 0, (const struct sockaddr *)&l->addr[i],
				      l->addrlen[i]) < 0)
				if (errno != EINTR)
					return -errno;
		return 0;
	case TB_ZMQ:
		/* PUB never blocks: a full subscriber pipe drops (counted as lost) */
		if (tz.send(l->zsock, buf, n, 0) < 0 && tz.errno_() != EAGAIN &&
		    tz.errno_() != EINTR)
			return -tz.errno_();
		return 0;
	default:
		return -ENOSYS;
	}
}

/* Throughput and fan-out, parent: publish for the trial; the figure is what the
 * subscribers received between the end of a warm-up (an eighth of the trial) and the
 * end, per second, all subscribers together (bytes/s for throughput, deliveries/s for
 * fan-out). */
static int t_stream_parent(struct tb_link *l, const struct tb_case *c, int64_t trial_ns,
			   double *fig, double *lossf, struct tb_res *res)
{
	unsigned char *buf = aligned_alloc(64, (l->size + 63) & ~(size_t)63);
	uint64_t every = l->size >= 4096 ? 1 : 64, seq, warm, end, d0 = 0, d1, l0 = 0, l1;
	int64_t t0 = 0, t1;
	int r = 0, warmed = 0;

	if (!buf)
		return -ENOMEM;
	fill(buf, l->size, 0);
	switch (l->mech) {
	case TB_CHAN:
		r = t_chan_attach(l->name[0], SHMKIT_CHAN_PRODUCER, &l->ctx);
		break;
	case TB_TOPIC:
	case TB_TOPIC_LOSSY:
		r = t_topic_attach(l->name[0], SHMKIT_TOPIC_PUBLISHER, &l->pub);
		break;
	case TB_UNIX:
		for (int i = 0; i < TB_MAX_SUBS; i++)
			t_close_fd(&l->rfds[i]);
		break;
	case TB_ZMQ: {
		int zero = 0;
		if (!(l->zsock = tz_socket(&l->zctx, TZ_PUB, 1)) ||
		    tz.setsockopt(l->zsock, TZ_LINGER, &zero, sizeof zero) ||
		    tz.bind(l->zsock, l->endpoint)) {
			r = -tz.errno_();
			break;
		}
		/* probes (sequence 0) until every subscriber has one; at most 10 s */
		for (int k = 0; k < 10000 && !r; k++) {
			if (atomic_load_explicit(&t_ctl->ready, memory_order_acquire) >= c->subs)
				break;
			if (atomic_load_explicit(&t_ctl->failed, memory_order_acquire))
				r = -1;
			else if (tz.send(l->zsock, buf, l->size, TZ_DONTWAIT) < 0 &&
				 tz.errno_() != EAGAIN)
				r = -tz.errno_();
			t_sleep_ns(SHMKIT_MSEC);
		}
		if (!r && atomic_load_explicit(&t_ctl->ready, memory_order_acquire) < c->subs)
			r = -ETIMEDOUT; /* a subscriber never connected */
		break;
	}
	default:
		r = -ENOSYS;
	}
	if (r || (r = t_wait_ready(c->subs)))
		goto out;

	warm = tick() + ticks_for(trial_ns / 8);
	end = tick() + ticks_for(trial_ns);
	for (seq = 1;; seq++) {
		if (c->kind == TB_TPUT)
			stamp(buf, l->size, seq);
		else
			fill(buf, l->size, seq);
		if ((r = t_publish(l, buf, l->size)))
			goto out;
		if (seq & (every - 1))
			continue;
		if (!warmed && tick() >= warm) {
			warmed = 1;
			t0 = now_ns();
			d0 = t_delivered(c->subs);
			l0 = t_lost(c->subs);
		} else if (warmed && seq >= 16 && tick() >= end &&
			   t_delivered(c->subs) >= d0 + 16) {
			/* (a loaded machine may keep subscribers off their CPU for the
			 * whole window: go on until they received something) */
			break;
		}
	}
	t1 = now_ns();
	d1 = t_delivered(c->subs);
	l1 = t_lost(c->subs);
	if (d1 <= d0) {
		r = -ENODATA;
		goto out;
	}
	*fig = (double)(d1 - d0) / ((double)(t1 - t0) * 1e-9);
	if (c->kind == TB_TPUT)
		*fig *= (double)l->size;
	*lossf = (double)(l1 - l0) / (double)(d1 - d0 + l1 - l0);
	res->delivered += d1 - d0;
	res->lost += l1 - l0;
out:
	/* End the stream: the channel's and topic's subscribers see end-of-stream after
	 * draining, the sockets' leave at their next timeout. */
	atomic_store_explicit(&t_ctl->stop, 1, memory_order_release);
	shmkit_chan_close(l->ctx);
	shmkit_topic_close(l->pub);
	l->ctx = NULL;
	l->pub = NULL;
	free(buf);
	return r;
}

static double t_median_u64(uint64_t *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof *v, t_cmp_u64);
	return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

/* Wake cost, parent: publish one message only when every subscriber has taken the
 * last and has been waiting for TB_SETTLE_NS; time the publish call alone, and how
 * long until every subscriber had the message. */
static int t_wake_parent(struct tb_link *l, const struct tb_case *c, int64_t trial_ns,
			 double *pub_ns, double *all_ns)
{
	alignas(64) unsigned char buf[64];
	uint64_t end, a, b, k;
	size_t ns = 0;
	int r;

	if ((r = t_topic_attach(l->name[0], SHMKIT_TOPIC_PUBLISHER, &l->pub)) ||
	    (r = t_wait_ready(c->subs)))
		return r;
	end = tick() + ticks_for(trial_ns);
	for (k = 1; ns < TB_WAKE_SAMPLES_MAX && (ns < 3 || tick() < end); k++) {
		/* acquire pairs with the subscribers' release of waiting */
		for (int i = 0; i < c->subs; i++)
			while (atomic_load_explicit(&t_ctl->slot[i].waiting,
						    memory_order_acquire) != k - 1) {
				if (atomic_load_explicit(&t_ctl->failed, memory_order_relaxed))
					return -1;
				sched_yield();
			}
		t_sleep_ns(TB_SETTLE_NS);
		fill(buf, sizeof buf, k);
		a = tick();
		r = shmkit_topic_publish(l->pub, buf, sizeof buf, SHMKIT_FOREVER);
		b = tick();
		if (r)
			return r;
		for (int i = 0; i < c->subs; i++)
			while (atomic_load_explicit(&t_ctl->slot[i].acked, memory_order_acquire) <
			       k)
				t_relax();
		t_samples2[ns] = tick() - a;
		t_samples[ns++] = b - a;
	}
	*pub_ns = t_median_u64(t_samples, ns) * g_ns_per_tick;
	*all_ns = c->subs ? t_median_u64(t_samples2, ns) * g_ns_per_tick : NAN;
	atomic_store_explicit(&t_ctl->stop, 1, memory_order_release);
	shmkit_topic_close(l->pub); /* end-of-stream wakes every subscriber */
	l->pub = NULL;
	return 0;
}

/* Run one case once: 0 with the figure in res->val[round], 1 unavailable here, -1
 * failed (why says). */
static int t_run_case(struct tbench *tb, const struct tb_case *c, struct tb_res *res,
		      int round)
{
	struct tb_link *l = calloc(1, sizeof *l);
	int64_t trial_ns = (int64_t)tb->cfg.trial_ms * 1000000;
	int nkids = c->subs, r = 0, st, bad = 0;
	double fig = NAN, aux = NAN;
	pid_t self = getpid();

	if (!l) {
		snprintf(res->why, sizeof res->why, "out of memory");
		return -1;
	}
	memset(t_ctl, 0, sizeof *t_ctl);
	if ((r = t_link_setup(l, c, res->why, sizeof res->why))) {
		t_link_teardown(l);
		free(l);
		return r == -ENOSYS || r == -EACCES || r == -EPERM ? 1 : -1;
	}
	fflush(stdout);
	fflush(stderr);
	alarm(TRIAL_TIMEOUT_S);
	t_npids = 0;
	for (int i = 0; i < nkids; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			r = -errno;
			snprintf(res->why, sizeof res->why, "fork: %s", strerror(errno));
			break;
		}
		if (pid == 0)
			t_child_main(tb, c, l, i, self);
		t_pids[t_npids++] = pid;
	}
	if (!r) {
		switch (c->kind) {
		case TB_RTT:
			r = t_rtt_parent(l, trial_ns, &fig, &aux);
			break;
		case TB_TPUT:
		case TB_FAN:
			r = t_stream_parent(l, c, trial_ns, &fig, &aux, res);
			break;
		case TB_WAKE:
			r = t_wake_parent(l, c, trial_ns, &fig, &aux);
			break;
		}
		if (r < -1)
			snprintf(res->why, sizeof res->why, "publisher: %s", shmkit_strerror(r));
	}
	atomic_store_explicit(&t_ctl->stop, 1, memory_order_release);
	/* A failed trial may leave children blocked for good (a reliable publisher
	 * gone, a round trip cut short): end them; a good one lets them leave. */
	for (int i = 0; i < t_npids; i++) {
		if (r)
			kill(t_pids[i], SIGKILL);
		while (waitpid(t_pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!r && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			bad = 1;
	}
	alarm(0);
	t_npids = 0;
	t_link_teardown(l);
	free(l);
	if (r || bad) {
		/* the children's own account is the first cause when there is one */
		for (int i = 0; i < nkids; i++)
			if (t_ctl->slot[i].msg[0]) {
				snprintf(res->why, sizeof res->why, "%s", t_ctl->slot[i].msg);
				break;
			}
		if (!res->why[0])
			snprintf(res->why, sizeof res->why, "a subscriber failed");
		return -1;
	}
	res->val[round] = fig;
	res->aux[round] = aux;
	return 0;
}

/* ---- statistics ---- */

static int t_find(const char *id)
{
	for (size_t i = 0; id && i < TB_NCASES; i++)
		if (!strcmp(tb_cases[i].id, id))
			return (int)i;
	return -1;
}

static double t_median(double *v, int n)
{
	if (n <= 0)
		return NAN;
	qsort(v, (size_t)n, sizeof *v, t_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double t_median_of(const double *per_round, int rounds)
{
	double v[rounds > 0 ? rounds : 1];
	int n = 0;
	for (int r = 0; r < rounds; r++)
		if (isfinite(per_round[r]))
			v[n++] = per_round[r];
	return t_median(v, n);
}

/* Quantile q of a's figure / b's figure in the same round; *used: the rounds that had
 * both. */
static double t_ratio_q(const struct tbench *tb, int a, int b, double q, int *used)
{
	int rounds = tb->cfg.rounds, n = 0, k;
	double v[rounds > 0 ? rounds : 1], pos;
	if (a >= 0 && b >= 0)
		for (int r = 0; r < rounds; r++)
			if (isfinite(tb->res[a].val[r]) && isfinite(tb->res[b].val[r]) &&
			    tb->res[b].val[r] > 0)
				v[n++] = tb->res[a].val[r] / tb->res[b].val[r];
	if (used)
		*used = n;
	if (!n)
		return NAN;
	qsort(v, (size_t)n, sizeof *v, t_cmp_double);
	pos = q * (n - 1);
	k = (int)pos;
	return k + 1 < n ? v[k] + (v[k + 1] - v[k]) * (pos - k) : v[k];
}

static double t_ratio(const struct tbench *tb, const char *a, const char *b, int *used)
{
	return t_ratio_q(tb, t_find(a), t_find(b), 0.5, used);
}

/* ---- the entry points ---- */

int shmkit__bench_topic_run(const struct tb_cfg *cfg, struct tbench **out)
{
	struct tbench *tb = calloc(1, sizeof *tb);
	int zmq_wanted = 0, failed = 0, any;
	char why[160];

	*out = tb;
	if (!tb)
		goto nomem;
	tb->cfg = *cfg;
	for (size_t i = 0; i < TB_NCASES; i++) {
		struct tb_res *res = &tb->res[i];
		if (cfg->only && !strstr(tb_cases[i].id, cfg->only)) {
			res->state = ST_SKIPPED;
			snprintf(res->why, sizeof res->why, "not selected (--only %s)", cfg->only);
		} else {
			tb->ran = 1;
			zmq_wanted |= tb_cases[i].mech == TB_ZMQ;
		}
		res->val = malloc(sizeof(double) * (size_t)cfg->rounds);
		res->aux = malloc(sizeof(double) * (size_t)cfg->rounds);
		if (!res->val || !res->aux)
			goto nomem;
		for (int k = 0; k < cfg->rounds; k++)
			res->val[k] = res->aux[k] = NAN;
	}
	if (!tb->ran)
		return 0;

	t_allowed = cfg->allowed;
	t_nallowed = CPU_COUNT(&t_allowed);
	/* Subscribers on every allowed CPU but the publisher's. */
	for (int i = 0; i < CPU_SETSIZE && tb->nsub_cpus < 8; i++)
		if (cfg->pinned && CPU_ISSET(i, &cfg->allowed) && i != cfg->cpu)
			tb->sub_cpus[tb->nsub_cpus++] = i;

#if defined(__SANITIZE_THREAD__)
	/* libzmq is not instrumented: ThreadSanitizer reports its I/O threads' copies as
	 * races, and every child forked after that exits with its report count */
	if (zmq_wanted) {
		snprintf(tb->zmq_note, sizeof tb->zmq_note,
			 "skipped (a ThreadSanitizer build: libzmq is not instrumented)");
		zmq_wanted = -1;
	}
#endif
	if (zmq_wanted > 0 && tz_load(!cfg->no_install, why, sizeof why)) {
		snprintf(tb->zmq_note, sizeof tb->zmq_note, "skipped (%s)", why);
		zmq_wanted = -1;
	} else if (zmq_wanted > 0) {
		snprintf(tb->zmq_note, sizeof tb->zmq_note, "%s", why);
	}
	if (zmq_wanted < 0)
		for (size_t i = 0; i < TB_NCASES; i++)
			if (tb_cases[i].mech == TB_ZMQ && tb->res[i].state == ST_OK) {
				tb->res[i].state = ST_UNAVAILABLE;
				snprintf(tb->res[i].why, sizeof tb->res[i].why, "%s", tb->zmq_note);
			}

	t_ctl = mmap(NULL, sizeof *t_ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	t_samples = calloc(TB_WAKE_SAMPLES_MAX, sizeof *t_samples);
	t_samples2 = calloc(TB_WAKE_SAMPLES_MAX, sizeof *t_samples2);
	t_batches = calloc(TB_BATCH_CAP, sizeof *t_batches);
	if (t_ctl == MAP_FAILED || !t_samples || !t_samples2 || !t_batches) {
		if (t_ctl != MAP_FAILED)
			munmap(t_ctl, sizeof *t_ctl);
		t_ctl = NULL;
		goto nomem;
	}

	signal(SIGPIPE, SIG_IGN);
	t_set_handlers(1);
	calibrate(cfg->quick ? 5 : 20);
	any = isatty(STDERR_FILENO);
	for (int round = 0; round < cfg->rounds; round++) {
		if (any)
			fprintf(stderr, "\rshmkit bench: topics, round %d/%d ", round + 1,
				cfg->rounds);
		for (size_t i = 0; i < TB_NCASES; i++) {
			int r;
			if (tb->res[i].state != ST_OK)
				continue; /* failed or unavailable once: not retried */
			r = t_run_case(tb, &tb_cases[i], &tb->res[i], round);
			if (r > 0)
				tb->res[i].state = ST_UNAVAILABLE;
			else if (r < 0)
				tb->res[i].state = ST_FAILED;
		}
	}
	if (any)
		fprintf(stderr, "\r%50s\r", "");
	t_set_handlers(0);
	munmap(t_ctl, sizeof *t_ctl);
	t_ctl = NULL;
	free(t_samples);
	free(t_samples2);
	free(t_batches);
	t_samples = t_samples2 = t_batches = NULL;
	for (size_t i = 0; i < TB_NCASES; i++)
		if (tb->res[i].state == ST_FAILED) {
			failed = 1;
			fprintf(stderr, "shmkit bench: %s failed: %s\n", tb_cases[i].id,
				tb->res[i].why);
		}
	return failed ? -1 : 0;
nomem:
	free(t_samples);
	free(t_samples2);
	free(t_batches);
	t_samples = t_samples2 = t_batches = NULL;
	fprintf(stderr, "shmkit bench: topics: out of memory\n");
	return -ENOMEM;
}

void shmkit__bench_topic_free(struct tbench *tb)
{
	if (!tb)
		return;
	for (size_t i = 0; i < TB_NCASES; i++) {
		free(tb->res[i].val);
		free(tb->res[i].aux);
	}
	free(tb);
}

int shmkit__bench_topic_case(const struct tbench *tb, size_t i, const char **id,
			     const char **label, const double **val)
{
	if (!tb || i >= TB_NCASES)
		return -1;
	*id = tb_cases[i].id;
	*label = tb_cases[i].label;
	*val = tb->res[i].val;
	return tb->res[i].state == ST_OK && tb->res[i].val ? tb->cfg.rounds : 0;
}

static const char *t_kind_name(enum tb_kind k)
{
	return k == TB_RTT    ? "round_trip"
	       : k == TB_TPUT ? "throughput"
	       : k == TB_FAN  ? "fanout"
			      : "wake_cost";
}

static void t_print_json(FILE *f, const struct tbench *tb)
{
	int rounds = tb->cfg.rounds, all = 1;

	fprintf(f, "{\n    \"subscriber_cpus\": [");
	for (int i = 0; i < tb->nsub_cpus; i++)
		fprintf(f, "%s%d", i ? ", " : "", tb->sub_cpus[i]);
	fprintf(f, "], \"publisher_cpu\": %d, \"zeromq\": ", tb->cfg.pinned ? tb->cfg.cpu : -1);
	shmkit__json_str(f, tb->zmq_note);
	fprintf(f, ",\n    \"method\": \"as the channel section; the topic is lossy in round "
		   "trips and wake-cost trials (one message in flight), reliable in throughput "
		   "and in the fan-out the targets use (nothing lost, like the blocking UNIX "
		   "sockets); lossy fan-out is reported for information; fan-out rings are 16 "
		   "MiB; ZeroMQ has its defaults (high-water mark 1000), its publisher's I/O "
		   "thread may use every CPU, its subscribers' stay on their CPU; "
		   "fan-out figures are deliveries/s counted by the subscribers; wake cost is "
		   "the publish call's time when every subscriber sleeps\",\n");
	fprintf(f, "    \"cases\": [\n");
	for (size_t i = 0; i < TB_NCASES; i++) {
		const struct tb_case *c = &tb_cases[i];
		const struct tb_res *r = &tb->res[i];
		double fig = t_median_of(r->val, rounds), aux = t_median_of(r->aux, rounds);

		fprintf(f, "      {\"id\": ");
		shmkit__json_str(f, c->id);
		fprintf(f, ", \"label\": ");
		shmkit__json_str(f, c->label);
		fprintf(f,
			", \"kind\": \"%s\", \"bytes\": %zu, \"subscribers\": %d, \"status\": "
			"\"%s\", \"error\": ",
			t_kind_name(c->kind), c->size, c->subs, shmkit__bench_state_name(r->state));
		if (r->state == ST_OK)
			fputs("null", f);
		else
			shmkit__json_str(f, r->why);
		switch (c->kind) {
		case TB_RTT:
			fprintf(f, ",\n       \"typical_ns\": ");
			shmkit__json_num(f, fig);
			fprintf(f, ", \"mean_ns\": ");
			shmkit__json_num(f, aux);
			break;
		case TB_TPUT:
			fprintf(f, ",\n       \"msgs_per_s\": ");
			shmkit__json_num(f, fig / (double)c->size);
			fprintf(f, ", \"gb_per_s\": ");
			shmkit__json_num(f, fig / 1e9);
			break;
		case TB_FAN:
			fprintf(f, ",\n       \"deliveries_per_s\": ");
			shmkit__json_num(f, fig);
			fprintf(f, ", \"delivered\": %" PRIu64 ", \"lost\": %" PRIu64, r->delivered,
				r->lost);
			break;
		case TB_WAKE:
			fprintf(f, ",\n       \"publish_ns\": ");
			shmkit__json_num(f, fig);
			fprintf(f, ", \"all_received_ns\": ");
			shmkit__json_num(f, aux);
			break;
		}
		fprintf(f, ",\n       \"per_round\": [");
		for (int k = 0; k < rounds; k++) {
			fputs(k ? ", " : "", f);
			shmkit__json_num(f, r->val[k]);
		}
		fprintf(f, "]}%s\n", i + 1 < TB_NCASES ? "," : "");
	}
	fprintf(f, "    ],\n    \"acceptance\": [\n");
	for (size_t i = 0; i < TB_NACCEPTS; i++) {
		const struct accept *a = &tb_accepts[i];
		int used, an = t_find(a->num), ad = t_find(a->den);
		double v = t_ratio(tb, a->num, a->den, &used);
		const char *vd = shmkit__bench_verdict(a, v);
		all &= !strcmp(vd, "PASS");
		fprintf(f, "      {\"id\": \"%s\", \"what\": ", a->id);
		shmkit__json_str(f, a->what);
		fprintf(f,
			", \"numerator\": \"%s\", \"denominator\": \"%s\", \"op\": \"%s\", "
			"\"threshold\": ",
			a->num, a->den, a->le ? "<=" : ">=");
		shmkit__json_num(f, a->bound);
		fprintf(f, ", \"measured\": ");
		shmkit__json_num(f, v);
		fprintf(f, ", \"p25\": ");
		shmkit__json_num(f, t_ratio_q(tb, an, ad, 0.25, NULL));
		fprintf(f, ", \"p75\": ");
		shmkit__json_num(f, t_ratio_q(tb, an, ad, 0.75, NULL));
		fprintf(f, ", \"rounds\": %d, \"result\": \"%s\"}%s\n", used, vd,
			i + 1 < TB_NACCEPTS ? "," : "");
	}
	fprintf(f, "    ],\n    \"all_pass\": %s\n  }", all ? "true" : "false");
}

static const char *t_fmt(char *b, size_t n, double v, const char *unit_fmt, double div)
{
	if (!isfinite(v))
		snprintf(b, n, "%9s", "-");
	else
		snprintf(b, n, unit_fmt, v / div);
	return b;
}

/* A case that did not measure: its state, on the rest of its line. */
static int t_not_ok(FILE *f, const struct tb_res *r)
{
	if (r->state == ST_OK)
		return 0;
	fprintf(f, "  %s: %s\n", shmkit__bench_state_name(r->state), r->why);
	return 1;
}

static void t_print_table(FILE *f, const struct tbench *tb)
{
	static const int fan_n[] = {1, 2, 4, 8}, wake_n[] = {0, 1, 16, 256};
	static const char *const fan_m[] = {"topic", "topic_lossy", "unix", "zmq"};
	static const char *const fan_l[] = {"shmkit topic, reliable", "shmkit topic, lossy",
					    "UNIX datagram, sendto each", "ZeroMQ PUB/SUB, ipc://"};
	int rounds = tb->cfg.rounds, miss = 0, skip = 0, i;
	char b[6][32], id[64], id2[64];

	fprintf(f, "\nTopics (issue 9): %d rounds of %zu cases, %d ms trials, interleaved; "
		   "ratios are medians of\nper-round ratios. Publisher ",
		rounds, TB_NCASES, tb->cfg.trial_ms);
	if (tb->cfg.pinned && tb->nsub_cpus) {
		fprintf(f, "on CPU %d, subscribers on CPU", tb->cfg.cpu);
		for (i = 0; i < tb->nsub_cpus; i++)
			fprintf(f, "%s%d", i ? "," : " ", tb->sub_cpus[i]);
		if (tb->nsub_cpus < 8)
			fprintf(f, ": fan-outs to more than %d subscriber%s are oversubscribed "
				   "(they share %s)",
				tb->nsub_cpus, tb->nsub_cpus > 1 ? "s" : "",
				tb->nsub_cpus > 1 ? "those CPUs" : "that CPU");
		fprintf(f, ".\n");
	} else {
		fprintf(f, "and subscribers unpinned (one CPU): every case is oversubscribed.\n");
	}
	fprintf(f, "ZeroMQ: %s\n\n", tb->zmq_note[0] ? tb->zmq_note : "not selected");

	fprintf(f, "Round trip, 64 B                 typical µs   mean µs   ÷chan\n");
	for (i = 0; i < (int)TB_NCASES; i++) {
		const struct tb_res *r = &tb->res[i];
		if (tb_cases[i].kind != TB_RTT)
			continue;
		fprintf(f, "  %-30s", tb_cases[i].label);
		if (t_not_ok(f, r))
			continue;
		fprintf(f, " %s %s  %s\n", t_fmt(b[0], 32, t_median_of(r->val, rounds), "%9.3f", 1e3),
			t_fmt(b[1], 32, t_median_of(r->aux, rounds), "%9.3f", 1e3),
			shmkit__bench_fmt_ratio(b[2], 32, t_ratio(tb, tb_cases[i].id, "topic.rtt.chan", NULL)));
	}
	fprintf(f, "  (the topics in lossy mode, the default; one message in flight, nothing "
		   "lost)\n\n");

	fprintf(f, "One-way throughput 1->1            size     msgs/s     GB/s   ÷chan\n");
	for (i = 0; i < (int)TB_NCASES; i++) {
		const struct tb_res *r = &tb->res[i];
		double fig;
		if (tb_cases[i].kind != TB_TPUT)
			continue;
		fprintf(f, "  %-30s %-6s", tb_cases[i].label,
			tb_cases[i].size >= MIB	     ? "1 MiB"
			: tb_cases[i].size >= 4 * KIB ? "4 KiB"
						      : "64 B");
		if (t_not_ok(f, r))
			continue;
		fig = t_median_of(r->val, rounds);
		snprintf(id, sizeof id, "topic.tput.chan.%zu", tb_cases[i].size);
		fprintf(f, " %s %8.2f  %s\n", shmkit__bench_fmt_rate(b[0], 32, fig / (double)tb_cases[i].size),
			fig / 1e9, shmkit__bench_fmt_ratio(b[1], 32, t_ratio(tb, tb_cases[i].id, id, NULL)));
	}
	fputc('\n', f);

	fprintf(f, "Fan-out, 64 B, aggregate deliveries/s   1 sub    2 subs    4 subs    8 subs\n");
	for (size_t m = 0; m < 4; m++) {
		fprintf(f, "  %-34s", fan_l[m]);
		for (size_t k = 0; k < 4; k++) {
			int ci;
			snprintf(id, sizeof id, "topic.fanout.%s.%d", fan_m[m], fan_n[k]);
			ci = t_find(id);
			fprintf(f, " %s", tb->res[ci].state == ST_OK
					      ? shmkit__bench_fmt_rate(b[0], 32,
							   t_median_of(tb->res[ci].val, rounds))
					      : "        -");
		}
		fputc('\n', f);
	}
	for (size_t m = 1; m < 4; m++) {
		char lbl[64];
		if (m == 1) {
			/* losses of the lossy modes, where any */
			for (size_t mm = 1; mm < 4; mm += 2) {
				fprintf(f, "  %-34s", mm == 1 ? "  lost, topic lossy" : "  lost, ZeroMQ");
				for (size_t k = 0; k < 4; k++) {
					const struct tb_res *r;
					snprintf(id, sizeof id, "topic.fanout.%s.%d", fan_m[mm],
						 fan_n[k]);
					r = &tb->res[t_find(id)];
					if (r->state != ST_OK || !(r->delivered + r->lost))
						fprintf(f, " %9s", "-");
					else
						fprintf(f, " %8.2f%%",
							100.0 * (double)r->lost /
							    (double)(r->delivered + r->lost));
				}
				fputc('\n', f);
			}
			continue;
		}
		snprintf(lbl, sizeof lbl, "  topic reliable ÷ %s", m == 2 ? "UNIX" : "ZeroMQ");
		fprintf(f, "  %-34s", lbl);
		for (size_t k = 0; k < 4; k++) {
			snprintf(id, sizeof id, "topic.fanout.topic.%d", fan_n[k]);
			snprintf(id2, sizeof id2, "topic.fanout.%s.%d", fan_m[m], fan_n[k]);
			fprintf(f, "    %s", shmkit__bench_fmt_ratio(b[0], 32, t_ratio(tb, id, id2, NULL)));
		}
		fputc('\n', f);
	}
	for (i = 0; i < (int)TB_NCASES; i++)
		if (tb_cases[i].kind == TB_FAN && tb->res[i].state != ST_OK &&
		    tb->res[i].state != ST_SKIPPED &&
		    (i == t_find("topic.fanout.zmq.1") || tb_cases[i].mech != TB_ZMQ))
			fprintf(f, "  %s: %s: %s\n", tb_cases[i].id, shmkit__bench_state_name(tb->res[i].state),
				tb->res[i].why);
	fprintf(f, "  (deliveries the subscribers received, all together, per second; "
		   "reliable mode and UNIX\n   sockets lose nothing; the topic's lossy row and "
		   "ZeroMQ drop when a subscriber lags;\n   topic rings 16 MiB; ZeroMQ with its "
		   "defaults; its publisher's I/O thread\n   may use every CPU, its subscribers' "
		   "stay on theirs, as the topic's subscribers do)\n\n");

	fprintf(f, "Waking sleeping subscribers: the publisher's publish call, ns/message\n"
		   "                                       0 subs    1 sub   16 subs  256 subs\n");
	for (size_t m = 0; m < 2; m++) {
		const char *mech = m ? "epoll" : "futex";
		fprintf(f, "  %-36s", m ? "epoll on shmkit_topic_fd()" : "blocking receive (futex)");
		for (size_t k = 0; k < 4; k++) {
			const struct tb_res *r;
			if (wake_n[k])
				snprintf(id, sizeof id, "topic.wake.%s.%d", mech, wake_n[k]);
			else
				snprintf(id, sizeof id, "topic.wake.none.0");
			r = &tb->res[t_find(id)];
			fprintf(f, " %s", r->state == ST_OK
					      ? t_fmt(b[0], 32, t_median_of(r->val, rounds),
						      "%9.0f", 1)
					      : "        -");
		}
		fputc('\n', f);
		fprintf(f, "  %-36s", "  every subscriber had it after, µs");
		for (size_t k = 0; k < 4; k++) {
			const struct tb_res *r;
			if (!wake_n[k]) {
				fprintf(f, " %9s", "");
				continue;
			}
			snprintf(id, sizeof id, "topic.wake.%s.%d", mech, wake_n[k]);
			r = &tb->res[t_find(id)];
			fprintf(f, " %s", r->state == ST_OK
					      ? t_fmt(b[0], 32, t_median_of(r->aux, rounds),
						      "%9.1f", 1e3)
					      : "        -");
		}
		fputc('\n', f);
	}
	for (i = 0; i < (int)TB_NCASES; i++)
		if (tb_cases[i].kind == TB_WAKE && tb->res[i].state != ST_OK &&
		    tb->res[i].state != ST_SKIPPED)
			fprintf(f, "  %s: %s: %s\n", tb_cases[i].id, shmkit__bench_state_name(tb->res[i].state),
				tb->res[i].why);
	fprintf(f, "  (one message at a time, published once every subscriber has taken the "
		   "last and waited\n   %d µs; the median publish call; lossy mode)\n\n",
		TB_SETTLE_NS / 1000);

	fprintf(f, "Topic targets: the median of the per-round ratios, and their quartiles\n");
	for (size_t k = 0; k < TB_NACCEPTS; k++) {
		const struct accept *a = &tb_accepts[k];
		int used, an = t_find(a->num), ad = t_find(a->den);
		double v = t_ratio(tb, a->num, a->den, &used);
		const char *vd = shmkit__bench_verdict(a, v);
		miss += !strcmp(vd, "MISS");
		skip += !strcmp(vd, "SKIP");
		/* three decimals below 10: a ratio beside its bound must show which side */
		if (isfinite(v) && v < 10)
			snprintf(b[0], 32, "%6.3f", v);
		else
			shmkit__bench_fmt_ratio(b[0], 32, v);
		fprintf(f, "  %s  %-42s %s %5.2f  measured %s  (quartiles %s %s; %d rounds)\n", vd,
			a->what, a->le ? "<=" : ">=", a->bound, b[0],
			shmkit__bench_fmt_ratio(b[1], 32, t_ratio_q(tb, an, ad, 0.25, NULL)),
			shmkit__bench_fmt_ratio(b[2], 32, t_ratio_q(tb, an, ad, 0.75, NULL)), used);
	}
	fprintf(f, "%s\n",
		miss   ? "Some topic targets are missed."
		: skip ? "Some topic targets could not be measured."
		       : "All topic targets are met.");
}

void shmkit__bench_topic_print(FILE *f, const struct tbench *tb, int json, int alone)
{
	if (!tb || !tb->ran) {
		/* nothing selected: JSON says so; a table says so when it is alone */
		if (json && alone)
			fprintf(f, "{\"tool\": \"shmkit bench\", \"topic\": null}\n");
		else if (json)
			fputs("null", f);
		else if (alone)
			fprintf(f, "shmkit bench --topic: no topic case selected%s%s\n",
				tb && tb->cfg.only ? " by --only " : "",
				tb && tb->cfg.only ? tb->cfg.only : "");
		return;
	}
	if (alone && json) {
		/* --topic --json: the machine beside the section, as one object */
		fprintf(f, "{\n  \"tool\": \"shmkit bench\",\n  \"version\": ");
		shmkit__json_str(f, shmkit_version_string());
		fprintf(f, ",\n  \"machine\": {\"cpu\": ");
		shmkit__json_str(f, tb->cfg.machine);
		fprintf(f, ", \"nproc\": %ld, \"kernel\": ", tb->cfg.nproc);
		shmkit__json_str(f, tb->cfg.kernel);
		fprintf(f, ", \"nice\": %d},\n  \"config\": {\"rounds\": %d, \"trial_ms\": %d, "
			   "\"quick\": %s},\n  \"topic\": ",
			tb->cfg.nice, tb->cfg.rounds, tb->cfg.trial_ms,
			tb->cfg.quick ? "true" : "false");
		t_print_json(f, tb);
		fprintf(f, "\n}\n");
	} else if (json) {
		t_print_json(f, tb);
	} else {
		if (alone)
			fprintf(f, "shmkit bench --topic (shmkit %s)\nmachine: %s; nproc %ld; %s; "
				   "nice %d\n",
				shmkit_version_string(), tb->cfg.machine, tb->cfg.nproc,
				tb->cfg.kernel, tb->cfg.nice);
		t_print_table(f, tb);
	}
}
