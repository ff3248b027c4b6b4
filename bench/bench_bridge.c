/* shmkit bench --bridge (issue 12): a topic carried from "host A" to "host B" by two
 * `shmkit bridge` processes over NATS, against a plain nats.c publisher and subscriber
 * doing the same work on the same servers. Built only where libnats is found.
 *
 * Why it is built this way:
 * - Deployment as users deploy it: two nats-servers clustered on random loopback ports
 *   (host A's clients connect to one, host B's to the other), and one `shmkit bridge`
 *   process per host: this very binary, executed with options as its user would run it.
 *   Each host has its own segment-name prefix, so the two sides share no memory.
 * - The two applications are two threads of this process: the main thread is host A's
 *   (it publishes and times), one long-lived thread is host B's (it answers pings and
 *   counts what arrives). Each thread opens its own topic handles, as a handle belongs
 *   to the thread that moves data with it. The same two threads drive the nats.c
 *   baseline through two connections, one per server.
 * - The baseline does the same work as the bridge, and that includes when it writes:
 *   the bridge writes what it forwarded as soon as its out topics run dry
 *   (flush_idle() in src/bridge/bridge.c: natsConnection_FlushTimeout when nats.c
 *   holds unwritten bytes) instead of waiting for nats.c's flusher, which writes on
 *   whole milliseconds of the wall clock. The judged nats.c path flushes the same way
 *   whenever it has nothing more to send right now (bb_idle()): after each ping and
 *   each pong, when its window is full and at a stream's end. Against a baseline that
 *   waited for the tick the bridge's round trip looked half of nats.c's.
 * - A third path, nats.c sending and reading the bridge's two headers as the bridge
 *   does (and flushing as it does), splits the bridge's ratio into what nats.c's
 *   headers cost and what the topic hops and the bridge processes cost; the CPU time
 *   of every process per message says where the time goes. A fourth path, plain
 *   nats.c with its default tick and no flush, is nats.c as its users run it by
 *   default: printed for context, never judged.
 * - Every case is a short trial once per round, the four paths of one kind and size
 *   next to each other (their order rotates from round to round); a ratio is taken
 *   between two trials of one round, and the reported ratio is the median of the
 *   per-round ratios, as in the other sections. Only ratios are claims.
 * - Round trip: A sends a ping of the message's size and waits for its answer from B
 *   (A → B and back, both ways through both bridges, or both ways plain nats.c); each
 *   round trip is timed; a trial's figure is its median, the percentiles pool every
 *   round trip of every round.
 * - Throughput: A publishes as fast as a window lets it: at most W messages in flight
 *   (published by A and not yet seen by B), W the same for every path (a window of
 *   about 4 MiB, at most 4096 messages). The topic is lossy and NATS drops for a slow
 *   consumer, so a publisher that is not paced measures how much is lost; the window is
 *   the application's flow control and the same for both. B counts the messages that
 *   arrive between the end of a warm-up (an eighth of the trial) and the trial's end;
 *   losses (gaps in the sequence numbers, and what never arrived) are counted and
 *   printed beside the figure, never hidden.
 * - Honesty: every message carries its sequence number every 64 KiB and in its last 8
 *   bytes, which B checks; every path moves the same bytes, one message at a time.
 */
#include "bench.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

#include <nats/nats.h>
#include <shmkit/bridge.h>

#define BB_SIZES 2
static const size_t bb_size[BB_SIZES] = {64, 65536};
#define BB_WINDOW_BYTES (4 * MIB)
#define BB_WINDOW_MAX 4096
#define BB_RTT_TIMEOUT_NS (500 * SHMKIT_MSEC) /* a ping not answered by then is lost */
#define BB_DRAIN_NS (500 * SHMKIT_MSEC)	      /* after a throughput trial: stragglers */
#define BB_STALL_NS (200 * SHMKIT_MSEC)	      /* a full window this long: its rest is lost */
#define BB_START_S 15			      /* servers, routes, bridges: this long at most */
#define BB_CAP_SMALL MIB		      /* topic rings: pings, 64 B stream */
#define BB_CAP_LARGE (16 * MIB)		      /* 64 KiB stream: 4 windows */

enum bb_kind { BK_RTT, BK_TPUT };
/* BP_NATS: plain nats.c, flushing as the bridge does (bb_idle()): the judged baseline.
 * BP_NATS_HDR: the same doing what the bridge does on the wire, its two headers set on
 * every message sent and its origin header read from every message received, but no
 * topic and no process in between: bridge ÷ this is what the topic hops and the bridge
 * processes cost, this ÷ BP_NATS what nats.c's headers cost.
 * BP_NATS_TICK: plain nats.c left to its flusher's 1 ms tick (default options, no
 * flush): context only, how nats.c runs when its user does not flush. */
enum bb_path { BP_BRIDGE, BP_NATS, BP_NATS_HDR, BP_NATS_TICK };
#define BB_PATHS 4
static const char *const bb_hdr_origin[2] = {"bench-a", "bench-b"};

struct bb_case {
	const char *id;
	enum bb_kind kind;
	enum bb_path path;
	int sz; /* index into bb_size */
};

/* Groups: the four paths of one kind and size next to each other, in this order
 * (bb_path's) at index BB_PATHS * k + path. */
static const struct bb_case bb_cases[] = {
    {"bridge.rtt.bridge.64", BK_RTT, BP_BRIDGE, 0},
    {"bridge.rtt.nats.64", BK_RTT, BP_NATS, 0},
    {"bridge.rtt.nats_hdr.64", BK_RTT, BP_NATS_HDR, 0},
    {"bridge.rtt.nats_tick.64", BK_RTT, BP_NATS_TICK, 0},
    {"bridge.rtt.bridge.65536", BK_RTT, BP_BRIDGE, 1},
    {"bridge.rtt.nats.65536", BK_RTT, BP_NATS, 1},
    {"bridge.rtt.nats_hdr.65536", BK_RTT, BP_NATS_HDR, 1},
    {"bridge.rtt.nats_tick.65536", BK_RTT, BP_NATS_TICK, 1},
    {"bridge.tput.bridge.64", BK_TPUT, BP_BRIDGE, 0},
    {"bridge.tput.nats.64", BK_TPUT, BP_NATS, 0},
    {"bridge.tput.nats_hdr.64", BK_TPUT, BP_NATS_HDR, 0},
    {"bridge.tput.nats_tick.64", BK_TPUT, BP_NATS_TICK, 0},
    {"bridge.tput.bridge.65536", BK_TPUT, BP_BRIDGE, 1},
    {"bridge.tput.nats.65536", BK_TPUT, BP_NATS, 1},
    {"bridge.tput.nats_hdr.65536", BK_TPUT, BP_NATS_HDR, 1},
    {"bridge.tput.nats_tick.65536", BK_TPUT, BP_NATS_TICK, 1},
};
_Static_assert(sizeof bb_cases / sizeof bb_cases[0] % BB_PATHS == 0, "whole groups");
#define BB_NCASES (sizeof bb_cases / sizeof bb_cases[0])

/* The denominator is plain nats.c flushing as the bridge does (BP_NATS): the strict
 * comparison, both sides writing a message as soon as they have nothing more to send. */
/* clang-format off */
static const struct accept bb_accepts[] = {
	{"bridge_rtt64_vs_nats", "bridge RTT / nats.c flushing alike, 64 B",
	 "bridge.rtt.bridge.64", "bridge.rtt.nats.64", 1, 1.10, 0},
	{"bridge_rtt64k_vs_nats", "bridge RTT / nats.c flushing alike, 64 KiB",
	 "bridge.rtt.bridge.65536", "bridge.rtt.nats.65536", 1, 1.10, 0},
	{"bridge_tput64_vs_nats", "bridge msgs/s / nats.c flushing alike, 64 B",
	 "bridge.tput.bridge.64", "bridge.tput.nats.64", 0, 0.80, 0},
	{"bridge_tput64k_vs_nats", "bridge msgs/s / nats.c flushing alike, 64 KiB",
	 "bridge.tput.bridge.65536", "bridge.tput.nats.65536", 0, 0.80, 0},
};
/* clang-format on */
#define BB_NACCEPTS (sizeof bb_accepts / sizeof bb_accepts[0])

struct bb_res {
	double *val;   /* per round: median round trip ns, or msgs/s; NAN: none */
	double *samp;  /* round trips of every round, ns (K_RTT) */
	size_t nsamp, capsamp;
	uint64_t msgs; /* round trips timed, or messages counted */
	uint64_t lost; /* pings unanswered, or messages that never arrived */
	uint64_t stalls; /* throughput: windows that never drained */
	/* CPU time of each process during this case's trials (BB_CPU_*), ns, and the
	 * messages moved meanwhile (every round trip, every message B received) */
	double cpu[5];
	uint64_t moved;
	enum state state;
	char why[200];
};

/* One trial, shared by A (main thread) and B. Plain fields are written by A before it
 * hands the trial to B (under mu) and read by B after; B's results are written by B
 * before it reports done (under mu) and read by A after. The atomics move during it. */
struct bb_trial {
	const struct bb_case *c;
	int64_t t1, t2;		 /* throughput: B counts arrivals in [t1, t2) */
	uint64_t first;		 /* the trial's first sequence number */
	_Atomic uint64_t acked;	 /* B: highest sequence number received */
	_Atomic uint64_t need;	 /* A: waits until acked >= need (0: not waiting) */
	_Atomic uint64_t last;	 /* A: the last one published, valid once stop is set */
	_Atomic int stop;	 /* A: the trial is over (B drains, then reports) */
	uint64_t counted, bad, gaps, received; /* B's results */
	int err;
	char why[160];
};

struct bb {
	const struct cfg *cfg;
	char dir[64];		 /* temporary directory: logs */
	pid_t srv[2], brg[2];	 /* servers, bridges (0: none) */
	int port[2], rport;	 /* client ports, A's route port */
	char url[2][64];
	char tag[32];		 /* bb<pid>: names and subjects */
	char host[2][40];	 /* bridge host ids */
	char tname[2][4][64];	 /* [host][ping, pong, t64, t65536] */
	char subj[BB_PATHS][4][96]; /* [path][ping, pong, t64, t65536] */
	/* host A's (main thread's) handles */
	shmkit_topic *a_ping, *a_pong, *a_t[BB_SIZES];
	natsConnection *nc[2];
	natsSubscription *a_sub_pong[BB_PATHS], *b_sub_ping[BB_PATHS]; /* [BP_NATS*] */
	natsSubscription *b_sub_t[BB_PATHS][BB_SIZES];
	/* host B's thread */
	pthread_t bth;
	int bth_up;
	pthread_mutex_t mu;
	pthread_cond_t cv;	 /* B: new command; A: B done or ready */
	pthread_cond_t win;	 /* A waits for its window here */
	int cmd;		 /* A → B: 0 none, 1 run trial, 2 quit */
	int cmd_gen, done_gen;	 /* A bumps cmd_gen; B sets done_gen to it when done */
	int b_ready;		 /* B: 1 handles open, -errno failed */
	struct bb_trial *tr;
	unsigned char *abuf;	 /* A's message buffer */
	uint64_t seq;		 /* A: last sequence number used (all trials) */
	struct bb_res res[BB_NCASES];
	char nats_ver[64];
	double load_before;
};

static uint64_t bb_window(size_t size)
{
	uint64_t w = BB_WINDOW_BYTES / size;
	return w > BB_WINDOW_MAX ? BB_WINDOW_MAX : w < 16 ? 16 : w;
}

/* --- child processes ------------------------------------------------------------- */

/* Starts argv with stdout and stderr into log; dies with us (PR_SET_PDEATHSIG), so a
 * killed benchmark leaves no server or bridge behind. Returns the pid or -errno. */
static pid_t bb_spawn(const char *path, char *const argv[], const char *log)
{
	pid_t parent = getpid();
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	pid_t p = fork();
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, STDIN_FILENO);
		setpgid(0, 0); /* a terminal's ^C goes to us; we stop them in order */
		execv(path, argv);
		/* only async-signal-safe calls between fork and exec: B's thread runs */
		static const char msg[] = "shmkit bench --bridge: exec failed\n";
		if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0)
			_exit(126);
		_exit(127);
	}
	int e = errno;
	close(fd);
	return p < 0 ? -e : p;
}

/* SIGTERM, up to 3 s to exit, then SIGKILL; always reaped. */
static void bb_stop_child(pid_t *p)
{
	if (*p <= 0)
		return;
	kill(*p, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(*p, NULL, WNOHANG) == *p) {
			*p = 0;
			return;
		}
		usleep(10000);
	}
	kill(*p, SIGKILL);
	waitpid(*p, NULL, 0);
	*p = 0;
}

/* nats-server on PATH, into out. */
static int bb_find_server(char *out, size_t n)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len && snprintf(out, n, "%.*s/nats-server", (int)len, path) < (int)n &&
		    access(out, X_OK) == 0)
			return 0;
		path += len + (path[len] == ':');
	}
	return -ENOENT;
}

/* The number after "text" in a log file, or -1. */
static int bb_log_port(const char *log, const char *text)
{
	char line[512];
	int port = -1;
	FILE *f = fopen(log, "r");
	while (f && port < 0 && fgets(line, sizeof line, f)) {
		char *at = strstr(line, text);
		if (at)
			port = atoi(at + strlen(text));
	}
	if (f)
		fclose(f);
	return port;
}

static int bb_log_has(const char *log, const char *text)
{
	return bb_log_port(log, text) >= 0;
}

static void bb_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Two servers, clustered: A listens for routes, B routes to A. */
static int bb_start_servers(struct bb *b, const char *server, char *err, size_t n)
{
	char log[2][128], cluster[96], routes[96], cname[64];
	snprintf(cname, sizeof cname, "shmkit-%s", b->tag);
	for (int h = 0; h < 2; h++) {
		snprintf(log[h], sizeof log[h], "%s/nats-%c.log", b->dir, 'a' + h);
		if (h == 1)
			snprintf(routes, sizeof routes, "nats://127.0.0.1:%d", b->rport);
		snprintf(cluster, sizeof cluster, "nats://127.0.0.1:-1");
		char *argv[] = {(char *)"nats-server", (char *)"-a", (char *)"127.0.0.1",
				(char *)"-p", (char *)"-1", (char *)"--cluster_name", cname,
				(char *)"--cluster", cluster, h ? (char *)"--routes" : NULL,
				routes, NULL};
		b->srv[h] = bb_spawn(server, argv, log[h]);
		if (b->srv[h] < 0) {
			snprintf(err, n, "starting %.200s: %s", server, strerror((int)-b->srv[h]));
			b->srv[h] = 0;
			return -1;
		}
		for (int i = 0; i < BB_START_S * 100; i++) {
			b->port[h] = bb_log_port(log[h], "Listening for client connections on 127.0.0.1:");
			if (!h)
				b->rport = bb_log_port(log[h], "Listening for route connections on 127.0.0.1:");
			if ((b->port[h] > 0 && (h || b->rport > 0)) || shmkit__stop ||
			    waitpid(b->srv[h], NULL, WNOHANG) == b->srv[h])
				break;
			bb_sleep_ms(10);
		}
		if (b->port[h] <= 0 || (!h && b->rport <= 0)) {
			snprintf(err, n, "nats-server %c did not start (log: %s)", 'A' + h, log[h]);
			return -1;
		}
		snprintf(b->url[h], sizeof b->url[h], "nats://127.0.0.1:%d", b->port[h]);
	}
	for (int i = 0; i < BB_START_S * 100 && !shmkit__stop; i++) {
		if (bb_log_has(log[0], "Route connection created") &&
		    bb_log_has(log[1], "Route connection created"))
			return 0;
		bb_sleep_ms(10);
	}
	snprintf(err, n, "the two nats-servers did not form a cluster (logs in %s)", b->dir);
	return -1;
}

/* `shmkit bridge` for host h, as its user would run it: A carries ping and the two
 * streams out and pong in; B the reverse. */
static int bb_start_bridges(struct bb *b, char *err, size_t n)
{
	char map[4][160], log[128];
	for (int h = 0; h < 2; h++) {
		for (int k = 0; k < 4; k++) {
			int out = (k == 1) == (h == 1); /* A: ping, t* out; B: pong out */
			if (out)
				snprintf(map[k], sizeof map[k], "%s=%s", b->tname[h][k], b->subj[0][k]);
			else
				snprintf(map[k], sizeof map[k], "%s=%s", b->subj[0][k], b->tname[h][k]);
		}
		const char *o[4];
		for (int k = 0; k < 4; k++)
			o[k] = ((k == 1) == (h == 1)) ? "--topic-out" : "--topic-in";
		char *argv[] = {(char *)"shmkit", (char *)"bridge", (char *)"--server", b->url[h],
				(char *)"--host-id", b->host[h],
				(char *)o[0], map[0], (char *)o[1], map[1],
				(char *)o[2], map[2], (char *)o[3], map[3], NULL};
		snprintf(log, sizeof log, "%s/bridge-%c.log", b->dir, 'a' + h);
		b->brg[h] = bb_spawn("/proc/self/exe", argv, log);
		if (b->brg[h] < 0) {
			snprintf(err, n, "starting shmkit bridge: %s", strerror((int)-b->brg[h]));
			b->brg[h] = 0;
			return -1;
		}
	}
	/* Connected: the status segment's first line says so. */
	for (int h = 0; h < 2; h++) {
		int ok = 0;
		for (int i = 0; i < BB_START_S * 100 && !ok && !shmkit__stop; i++) {
			char st[4096];
			int conn = 0;
			if (shmkit_bridge_status_read(b->host[h], st, sizeof st) > 0 &&
			    sscanf(st, "shmkit-bridge %*d %*s %d", &conn) == 1 && conn == 1)
				ok = 1;
			else if (waitpid(b->brg[h], NULL, WNOHANG) == b->brg[h]) {
				b->brg[h] = 0;
				break;
			} else
				bb_sleep_ms(10);
		}
		if (!ok) {
			snprintf(err, n, "bridge %c did not connect (log: %s/bridge-%c.log)", 'A' + h,
				 b->dir, 'a' + h);
			return -1;
		}
	}
	return 0;
}

/* --- host B's thread ------------------------------------------------------------- */

/* BP_NATS_HDR: publish as the bridge does, with its two headers. */
static int bb_publish_hdr(natsConnection *nc, const char *subj, const char *origin,
			  uint64_t seq, const void *p, size_t n)
{
	char sq[24];
	natsMsg *m = NULL;
	snprintf(sq, sizeof sq, "%" PRIu64, seq);
	natsStatus s = natsMsg_Create(&m, subj, NULL, p, (int)n);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Shmkit-Origin", origin);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Shmkit-Seq", sq);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(nc, m);
	natsMsg_Destroy(m);
	return s == NATS_OK ? 0 : -EIO;
}

/* BP_NATS_HDR: whether a message came from origin, read as the bridge reads it. */
static int bb_from(natsMsg *m, const char *origin)
{
	const char *o = NULL;
	return natsMsgHeader_Get(m, "Shmkit-Origin", &o) == NATS_OK && o && !strcmp(o, origin);
}

/* A nats.c path has nothing more to send right now: the judged paths write what nats.c
 * holds as the bridge does when its out topics run dry (flush_idle() in
 * src/bridge/bridge.c): FlushTimeout, and only when nats.c holds unwritten bytes; its
 * PONG wait (at most 1 ms) paces the sender as it paces the bridge. BP_NATS_TICK
 * leaves them to nats.c's flusher, which writes on the next whole millisecond. */
static void bb_idle(natsConnection *nc, enum bb_path path)
{
	if (path != BP_NATS_TICK && natsConnection_Buffered(nc) > 0)
		(void)natsConnection_FlushTimeout(nc, 1); /* written either way; the PONG only paces */
}

static void bb_ack(struct bb *b, struct bb_trial *tr, uint64_t seq)
{
	if (seq <= atomic_load(&tr->acked))
		return;
	atomic_store(&tr->acked, seq);
	uint64_t need = atomic_load(&tr->need);
	if (need && seq >= need) {
		pthread_mutex_lock(&b->mu);
		pthread_cond_signal(&b->win);
		pthread_mutex_unlock(&b->mu);
	}
}

/* One message arrived at B (throughput). */
static void bb_arrived(struct bb *b, struct bb_trial *tr, const unsigned char *p, size_t n,
		       uint64_t *sum)
{
	uint64_t seq;
	if (n != bb_size[tr->c->sz] || n < sizeof seq) {
		tr->bad++;
		return;
	}
	memcpy(&seq, p, sizeof seq);
	if (!check_stamps(p, n, seq, sum)) {
		tr->bad++;
		return;
	}
	uint64_t acked = atomic_load(&tr->acked);
	if (seq < tr->first || seq <= (acked ? acked : tr->first - 1)) {
		if (seq >= tr->first)
			tr->bad++; /* duplicate or out of order within the trial */
		return;	   /* a straggler from an earlier trial */
	}
	uint64_t prev = acked >= tr->first ? acked : tr->first - 1;
	tr->gaps += seq - prev - 1;
	tr->received++;
	int64_t now = now_ns();
	if (now >= tr->t1 && now < tr->t2)
		tr->counted++;
	bb_ack(b, tr, seq);
}

/* B's side of one trial: answer pings, or count a stream, until A says stop (and,
 * for a stream, until the last message or the drain time). */
static void bb_serve(struct bb *b, struct bb_trial *tr, shmkit_topic *ping, shmkit_topic *pong,
		     shmkit_topic **t, unsigned char *buf, size_t cap)
{
	const struct bb_case *c = tr->c;
	uint64_t sum = 0;
	int64_t drain_end = 0;
	for (;;) {
		const unsigned char *p = NULL;
		size_t n = 0;
		natsMsg *m = NULL;
		int stop = atomic_load(&tr->stop);
		if (stop && c->kind == BK_RTT)
			break;
		if (stop) {
			uint64_t last = atomic_load(&tr->last);
			if (!drain_end)
				drain_end = now_ns() + BB_DRAIN_NS;
			if (atomic_load(&tr->acked) >= last || now_ns() >= drain_end)
				break;
		}
		if (c->path == BP_BRIDGE) {
			shmkit_topic *in = c->kind == BK_RTT ? ping : t[c->sz];
			ssize_t r = shmkit_topic_receive(in, buf, cap, 10 * SHMKIT_MSEC);
			if (r == -EAGAIN || r == -ETIMEDOUT || r == -EOVERFLOW || r == 0)
				continue; /* losses show as gaps in the sequence numbers */
			if (r < 0) {
				tr->err = (int)r;
				snprintf(tr->why, sizeof tr->why, "B: receive: %s",
					 shmkit_strerror((int)r));
				break;
			}
			p = buf;
			n = (size_t)r;
		} else {
			natsSubscription *s = c->kind == BK_RTT ? b->b_sub_ping[c->path]
							       : b->b_sub_t[c->path][c->sz];
			natsStatus st = natsSubscription_NextMsg(&m, s, 10);
			if (st == NATS_TIMEOUT || st == NATS_SLOW_CONSUMER)
				continue;
			if (st != NATS_OK) {
				tr->err = -EIO;
				snprintf(tr->why, sizeof tr->why, "B: nats.c NextMsg: %s",
					 natsStatus_GetText(st));
				break;
			}
			p = (const unsigned char *)natsMsg_GetData(m);
			n = (size_t)natsMsg_GetDataLength(m);
			if (c->path == BP_NATS_HDR && bb_from(m, bb_hdr_origin[1])) {
				natsMsg_Destroy(m); /* never: nothing of B's is sent here */
				continue;
			}
		}
		if (c->kind == BK_RTT) {
			int r = 0;
			uint64_t seq = 0;
			if (n >= sizeof seq)
				memcpy(&seq, p, sizeof seq);
			if (c->path == BP_BRIDGE)
				r = shmkit_topic_publish(pong, p, n, 0);
			else if (c->path == BP_NATS_HDR)
				r = bb_publish_hdr(b->nc[1], b->subj[c->path][1], bb_hdr_origin[1], seq,
						   p, n);
			else if (natsConnection_Publish(b->nc[1], b->subj[c->path][1], p, (int)n) !=
				 NATS_OK)
				r = -EIO;
			if (r < 0)
				tr->bad++; /* A times the ping out and counts it lost */
			else if (c->path != BP_BRIDGE)
				bb_idle(b->nc[1], c->path); /* the pong is all B has to send */
		} else {
			bb_arrived(b, tr, p, n, &sum);
		}
		natsMsg_Destroy(m);
	}
	if (sum == 42) /* keeps the checksum's reads observable */
		fputc('\0', stderr);
}

static void *bb_host_b(void *arg)
{
	struct bb *b = arg;
	shmkit_topic *ping = NULL, *pong = NULL, *t[BB_SIZES] = {NULL};
	size_t cap = bb_size[BB_SIZES - 1];
	unsigned char *buf = malloc(cap);
	int r = buf ? 0 : -ENOMEM;
	if (!r)
		r = shmkit_topic_open(b->tname[1][0], SHMKIT_TOPIC_SUBSCRIBER, BB_CAP_SMALL, 0600,
				      SHMKIT_SEG_CREATE, &ping);
	if (!r)
		r = shmkit_topic_open(b->tname[1][1], SHMKIT_TOPIC_PUBLISHER, BB_CAP_SMALL, 0600,
				      SHMKIT_SEG_CREATE, &pong);
	for (int k = 0; k < BB_SIZES && !r; k++)
		r = shmkit_topic_open(b->tname[1][2 + k], SHMKIT_TOPIC_SUBSCRIBER,
				      k ? BB_CAP_LARGE : BB_CAP_SMALL, 0600, SHMKIT_SEG_CREATE, &t[k]);
	pthread_mutex_lock(&b->mu);
	b->b_ready = r ? r : 1;
	pthread_cond_broadcast(&b->cv);
	while (!r) {
		int gen = b->done_gen;
		while (b->cmd_gen == gen)
			pthread_cond_wait(&b->cv, &b->mu);
		if (b->cmd == 2)
			break;
		struct bb_trial *tr = b->tr;
		pthread_mutex_unlock(&b->mu);
		bb_serve(b, tr, ping, pong, t, buf, cap);
		pthread_mutex_lock(&b->mu);
		b->done_gen = b->cmd_gen;
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	shmkit_topic_close(ping);
	shmkit_topic_close(pong);
	for (int k = 0; k < BB_SIZES; k++)
		shmkit_topic_close(t[k]);
	free(buf);
	return NULL;
}

/* A hands a trial to B. */
static void bb_b_start(struct bb *b, struct bb_trial *tr)
{
	pthread_mutex_lock(&b->mu);
	b->tr = tr;
	b->cmd = 1;
	b->cmd_gen++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void bb_b_wait(struct bb *b)
{
	pthread_mutex_lock(&b->mu);
	while (b->done_gen != b->cmd_gen)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
}

/* --- host A: trials -------------------------------------------------------------- */

static int bb_send(struct bb *b, const struct bb_case *c, size_t size)
{
	if (c->path == BP_BRIDGE) {
		shmkit_topic *t = c->kind == BK_RTT ? b->a_ping : b->a_t[c->sz];
		return shmkit_topic_publish(t, b->abuf, size, 0);
	}
	int k = c->kind == BK_RTT ? 0 : 2 + c->sz;
	if (c->path == BP_NATS_HDR) {
		uint64_t seq;
		memcpy(&seq, b->abuf, sizeof seq);
		return bb_publish_hdr(b->nc[0], b->subj[c->path][k], bb_hdr_origin[0], seq,
				      b->abuf, size);
	}
	return natsConnection_Publish(b->nc[0], b->subj[c->path][k], b->abuf, (int)size) == NATS_OK
		   ? 0
		   : -EIO;
}

/* The answer to ping seq, or -ETIMEDOUT; stale answers are skipped. */
static int bb_await_pong(struct bb *b, const struct bb_case *c, uint64_t seq, size_t size,
			 int64_t deadline)
{
	static unsigned char rbuf[65536];
	uint64_t sum = 0;
	for (;;) {
		int64_t left = deadline - now_ns();
		const unsigned char *p;
		size_t n;
		natsMsg *m = NULL;
		if (left <= 0)
			return -ETIMEDOUT;
		if (c->path == BP_BRIDGE) {
			ssize_t r = shmkit_topic_receive(b->a_pong, rbuf, sizeof rbuf, left);
			if (r == -EAGAIN || r == -ETIMEDOUT || r == -EOVERFLOW || r == 0)
				continue;
			if (r < 0)
				return (int)r;
			p = rbuf;
			n = (size_t)r;
		} else {
			int ms = (int)((left + SHMKIT_MSEC - 1) / SHMKIT_MSEC);
			natsStatus st = natsSubscription_NextMsg(&m, b->a_sub_pong[c->path], ms);
			if (st == NATS_TIMEOUT || st == NATS_SLOW_CONSUMER)
				continue;
			if (st != NATS_OK)
				return -EIO;
			p = (const unsigned char *)natsMsg_GetData(m);
			n = (size_t)natsMsg_GetDataLength(m);
			if (c->path == BP_NATS_HDR && bb_from(m, bb_hdr_origin[0])) {
				natsMsg_Destroy(m); /* never: nothing of A's is sent here */
				continue;
			}
		}
		uint64_t got = 0;
		if (n >= sizeof got)
			memcpy(&got, p, sizeof got);
		int ok = n == size && got == seq && check_stamps(p, n, seq, &sum);
		natsMsg_Destroy(m);
		if (ok)
			return 0;
		if (got == seq)
			return -EPROTO; /* the right ping, torn or resized */
	}
}

static int bb_add_sample(struct bb_res *r, double v)
{
	if (r->nsamp == r->capsamp) {
		size_t cap = r->capsamp ? 2 * r->capsamp : 4096;
		double *p = realloc(r->samp, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		r->samp = p;
		r->capsamp = cap;
	}
	r->samp[r->nsamp++] = v;
	return 0;
}

static int bb_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n) (sorted in place). */
static double bb_quantile(double *v, size_t n, double q)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof *v, bb_cmp);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* CPU time, ns, of every thread of each process that moves the messages: this
 * process (both applications, and their nats.c threads in the nats.c cases), the two
 * bridges, the two servers. NAN for one that cannot be read. */
enum { BB_CPU_APPS, BB_CPU_BRIDGE_A, BB_CPU_BRIDGE_B, BB_CPU_SERVER_A, BB_CPU_SERVER_B };
static const char *const bb_cpu_name[5] = {"apps", "bridge A", "bridge B", "server A",
					   "server B"};

static void bb_cpu(const struct bb *b, double out[5])
{
	pid_t who[5] = {0, b->brg[0], b->brg[1], b->srv[0], b->srv[1]};
	for (int i = 0; i < 5; i++) {
		clockid_t id = CLOCK_PROCESS_CPUTIME_ID;
		struct timespec ts;
		out[i] = NAN;
		if (i && (who[i] <= 0 || clock_getcpuclockid(who[i], &id)))
			continue;
		if (clock_gettime(id, &ts) == 0)
			out[i] = (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
	}
}

static void bb_cpu_add(struct bb_res *r, const double before[5], const double after[5],
		       uint64_t moved)
{
	for (int i = 0; i < 5; i++)
		r->cpu[i] += after[i] - before[i];
	r->moved += moved;
}

static int bb_trial_rtt(struct bb *b, const struct bb_case *c, struct bb_res *res,
			int64_t trial_ns, int round)
{
	size_t size = bb_size[c->sz];
	struct bb_trial tr = {.c = c};
	size_t from = res->nsamp;
	int rc = 0;
	uint64_t trips = 0;
	double cpu0[5], cpu1[5];
	bb_cpu(b, cpu0);
	bb_b_start(b, &tr);
	int64_t start = now_ns(), warm = start + trial_ns / 8, end = start + trial_ns;
	for (int64_t now = start; now < end && !shmkit__stop; now = now_ns()) {
		uint64_t seq = ++b->seq;
		stamp(b->abuf, size, seq);
		int64_t t0 = now_ns();
		int r = bb_send(b, c, size);
		if (!r && c->path != BP_BRIDGE)
			bb_idle(b->nc[0], c->path); /* the ping is all A has to send */
		if (!r)
			r = bb_await_pong(b, c, seq, size, t0 + BB_RTT_TIMEOUT_NS);
		int64_t t1 = now_ns();
		if (r == -ETIMEDOUT || r == -EAGAIN) {
			res->lost++;
			continue;
		}
		trips++;
		if (r < 0) {
			snprintf(res->why, sizeof res->why, "A: %s", shmkit_strerror(r));
			rc = -1;
			break;
		}
		if (t0 >= warm && bb_add_sample(res, (double)(t1 - t0))) {
			rc = -1;
			break;
		}
	}
	atomic_store(&tr.stop, 1);
	bb_b_wait(b);
	bb_cpu(b, cpu1);
	bb_cpu_add(res, cpu0, cpu1, trips);
	if (tr.err && !rc) {
		snprintf(res->why, sizeof res->why, "%s", tr.why);
		rc = -1;
	}
	size_t n = res->nsamp - from;
	res->msgs += n;
	if (!rc && n) {
		double *tmp = malloc(n * sizeof *tmp);
		if (!tmp)
			return -1;
		memcpy(tmp, res->samp + from, n * sizeof *tmp);
		res->val[round] = bb_quantile(tmp, n, 0.5);
		free(tmp);
	}
	return rc;
}

/* A waits until B acked need, the trial's end, or a stall. Returns 1 on a stall. */
static int bb_wait_window(struct bb *b, struct bb_trial *tr, uint64_t need, int64_t end)
{
	int64_t stall = now_ns() + BB_STALL_NS;
	int stalled = 0;
	pthread_mutex_lock(&b->mu);
	atomic_store(&tr->need, need);
	while (atomic_load(&tr->acked) < need && !shmkit__stop) {
		int64_t now = now_ns();
		if (now >= end)
			break;
		if (now >= stall) {
			stalled = 1;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t to = (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec + 5 * SHMKIT_MSEC;
		ts.tv_sec = to / SHMKIT_SEC;
		ts.tv_nsec = to % SHMKIT_SEC;
		pthread_cond_timedwait(&b->win, &b->mu, &ts);
	}
	atomic_store(&tr->need, 0);
	pthread_mutex_unlock(&b->mu);
	return stalled;
}

/* Publishes for trial_ns within the window; probe: one message at a time until B has
 * seen one (the route's interest has spread), at most until end. */
static int bb_trial_tput(struct bb *b, const struct bb_case *c, struct bb_res *res,
			 int64_t trial_ns, int round, int probe)
{
	size_t size = bb_size[c->sz];
	uint64_t w = probe ? 1 : bb_window(size);
	struct bb_trial tr = {.c = c};
	int rc = 0;
	int64_t start = now_ns();
	tr.first = b->seq + 1;
	tr.t1 = start + trial_ns / 8;
	tr.t2 = start + trial_ns;
	uint64_t seq = tr.first, floor = tr.first - 1;
	double cpu0[5], cpu1[5];
	bb_cpu(b, cpu0);
	bb_b_start(b, &tr);
	while (!shmkit__stop && now_ns() < tr.t2) {
		uint64_t acked = atomic_load(&tr.acked);
		if (probe && acked >= tr.first)
			break;
		if (acked < floor)
			acked = floor;
		if (seq - 1 - acked >= w) {
			/* nothing more may be sent until B acks: what nats.c holds goes now */
			if (c->path != BP_BRIDGE)
				bb_idle(b->nc[0], c->path);
			/* until half the window is free: one wake-up per W/2 messages */
			uint64_t need = seq - 1 - w / 2;
			if (bb_wait_window(b, &tr, need, tr.t2) && atomic_load(&tr.acked) < need) {
				if (probe) {
					floor = seq - 1; /* probe again */
					continue;
				}
				res->stalls++;
				floor = seq - 1;
			}
			continue;
		}
		stamp(b->abuf, size, seq);
		int r = bb_send(b, c, size);
		if (r == -EAGAIN)
			continue; /* lossy topic's claim briefly held: try again */
		if (r < 0) {
			snprintf(res->why, sizeof res->why, "A: publish: %s", shmkit_strerror(r));
			rc = -1;
			break;
		}
		seq++;
	}
	if (c->path != BP_BRIDGE)
		bb_idle(b->nc[0], c->path); /* the trial's messages are sent */
	b->seq = seq - 1;
	atomic_store(&tr.last, seq - 1);
	atomic_store(&tr.stop, 1);
	bb_b_wait(b);
	bb_cpu(b, cpu1);
	if (probe)
		return atomic_load(&tr.acked) >= tr.first ? 0 : -1;
	if (tr.err && !rc) {
		snprintf(res->why, sizeof res->why, "%s", tr.why);
		rc = -1;
	}
	if (tr.bad && !rc) {
		snprintf(res->why, sizeof res->why,
			 "B: %" PRIu64 " message(s) torn, resized, duplicated or out of order",
			 tr.bad);
		rc = -1;
	}
	uint64_t acked = atomic_load(&tr.acked), last = seq - 1;
	res->lost += tr.gaps + (last > acked ? last - (acked >= tr.first ? acked : tr.first - 1) : 0);
	res->msgs += tr.counted;
	bb_cpu_add(res, cpu0, cpu1, tr.received);
	if (!rc && tr.t2 > tr.t1)
		res->val[round] = (double)tr.counted / ((double)(tr.t2 - tr.t1) * 1e-9);
	return rc;
}

/* Every path answers once before anything is timed: subscriptions' interest crosses
 * the route a little after they are made. */
static int bb_warm(struct bb *b, char *err, size_t n)
{
	for (size_t i = 0; i < BB_NCASES; i++) {
		const struct bb_case *c = &bb_cases[i];
		struct bb_res *r = &b->res[i];
		int64_t end = now_ns() + (int64_t)BB_START_S * SHMKIT_SEC;
		int ok = 0;
		while (!ok && !shmkit__stop && now_ns() < end) {
			if (c->kind == BK_TPUT) {
				ok = bb_trial_tput(b, c, r, end - now_ns(), 0, 1) == 0;
				continue;
			}
			size_t size = bb_size[c->sz];
			uint64_t seq = ++b->seq;
			struct bb_trial tr = {.c = c};
			bb_b_start(b, &tr);
			stamp(b->abuf, size, seq);
			ok = bb_send(b, c, size) == 0;
			if (ok && c->path != BP_BRIDGE)
				bb_idle(b->nc[0], c->path);
			ok = ok && bb_await_pong(b, c, seq, size, now_ns() + 100 * SHMKIT_MSEC) == 0;
			atomic_store(&tr.stop, 1);
			bb_b_wait(b);
		}
		if (!ok) {
			snprintf(err, n, "%s: no message got through in %d s", c->id, BB_START_S);
			return -1;
		}
		r->lost = r->msgs = r->stalls = r->moved = 0;
		memset(r->cpu, 0, sizeof r->cpu);
		r->why[0] = '\0';
	}
	return 0;
}

/* --- setup, report, cleanup ------------------------------------------------------ */

static int bb_open_a(struct bb *b)
{
	int r = shmkit_topic_open(b->tname[0][0], SHMKIT_TOPIC_PUBLISHER, BB_CAP_SMALL, 0600,
				  SHMKIT_SEG_CREATE, &b->a_ping);
	if (!r)
		r = shmkit_topic_open(b->tname[0][1], SHMKIT_TOPIC_SUBSCRIBER, BB_CAP_SMALL, 0600,
				      SHMKIT_SEG_CREATE, &b->a_pong);
	for (int k = 0; k < BB_SIZES && !r; k++)
		r = shmkit_topic_open(b->tname[0][2 + k], SHMKIT_TOPIC_PUBLISHER,
				      k ? BB_CAP_LARGE : BB_CAP_SMALL, 0600, SHMKIT_SEG_CREATE,
				      &b->a_t[k]);
	return r;
}

static int bb_open_nats(struct bb *b, char *err, size_t n)
{
	natsStatus s = NATS_OK;
	for (int h = 0; h < 2 && s == NATS_OK; h++)
		s = natsConnection_ConnectTo(&b->nc[h], b->url[h]);
	for (int p = BP_NATS; p < BB_PATHS && s == NATS_OK; p++) {
		s = natsConnection_SubscribeSync(&b->a_sub_pong[p], b->nc[0], b->subj[p][1]);
		if (s == NATS_OK)
			s = natsConnection_SubscribeSync(&b->b_sub_ping[p], b->nc[1], b->subj[p][0]);
		for (int k = 0; k < BB_SIZES && s == NATS_OK; k++)
			s = natsConnection_SubscribeSync(&b->b_sub_t[p][k], b->nc[1],
							 b->subj[p][2 + k]);
	}
	for (int h = 0; h < 2 && s == NATS_OK; h++)
		s = natsConnection_Flush(b->nc[h]);
	if (s != NATS_OK) {
		snprintf(err, n, "nats.c: %s", natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

static void bb_cleanup(struct bb *b)
{
	if (b->bth_up) {
		pthread_mutex_lock(&b->mu);
		b->cmd = 2;
		b->cmd_gen++;
		pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
		pthread_join(b->bth, NULL);
	}
	for (int p = 0; p < BB_PATHS; p++) {
		natsSubscription_Destroy(b->a_sub_pong[p]);
		natsSubscription_Destroy(b->b_sub_ping[p]);
		for (int k = 0; k < BB_SIZES; k++)
			natsSubscription_Destroy(b->b_sub_t[p][k]);
	}
	for (int h = 0; h < 2; h++) {
		if (b->nc[h]) {
			natsConnection_Close(b->nc[h]);
			natsConnection_Destroy(b->nc[h]);
		}
	}
	nats_Close();
	shmkit_topic_close(b->a_ping);
	shmkit_topic_close(b->a_pong);
	for (int k = 0; k < BB_SIZES; k++)
		shmkit_topic_close(b->a_t[k]);
	for (int h = 0; h < 2; h++)
		bb_stop_child(&b->brg[h]);
	for (int h = 0; h < 2; h++)
		bb_stop_child(&b->srv[h]);
	/* A bridge that had to be killed left its status segment: remove it. */
	for (int h = 0; h < 2; h++) {
		char name[80];
		snprintf(name, sizeof name, "/shmkit-bridge-%s", b->host[h]);
		shmkit_seg_unlink(name, 0);
		for (int k = 0; k < 4; k++)
			shmkit_seg_unlink(b->tname[h][k], 0);
	}
	if (b->dir[0]) {
		DIR *d = opendir(b->dir);
		struct dirent *e;
		char p[400];
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof p, "%s/%s", b->dir, e->d_name);
			unlink(p);
		}
		if (d)
			closedir(d);
		rmdir(b->dir);
	}
	for (size_t i = 0; i < BB_NCASES; i++) {
		free(b->res[i].val);
		free(b->res[i].samp);
	}
	free(b->abuf);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	pthread_cond_destroy(&b->win);
}

static int bb_find(const char *id)
{
	for (size_t i = 0; i < BB_NCASES; i++)
		if (!strcmp(bb_cases[i].id, id))
			return (int)i;
	return -1;
}

/* Per-round ratios of cases a / b: their q-quantile and how many rounds had both. */
static double bb_ratio_q(const struct bb *b, int a, int d, double q, int *used)
{
	int rounds = b->cfg->rounds, n = 0;
	double v[rounds > 0 ? rounds : 1];
	for (int k = 0; a >= 0 && d >= 0 && k < rounds; k++) {
		double x = b->res[a].val[k], y = b->res[d].val[k];
		if (isfinite(x) && isfinite(y) && y > 0)
			v[n++] = x / y;
	}
	if (used)
		*used = n;
	return bb_quantile(v, (size_t)n, q);
}

static double bb_median_val(const struct bb_res *r, int rounds)
{
	double v[rounds > 0 ? rounds : 1];
	int n = 0;
	for (int k = 0; k < rounds; k++)
		if (isfinite(r->val[k]))
			v[n++] = r->val[k];
	return bb_quantile(v, (size_t)n, 0.5);
}

static const char *bb_label(const struct bb_case *c)
{
	static const char *const l[BB_PATHS] = {
	    [BP_BRIDGE] = "topic → bridge → NATS → bridge → topic",
	    [BP_NATS] = "nats.c publish → NATS → nats.c subscribe",
	    [BP_NATS_HDR] = "  the same with the bridge's headers",
	    [BP_NATS_TICK] = "  plain nats.c on its 1 ms tick, no flush",
	};
	return l[c->path];
}

/* s left-aligned in width columns: printf's width counts bytes, and the labels'
 * arrows and ÷ take three or two. Counts code points (no wide characters here). */
static void bb_put_col(FILE *f, const char *s, int width)
{
	int cols = 0;
	for (const char *p = s; *p; p++)
		cols += ((unsigned char)*p & 0xc0) != 0x80;
	fputs(s, f);
	for (; cols < width; cols++)
		fputc(' ', f);
}

/* The judged baseline (BP_NATS) of case i's group. */
static int bb_den(size_t i)
{
	return (int)(i - i % BB_PATHS) + BP_NATS;
}

/* Dropped counts of a bridge's mappings, summed from its status text. */
static uint64_t bb_bridge_dropped(const char *host)
{
	char st[8192], *line;
	uint64_t sum = 0;
	if (shmkit_bridge_status_read(host, st, sizeof st) <= 0)
		return 0;
	for (line = strchr(st, '\n'); line; line = strchr(line + 1, '\n')) {
		char *d = strstr(line, " dropped ");
		char *nl = strchr(line + 1, '\n');
		if (d && (!nl || d < nl))
			sum += strtoull(d + 9, NULL, 10);
	}
	return sum;
}


/* A table row's label and size, and the reason it has no figures if so: 1 if its
 * figures follow. */
static int bb_row_start(FILE *f, const struct bb_case *c, const struct bb_res *r)
{
	fputs("  ", f);
	bb_put_col(f, bb_label(c), 44);
	fprintf(f, " %-6s", c->sz ? "64 KiB" : "64 B");
	if (r->state != ST_OK) {
		fprintf(f, " %s: %s\n", shmkit__bench_state_name(r->state), r->why);
		return 0;
	}
	return 1;
}
static void bb_print(FILE *f, struct bb *b, const struct machine *m, uint64_t dropped[2])
{
	int rounds = b->cfg->rounds;
	char r1[32], r2[32], r3[32];
	fprintf(f, "shmkit bench --bridge (shmkit %s)\n", shmkit_version_string());
	fprintf(f, "machine: %s; nproc %ld; %s; load %.2f before; nice %d\n", m->cpu, m->nproc,
		m->kernel, b->load_before, g_nice);
	fprintf(f, "NATS: two nats-servers clustered on loopback (host A's clients on port %d, "
		   "host B's on %d); nats.c %s, default options;\n  the judged nats.c paths flush "
		   "as the bridge does (FlushTimeout when nats.c holds bytes and\n  there is "
		   "nothing more to send: after each ping and pong, at a full window, at a "
		   "stream's end);\n  \"on nats.c's 1 ms tick\": never flushed, nats.c's "
		   "flusher writes (context, not judged)\n",
		b->port[0], b->port[1], b->nats_ver);
	fprintf(f, "Bridges: two `shmkit bridge` processes (this binary, as deployed), host ids "
		   "%s and %s;\n  host A's topics /%s-*, host B's /%s-*; the applications are "
		   "two threads of this process, unpinned\n",
		b->host[0], b->host[1], b->host[0], b->host[1]);
	fprintf(f, "%d rounds of %zu cases, %d ms trials, the %d paths of each size "
		   "interleaved (order rotating);\n  ratios are medians of per-round ratios; "
		   "÷nats.c: ÷ the nats.c row flushing as the bridge\n\n",
		rounds, BB_NCASES, b->cfg->trial_ms, BB_PATHS);

	fprintf(f, "Round trip A → B → A                          size   median µs    p99 µs   "
		   "÷nats.c  lost/sent\n");
	for (size_t i = 0; i < BB_NCASES; i++) {
		const struct bb_case *c = &bb_cases[i];
		struct bb_res *r = &b->res[i];
		if (c->kind != BK_RTT || r->state == ST_SKIPPED)
			continue;
		if (!bb_row_start(f, c, r))
			continue;
		if (!r->nsamp) {
			fprintf(f, " no round trip timed (%" PRIu64 " lost)\n", r->lost);
			continue;
		}
		double med = bb_quantile(r->samp, r->nsamp, 0.5);
		double p99 = bb_quantile(r->samp, r->nsamp, 0.99);
		int den = bb_den(i);
		fprintf(f, " %10.1f %9.1f %9s  %" PRIu64 "/%" PRIu64 "\n", med / 1e3, p99 / 1e3,
			shmkit__bench_fmt_ratio(r1, sizeof r1, bb_ratio_q(b, (int)i, den, 0.5, NULL)),
			r->lost, r->lost + r->msgs);
	}
	fprintf(f, "  (one ping in flight; median and p99 of every timed round trip of every "
		   "round)\n\n");

	fprintf(f, "Throughput A → B, windowed                    size      msgs/s      MB/s   "
		   "÷nats.c  lost\n");
	for (size_t i = 0; i < BB_NCASES; i++) {
		const struct bb_case *c = &bb_cases[i];
		struct bb_res *r = &b->res[i];
		if (c->kind != BK_TPUT || r->state == ST_SKIPPED)
			continue;
		if (!bb_row_start(f, c, r))
			continue;
		double v = bb_median_val(r, rounds);
		int den = bb_den(i);
		if (isfinite(v))
			snprintf(r3, sizeof r3, "%9.1f", v * (double)bb_size[c->sz] / 1e6);
		else
			snprintf(r3, sizeof r3, "%9s", "-"); /* nothing arrived in the window */
		fprintf(f, " %11s %9s %9s  %" PRIu64 "%s\n", shmkit__bench_fmt_rate(r1, sizeof r1, v),
			r3,
			shmkit__bench_fmt_ratio(r2, sizeof r2, bb_ratio_q(b, (int)i, den, 0.5, NULL)),
			r->lost, r->lost ? " (WITH LOSSES)" : "");
		if (r->stalls)
			fprintf(f, "    %" PRIu64 " window(s) never drained within %d ms\n", r->stalls,
				(int)(BB_STALL_NS / SHMKIT_MSEC));
	}
	fprintf(f, "  (at most %" PRIu64 " messages of 64 B, %" PRIu64 " of 64 KiB in flight, "
		   "the same for every path;\n   counted by B after a warm-up of an eighth of the "
		   "trial; lost: never arrived)\n",
		bb_window(64), bb_window(65536));
	fprintf(f, "  bridges' own dropped counters at the end: A %" PRIu64 ", B %" PRIu64 "\n\n",
		dropped[0], dropped[1]);

	fprintf(f, "CPU per message, µs (every thread of each process, over every trial; "
		   "a round trip is one)\n  %-44s %-6s", "", "size");
	for (int k = 0; k < 5; k++)
		fprintf(f, " %9s", bb_cpu_name[k]);
	fprintf(f, " %9s\n", "total");
	for (size_t i = 0; i < BB_NCASES; i++) {
		const struct bb_case *c = &bb_cases[i];
		const struct bb_res *r = &b->res[i];
		double tot = 0;
		if (r->state != ST_OK || !r->moved)
			continue;
		snprintf(r1, sizeof r1, "%s, %s", c->kind == BK_RTT ? "round trip" : "stream",
			 c->path == BP_BRIDGE ? "bridge" : c->path == BP_NATS ? "nats.c"
			 : c->path == BP_NATS_HDR ? "nats.c + headers" : "nats.c on its tick");
		fputs("  ", f);
		bb_put_col(f, r1, 44);
		fprintf(f, " %-6s", c->sz ? "64 KiB" : "64 B");
		for (int k = 0; k < 5; k++) {
			double v = r->cpu[k] / (double)r->moved / 1e3;
			tot += v;
			fprintf(f, " %9.2f", v);
		}
		fprintf(f, " %9.2f\n", tot);
	}
	fprintf(f, "  (apps: this process, host A's and host B's application threads, with "
		   "their nats.c\n   threads in the nats.c cases; idle bridges and servers "
		   "count in the cases they do not serve)\n\n");

	int miss = 0, skip = 0;
	fprintf(f, "Bridge targets, against plain nats.c flushing as the bridge does (the strict "
		   "comparison):\n  the median of the per-round ratios, and their quartiles\n");
	for (size_t k = 0; k < BB_NACCEPTS; k++) {
		const struct accept *a = &bb_accepts[k];
		int used, an = bb_find(a->num), ad = bb_find(a->den);
		double v = bb_ratio_q(b, an, ad, 0.5, &used);
		const char *vd = shmkit__bench_verdict(a, v);
		miss += !strcmp(vd, "MISS");
		skip += !strcmp(vd, "SKIP");
		if (isfinite(v) && v < 10)
			snprintf(r1, sizeof r1, "%6.3f", v);
		else
			shmkit__bench_fmt_ratio(r1, sizeof r1, v);
		fprintf(f, "  %s  %-46s %s %5.2f  measured %s  (quartiles %s %s; %d rounds)\n", vd,
			a->what, a->le ? "<=" : ">=", a->bound, r1,
			shmkit__bench_fmt_ratio(r2, sizeof r2, bb_ratio_q(b, an, ad, 0.25, NULL)),
			shmkit__bench_fmt_ratio(r3, sizeof r3, bb_ratio_q(b, an, ad, 0.75, NULL)),
			used);
	}
	fprintf(f, "%s\n",
		miss   ? "Some bridge targets are missed."
		: skip ? "Some bridge targets could not be measured."
		       : "All bridge targets are met.");
	fprintf(f, "Where the ratios come from (medians of per-round ratios; not judged):\n"
		   "  %-40s %11s %11s %11s %11s\n", "", "RTT 64 B", "RTT 64 KiB", "msgs/s 64 B",
		"msgs/s 64K");
	/* numerator, denominator, what the ratio shows */
	static const struct {
		enum bb_path num, den;
		const char *what;
	} lines[] = {
	    {BP_BRIDGE, BP_NATS_HDR, "bridge ÷ nats.c with headers (topics)"},
	    {BP_NATS_HDR, BP_NATS, "nats.c with headers ÷ nats.c (headers)"},
	    {BP_BRIDGE, BP_NATS_TICK, "bridge ÷ nats.c on its tick"},
	    {BP_NATS_TICK, BP_NATS, "nats.c on its tick ÷ nats.c flushing"},
	};
	for (size_t line = 0; line < sizeof lines / sizeof lines[0]; line++) {
		fputs("  ", f);
		bb_put_col(f, lines[line].what, 40);
		for (size_t i = 0; i < BB_NCASES; i += BB_PATHS) {
			int num = (int)i + (int)lines[line].num;
			int den = (int)i + (int)lines[line].den;
			fprintf(f, " %11s", shmkit__bench_fmt_ratio(r1, sizeof r1,
								    bb_ratio_q(b, num, den, 0.5, NULL)));
		}
		fputc('\n', f);
	}
}

int shmkit__bench_bridge_run(const struct cfg *cfg)
{
	static struct bb bb;
	struct bb *b = &bb;
	struct machine m;
	char server[512], err[400] = "";
	int failed = 0, old_nice;
	uint64_t dropped[2] = {0, 0};

	errno = 0;
	old_nice = getpriority(PRIO_PROCESS, 0);
	g_nice = errno == 0 ? old_nice : 0;
	memset(b, 0, sizeof *b);
	b->cfg = cfg;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	pthread_cond_init(&b->win, NULL);
	shmkit__bench_describe_machine(&m);
	b->load_before = m.load_before;
	if (bb_find_server(server, sizeof server)) {
		printf("shmkit bench --bridge: skipped: nats-server not found on PATH "
		       "(apt-get install nats-server)\n");
		bb_cleanup(b);
		return SHMKIT_EXIT_OK;
	}
	snprintf(b->nats_ver, sizeof b->nats_ver, "%s", nats_GetVersion());
	snprintf(b->tag, sizeof b->tag, "bb%ld", (long)getpid());
	for (int h = 0; h < 2; h++) {
		static const char *const what[4] = {"ping", "pong", "t64", "t65536"};
		snprintf(b->host[h], sizeof b->host[h], "%.20s%c", b->tag, 'a' + h);
		for (int k = 0; k < 4; k++)
			snprintf(b->tname[h][k], sizeof b->tname[h][k], "/%.20s%c-%s", b->tag, 'a' + h,
				 what[k]);
		for (int k = 0; k < 4; k++)
			for (int p = 0; p < BB_PATHS; p++)
				snprintf(b->subj[p][k], sizeof b->subj[p][k], "shmkit.%.20s.%s.%s",
					 b->tag,
					 p == BP_BRIDGE ? "bridge" : p == BP_NATS ? "nats"
					 : p == BP_NATS_HDR ? "hdr" : "tick",
					 what[k]);
	}
	for (size_t i = 0; i < BB_NCASES; i++) {
		b->res[i].val = malloc(sizeof(double) * (size_t)cfg->rounds);
		if (!b->res[i].val) {
			fprintf(stderr, "shmkit bench: out of memory\n");
			bb_cleanup(b);
			return SHMKIT_EXIT_FAIL;
		}
		for (int k = 0; k < cfg->rounds; k++)
			b->res[i].val[k] = NAN;
		if (cfg->only && !strstr(bb_cases[i].id, cfg->only)) {
			b->res[i].state = ST_SKIPPED;
			snprintf(b->res[i].why, sizeof b->res[i].why, "not selected (--only %s)",
				 cfg->only);
		}
	}
	b->abuf = malloc(bb_size[BB_SIZES - 1]);
	snprintf(b->dir, sizeof b->dir, "/tmp/shmkit-bench-bridge-XXXXXX");
	if (!b->abuf || !mkdtemp(b->dir)) {
		b->dir[0] = '\0';
		snprintf(err, sizeof err, "temporary directory: %s", strerror(errno));
		goto fail;
	}
	memset(b->abuf, 0x5a, bb_size[BB_SIZES - 1]);

	shmkit__catch_stop();
	signal(SIGPIPE, SIG_IGN);
	/* As the other sections: other processes kept out of the figures when permitted;
	 * the servers and bridges started below inherit it, the same for both paths. */
	if (!cfg->no_nice && setpriority(PRIO_PROCESS, 0, BENCH_NICE) == 0)
		g_nice = BENCH_NICE;

	if (bb_start_servers(b, server, err, sizeof err))
		goto fail;
	/* Topics before the bridges: each side's handles in its own thread. */
	int r = bb_open_a(b);
	if (r < 0) {
		snprintf(err, sizeof err, "host A's topics: %s", shmkit_strerror(r));
		goto fail;
	}
	if (pthread_create(&b->bth, NULL, bb_host_b, b)) {
		snprintf(err, sizeof err, "thread: %s", strerror(errno));
		goto fail;
	}
	b->bth_up = 1;
	pthread_mutex_lock(&b->mu);
	while (!b->b_ready)
		pthread_cond_wait(&b->cv, &b->mu);
	r = b->b_ready;
	pthread_mutex_unlock(&b->mu);
	if (r < 0) {
		snprintf(err, sizeof err, "host B's topics: %s", shmkit_strerror(r));
		goto fail;
	}
	if (bb_start_bridges(b, err, sizeof err) || bb_open_nats(b, err, sizeof err) ||
	    bb_warm(b, err, sizeof err))
		goto fail;

	int64_t trial_ns = (int64_t)cfg->trial_ms * SHMKIT_MSEC;
	int progress = isatty(STDERR_FILENO);
	for (int round = 0; round < cfg->rounds && !shmkit__stop; round++) {
		if (progress)
			fprintf(stderr, "\rshmkit bench --bridge: round %d/%d ", round + 1,
				cfg->rounds);
		for (size_t p = 0; p < BB_NCASES; p += BB_PATHS) {
			for (size_t j = 0; j < BB_PATHS; j++) {
				/* the order rotates from round to round */
				size_t i = p + (j + (size_t)round) % BB_PATHS;
				struct bb_res *res = &b->res[i];
				if (res->state != ST_OK)
					continue;
				int rc = bb_cases[i].kind == BK_RTT
					     ? bb_trial_rtt(b, &bb_cases[i], res, trial_ns, round)
					     : bb_trial_tput(b, &bb_cases[i], res, trial_ns, round, 0);
				if (rc)
					res->state = ST_FAILED;
			}
		}
	}
	if (progress)
		fprintf(stderr, "\r%50s\r", "");
	for (int h = 0; h < 2; h++)
		dropped[h] = bb_bridge_dropped(b->host[h]);
	if (shmkit__stop) {
		snprintf(err, sizeof err, "interrupted");
		goto fail;
	}
	bb_print(stdout, b, &m, dropped);
	for (size_t i = 0; i < BB_NCASES; i++)
		failed |= b->res[i].state == ST_FAILED;
	goto out;
fail:
	if (shmkit__stop) /* whatever was being waited for when the signal came */
		snprintf(err, sizeof err, "interrupted by signal %d", (int)shmkit__stop);
	fprintf(stderr, "shmkit bench --bridge: %s\n", err);
	failed = 1;
out:
	fflush(stdout);
	bb_cleanup(b);
	if (g_nice != old_nice)
		setpriority(PRIO_PROCESS, 0, old_nice);
	return failed ? SHMKIT_EXIT_FAIL : SHMKIT_EXIT_OK;
}
