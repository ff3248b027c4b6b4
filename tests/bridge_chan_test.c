/* bridge_chan_test SHMKIT [exact|misc]: a channel on host A → a JetStream stream → a
 * channel on host B, through two `shmkit bridge` processes and two clustered
 * nats-servers on loopback (docs/bridge-jetstream.md §4). Hosts are simulated by
 * segment-name prefixes (A.* and B.*) that the two sides never share.
 *
 * exact: a producer writes N = 100000 x SHMKIT_TEST_SCALE self-checking messages into
 * channel A (16..512 bytes, every 5000th near the servers' max_payload); a checker
 * reads channel B and requires message i right after i-1, whole, and exactly N of
 * them (nothing more arrives afterwards). Meanwhile bridge A is SIGKILLed (after a
 * random 0..50 ms, so publishes are in flight) and restarted five times, bridge B
 * three times (which exercises the de-dup mark), and one server is stopped (SIGTERM)
 * and restarted on its store once. Also asserted: bridge A re-published (a duplicate
 * ack or a resend counted, else the test did not exercise re-publishing), and the
 * producer never had a message refused (-EPIPE while bridge A is dead is what a
 * channel producer gets for a dead consumer; it sends the same message again).
 * misc: a bridge started while its server is down connects when it comes up; a
 * message larger than max_payload is reported, counted and held in the channel
 * (neither truncated nor skipped) with the one before it delivered; a full stream
 * makes the channel's producer wait, and everything arrives once a receiver runs; a
 * chan-in bridge that died between its de-dup mark and its commit is undone by the
 * next; at a low rate a message is not held back to fill a fetch's batch;
 * bad stream names, subjects and settings are usage errors (exit 2).
 * Skips (77) with "SKIPPED: ..." without nats-server or a bridge-less build. */
#include "common.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <stdatomic.h>

#define MAXP 131072             /* the servers' max_payload */
#define BIG_LEN (MAXP - 1024)   /* near it, leaving the bridge's headers room */
#define CHAN_CAP ((size_t)1 << 20)
#define MSG_MAX 512

static const char *tool;
static char dir[64];
static int pid_tag;

/* Shared between the controller and its producer and checker children. */
struct shared {
	_Atomic uint64_t produced, received;
	_Atomic uint64_t prod_errors, prod_epipe, prod_last_err;
	_Atomic int check_failed;
	_Atomic uint64_t bad_at, bad_len;
	_Atomic int done_sending, checker_quiet;
};
static struct shared *sh;
/* The channels' names, made by the controller (t_name() in a child names its own). */
static char local_a[128], local_b[128];

static size_t msg_len(uint64_t i)
{
	if (i % 5000 == 7)
		return BIG_LEN - (size_t)(i % 13);
	return 16 + (size_t)(t_mix64(i ^ 0x6c656e) % (MSG_MAX - 16 + 1));
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof a;
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &n) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Starts argv with stdout and stderr into @log; it dies with this process. */
static pid_t spawn(char *const argv[], const char *log)
{
	pid_t p = t_fork_raw();
	CHECK(p >= 0);
	if (p == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return p;
}

static int in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];
	if (!path)
		return 0;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
		if (access(buf, X_OK) == 0)
			return 1;
		p += n + (p[n] == ':');
	}
	return 0;
}

struct server {
	char name[8], conf[128], log[128];
	int port, cport;
	pid_t pid;
};

static void server_conf(struct server *s, const char *name, const struct server *peer)
{
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->conf, sizeof s->conf, "%s/%s.conf", dir, name);
	snprintf(s->log, sizeof s->log, "%s/%s.log", dir, name);
	FILE *f = fopen(s->conf, "w");
	CHECK(f);
	fprintf(f, "server_name: %s\nlisten: 127.0.0.1:%d\nmax_payload: %d\n"
		   "jetstream { store_dir: \"%s/%s.store\", max_file_store: 1GB, "
		   "max_memory_store: 64MB }\n",
		s->name, s->port, MAXP, dir, name);
	if (peer)
		fprintf(f, "cluster { name: shmkit-jt-%d, listen: 127.0.0.1:%d, routes: "
			   "[nats-route://127.0.0.1:%d] }\n", pid_tag, s->cport, peer->cport);
	fclose(f);
}

static void server_start(struct server *s)
{
	char *argv[] = {"nats-server", "-c", s->conf, NULL};
	s->pid = spawn(argv, s->log);
}

static int log_has(const char *log, const char *what)
{
	FILE *f = fopen(log, "r");
	char line[1024];
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static void dump(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "tail -n 30 %s >&2", path);
	if (system(cmd) != 0)
		fprintf(stderr, "(no %s)\n", path);
}

/* ---- bridges ---- */

struct bridge {
	char host[32], log[128], map[200];
	char *argv[16];
	pid_t pid;
	uint64_t dups, resent, skipped; /* summed over the instances killed */
};

static void bridge_start(struct bridge *b)
{
	b->pid = spawn(b->argv, b->log);
}

/* Bridge @b as host "<tag>PID" with the one mapping @opt (--chan-out or --chan-in)
 * "LOCAL=STREAM" or "STREAM=LOCAL", after @max_bytes' --stream-max-bytes if not NULL. */
static void bridge_conf(struct bridge *b, const char *url, const char *tag, const char *opt,
			const char *from, const char *to, const char *max_bytes)
{
	snprintf(b->host, sizeof b->host, "%s%d", tag, pid_tag);
	snprintf(b->log, sizeof b->log, "%s/%s.log", dir, tag);
	snprintf(b->map, sizeof b->map, "%s=%s", from, to);
	int n = 0;
	const char *a[] = {tool, "bridge", "--server", url, "--host-id", b->host};
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
		b->argv[n++] = (char *)a[i];
	if (max_bytes) {
		b->argv[n++] = "--stream-max-bytes";
		b->argv[n++] = (char *)max_bytes;
	}
	b->argv[n++] = (char *)opt;
	b->argv[n++] = b->map;
	b->argv[n] = NULL;
}

/* A counter of the running bridge's first channel mapping, from its status; -1 if
 * none can be read. */
static long long status_field(const struct bridge *b, const char *field)
{
	char name[64], text[8192];
	snprintf(name, sizeof name, "/shmkit-bridge-%s", b->host);
	shmkit_blob *bl = NULL;
	if (shmkit_blob_open(name, 0, 0, SHMKIT_SEG_RDONLY, &bl) < 0)
		return -1;
	ssize_t n = shmkit_blob_read(bl, text, sizeof text - 1, NULL);
	shmkit_blob_close(bl);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	if (!strcmp(field, "connected")) {
		int c;
		return sscanf(text, "shmkit-bridge %*d %*s %d", &c) == 1 ? c : -1;
	}
	char *line = strchr(text, '\n');
	if (!line)
		return -1;
	char key[64];
	snprintf(key, sizeof key, " %s ", field);
	char *at = strstr(line, key);
	return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

static void bridge_sum(struct bridge *b)
{
	long long d = status_field(b, "duplicates"), r = status_field(b, "resent"),
		  k = status_field(b, "skipped");
	b->dups += d > 0 ? (uint64_t)d : 0;
	b->resent += r > 0 ? (uint64_t)r : 0;
	b->skipped += k > 0 ? (uint64_t)k : 0;
}

/* Fails the test if the bridge exited by itself (a crash, a sanitizer's report). */
static void bridge_alive(const struct bridge *b)
{
	int st;
	if (b->pid > 0 && waitpid(b->pid, &st, WNOHANG) == b->pid) {
		fprintf(stderr, "bridge %s died by itself (status 0x%x):\n", b->host, st);
		dump(b->log);
		exit(T_FAIL);
	}
}

static void bridge_kill(struct bridge *b, int sig)
{
	bridge_alive(b);
	bridge_sum(b);
	kill(b->pid, sig);
	int st = t_wait(b->pid);
	if (sig == SIGTERM && st != 0) {
		fprintf(stderr, "bridge %s exited %d on SIGTERM\n", b->host, st);
		exit(T_FAIL);
	}
	b->pid = 0;
}

/* The end of a check with a sending bridge @a and a receiving bridge @b: their logs
 * if it failed (@failed), both stopped, and the two channels closed. */
static void pair_end(struct bridge *a, struct bridge *b, int failed, shmkit_chan *c1,
		     shmkit_chan *c2)
{
	if (failed) {
		dump(a->log);
		dump(b->log);
	}
	bridge_kill(a, SIGTERM);
	bridge_kill(b, SIGTERM);
	shmkit_chan_close(c1);
	shmkit_chan_close(c2);
}

static int wait_until(int seconds, const struct bridge *b, const char *field, long long want)
{
	int64_t end = t_now_ns() + (int64_t)seconds * 1000000000;
	while (t_now_ns() < end) {
		if (status_field(b, field) == want)
			return 1;
		t_nap_ms(50);
	}
	return 0;
}

/* ---- producer and checker (children) ---- */

static int producer(void *arg)
{
	uint64_t n = *(uint64_t *)arg;
	shmkit_chan *ch = t_chan_open_ok(local_a, SHMKIT_CHAN_PRODUCER, 0, 0);
	for (uint64_t i = 1; i <= n; i++) {
		size_t len = msg_len(i);
		void *p = NULL;
		for (;;) {
			int r = shmkit_chan_reserve(ch, len, SHMKIT_SEC, &p);
			if (r == 0)
				break;
			if (r == -ETIMEDOUT || r == -EAGAIN)
				continue; /* full while a bridge or a server restarts */
			if (r == -EPIPE) { /* bridge A died: the next one takes over */
				atomic_fetch_add(&sh->prod_epipe, 1);
				t_nap_ms(2);
				continue;
			}
			atomic_fetch_add(&sh->prod_errors, 1);
			atomic_store(&sh->prod_last_err, (uint64_t)-r);
			return T_FAIL;
		}
		t_msg_fill(p, len, i);
		CHECK_OK(shmkit_chan_commit(ch, len));
		atomic_store_explicit(&sh->produced, i, memory_order_relaxed);
	}
	atomic_store(&sh->done_sending, 1);
	/* Stay attached: a producer's close would be an end of stream to bridge A. */
	while (!atomic_load(&sh->checker_quiet))
		t_nap_ms(20);
	shmkit_chan_close(ch);
	return T_PASS;
}

static int checker(void *arg)
{
	uint64_t n = *(uint64_t *)arg, next = 1;
	static unsigned char buf[CHAN_CAP / 2];
	shmkit_chan *ch = t_chan_open_ok(local_b, SHMKIT_CHAN_CONSUMER, 0, 0);
	int64_t quiet_until = 0;
	for (;;) {
		ssize_t r = shmkit_chan_recv(ch, buf, sizeof buf, 200 * SHMKIT_MSEC);
		if (r > 0) {
			uint64_t i = t_msg_seq(buf, (size_t)r);
			if (i != next || (size_t)r != msg_len(i) || !t_msg_check_bytes(buf, (size_t)r, i)) {
				atomic_store(&sh->bad_at, next);
				atomic_store(&sh->bad_len, (uint64_t)r);
				fprintf(stderr, "checker: expected message %" PRIu64 " (%zu bytes), got "
						"%" PRIu64 " (%zd bytes)%s\n", next, msg_len(next), i, r,
					i == next && (size_t)r == msg_len(i) ? ", corrupt" : "");
				atomic_store(&sh->check_failed, 1);
				return T_FAIL;
			}
			atomic_store_explicit(&sh->received, next, memory_order_relaxed);
			if (next++ == n) /* then 1.5 s more: a duplicate would come now */
				quiet_until = t_now_ns() + 1500 * 1000000LL;
			continue;
		}
		if (r != -ETIMEDOUT && r != -EAGAIN && r != -EPIPE && r != 0) {
			fprintf(stderr, "checker: recv: %s\n", shmkit_strerror((int)r));
			atomic_store(&sh->check_failed, 1);
			return T_FAIL;
		}
		if (quiet_until && t_now_ns() > quiet_until)
			break;
	}
	atomic_store(&sh->checker_quiet, 1);
	shmkit_chan_close(ch);
	return T_PASS;
}

/* ---- exact: the run of the issue ---- */

static int exact(void)
{
	uint64_t scale = t_scale(), n = 100000 * scale;
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	srand(seed);
	printf("exact: %" PRIu64 " messages, seed %u\n", n, seed);
	struct server sa = {0}, sb = {0};
	sa.port = free_port();
	sb.port = free_port();
	sa.cport = free_port();
	sb.cport = free_port();
	server_conf(&sa, "sa", &sb);
	server_conf(&sb, "sb", &sa);
	server_start(&sa);
	server_start(&sb);

	/* Both channels exist, at the size the test wants, before any bridge opens them
	 * (a consumer that left before the producer came is ignored by the producer). */
	shmkit_chan *c;
	c = t_chan_open_ok(t_name("A.chan"), SHMKIT_CHAN_CONSUMER, CHAN_CAP, SHMKIT_SEG_CREATE);
	shmkit_chan_close(c);
	c = t_chan_open_ok(t_name("B.chan"), SHMKIT_CHAN_CONSUMER, CHAN_CAP, SHMKIT_SEG_CREATE);
	shmkit_chan_close(c);
	(void)t_name("B.chan.jsmark");

	char ua[64], ub[64], stream[32], map_a[200], map_b[200];
	snprintf(ua, sizeof ua, "nats://127.0.0.1:%d", sa.port);
	snprintf(ub, sizeof ub, "nats://127.0.0.1:%d", sb.port);
	snprintf(stream, sizeof stream, "JT%d", pid_tag);
	snprintf(local_a, sizeof local_a, "%s", t_name("A.chan"));
	snprintf(local_b, sizeof local_b, "%s", t_name("B.chan"));
	snprintf(map_a, sizeof map_a, "%s=%s", local_a, stream);
	snprintf(map_b, sizeof map_b, "%s=%s", stream, local_b);
	struct bridge ba = {0}, bb = {0};
	snprintf(ba.host, sizeof ba.host, "ha%d", pid_tag);
	snprintf(bb.host, sizeof bb.host, "hb%d", pid_tag);
	snprintf(ba.log, sizeof ba.log, "%s/ba.log", dir);
	snprintf(bb.log, sizeof bb.log, "%s/bb.log", dir);
	char *aa[] = {(char *)tool, "bridge", "--server", ua, "--server", ub, "--host-id", ba.host,
		      "--chan-out", map_a, NULL};
	char *ab[] = {(char *)tool, "bridge", "--server", ub, "--server", ua, "--host-id", bb.host,
		      "--chan-in", map_b, NULL};
	memcpy(ba.argv, aa, sizeof aa);
	memcpy(bb.argv, ab, sizeof ab);
	bridge_start(&ba);
	bridge_start(&bb);

	int64_t t0 = t_now_ns();
	pid_t prod = t_fork(producer, &n), chk = t_fork(checker, &n);
	/* Events at fractions of N received on B: kill A (5), kill B (3), restart a server.
	 * B's kills come before the restart: a chan-in bridge starting makes its consumer
	 * anew, which needs the JetStream meta leader, and a two-server cluster has none
	 * for some 10 s after one of them restarts (B waits that out: correct, but it
	 * would make the test's time depend on the server's election timers). */
	static const double kill_a[] = {1 / 6.0, 2 / 6.0, 3 / 6.0, 4 / 6.0, 5 / 6.0};
	static const double kill_b[] = {0.12, 0.25, 0.35};
	const double server_at = 0.42;
	int ka = 0, kb = 0, srv = 0, prod_done = 0, chk_done = 0, prod_st = 0, chk_st = 0;
	int64_t deadline = t0 + (int64_t)(50 * scale) * 1000000000;
	uint64_t last = 0;
	int64_t last_change = t0, last_print = t0;
	int verbose = getenv("SHMKIT_TEST_VERBOSE") != NULL;
	while (!chk_done) {
		uint64_t got = atomic_load(&sh->received);
		int64_t now = t_now_ns();
		if (got != last) {
			last = got;
			last_change = now;
		}
		if (now > deadline || now - last_change > 20 * (int64_t)1000000000) {
			fprintf(stderr, "exact: stuck at %" PRIu64 " of %" PRIu64 " received (%" PRIu64
					" produced) after %.1f s\n", got, n, atomic_load(&sh->produced),
				(double)(now - t0) / 1e9);
			dump(ba.log);
			dump(bb.log);
			dump(sa.log);
			dump(sb.log);
			return T_FAIL;
		}
		if (ka < 5 && got >= (uint64_t)(kill_a[ka] * (double)n)) {
			t_nap_ms(rand() % 51);
			printf("exact: %.1f s: SIGKILL bridge A at %" PRIu64 "\n",
			       (double)(t_now_ns() - t0) / 1e9, got);
			bridge_kill(&ba, SIGKILL);
			bridge_start(&ba);
			ka++;
		}
		if (kb < 3 && got >= (uint64_t)(kill_b[kb] * (double)n)) {
			t_nap_ms(rand() % 51);
			printf("exact: %.1f s: SIGKILL bridge B at %" PRIu64 "\n",
			       (double)(t_now_ns() - t0) / 1e9, got);
			bridge_kill(&bb, SIGKILL);
			bridge_start(&bb);
			kb++;
		}
		if (!srv && got >= (uint64_t)(server_at * (double)n)) {
			/* The server that leads the stream when the log says so, else A. */
			char what[64];
			snprintf(what, sizeof what, "> %s'", stream);
			struct server *s = log_has(sb.log, what) && !log_has(sa.log, what) ? &sb : &sa;
			printf("exact: %.1f s: restarting server %s at %" PRIu64 "\n",
			       (double)(t_now_ns() - t0) / 1e9, s->name, got);
			kill(s->pid, SIGTERM);
			t_wait(s->pid);
			t_nap_ms(1000);
			server_start(s);
			srv = 1;
		}
		if (verbose && now - last_print > 500000000) { /* SHMKIT_TEST_VERBOSE=1 */
			last_print = now;
			printf("%.1f s: %" PRIu64 " produced, %" PRIu64 " received; A: dup %lld "
			       "resent %lld errors %lld pending %lld fwd %lld; B: skipped %lld "
			       "errors %lld fwd %lld\n", (double)(now - t0) / 1e9,
			       atomic_load(&sh->produced), got, status_field(&ba, "duplicates"),
			       status_field(&ba, "resent"), status_field(&ba, "errors"),
			       status_field(&ba, "pending"), status_field(&ba, "forwarded"),
			       status_field(&bb, "skipped"), status_field(&bb, "errors"),
			       status_field(&bb, "forwarded"));
		}
		bridge_alive(&ba);
		bridge_alive(&bb);
		if (!prod_done && waitpid(prod, &prod_st, WNOHANG) == prod)
			prod_done = 1;
		if (waitpid(chk, &chk_st, WNOHANG) == chk)
			chk_done = 1;
		if (atomic_load(&sh->check_failed) || atomic_load(&sh->prod_errors))
			break;
		t_nap_ms(5);
	}
	int64_t t1 = t_now_ns();
	if (!chk_done)
		chk_st = t_wait(chk) << 8;
	if (!prod_done) {
		atomic_store(&sh->checker_quiet, 1);
		prod_st = t_wait(prod) << 8;
	}
	bridge_kill(&ba, SIGTERM);
	bridge_kill(&bb, SIGTERM);
	double secs = (double)(t1 - t0) / 1e9 - 1.5; /* the checker's quiet wait */
	printf("exact: %" PRIu64 " messages in %.1f s (%.0f msgs/s end to end, with 8 bridge "
	       "kills and a server restart)\n", atomic_load(&sh->received), secs,
	       (double)atomic_load(&sh->received) / secs);
	printf("exact: bridge A duplicates %" PRIu64 " resent %" PRIu64 "; bridge B skipped "
	       "%" PRIu64 "; producer retried %" PRIu64 " sends on -EPIPE\n", ba.dups, ba.resent,
	       bb.skipped, atomic_load(&sh->prod_epipe));
	int fails = 0;
#define EXPECT(cond, what)                                                                  \
	do {                                                                               \
		if (cond) {                                                                \
			printf("ok: %s\n", what);                                           \
		} else {                                                                   \
			printf("FAIL: %s\n", what);                                         \
			fails++;                                                           \
		}                                                                          \
	} while (0)
	EXPECT(!atomic_load(&sh->check_failed) && WIFEXITED(chk_st) && WEXITSTATUS(chk_st) == 0,
	       "every message arrived on B once, in order, intact, and nothing after the last");
	EXPECT(atomic_load(&sh->received) == n, "B received exactly N messages");
	EXPECT(atomic_load(&sh->prod_errors) == 0 && WIFEXITED(prod_st) && WEXITSTATUS(prod_st) == 0,
	       "the producer on A never had a message refused");
	EXPECT(ka == 5 && kb == 3 && srv == 1, "five kills of A, three of B, one server restart");
	EXPECT(ba.dups + ba.resent > 0, "bridge A published again what it had in flight");
	kill(sa.pid, SIGTERM);
	kill(sb.pid, SIGTERM);
	t_wait(sa.pid);
	t_wait(sb.pid);
	if (fails) {
		dump(ba.log);
		dump(bb.log);
	}
	printf("%d passed, %d failed\n", 5 - fails, fails);
	return fails ? T_FAIL : T_PASS;
}

/* ---- misc: server down at start, oversized, usage errors ---- */

static int usage(const char *what, const char *pattern, char *const args[])
{
	char log[128];
	snprintf(log, sizeof log, "%s/usage.log", dir);
	unlink(log);
	char *argv[16] = {(char *)tool, "bridge"};
	int k = 2;
	for (int i = 0; args[i] && k < 15; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	int st = t_wait(spawn(argv, log));
	int ok = st == 2 && log_has(log, pattern);
	printf("%s: usage error: %s (exit %d)\n", ok ? "ok" : "FAIL", what, st);
	if (!ok)
		dump(log);
	return ok;
}

/* A stream of 64 KiB and no receiver: the stream fills, then channel A, and then its
 * producer waits (a send with timeout 0 says -EAGAIN), as for a slow consumer; once
 * a receiving bridge starts, everything arrives, in order. */
static void backpressure(const char *url, int *checks, int *fails)
{
	enum { LEN = 1000, MORE = 300, LIMIT = 5000 };
	struct bridge be = {0}, bf = {0};
	char name_a[128], name_b[128];
	snprintf(name_a, sizeof name_a, "%s", t_name("A.bp"));
	snprintf(name_b, sizeof name_b, "%s", t_name("B.bp"));
	(void)t_name("B.bp.jsmark");
	shmkit_chan *prod = t_chan_open_ok(name_a, SHMKIT_CHAN_PRODUCER, 65536, SHMKIT_SEG_CREATE);
	shmkit_chan *cons = t_chan_open_ok(name_b, SHMKIT_CHAN_CONSUMER, CHAN_CAP, SHMKIT_SEG_CREATE);
	char stream[32];
	snprintf(stream, sizeof stream, "JB%d", pid_tag);
	bridge_conf(&be, url, "he", "--chan-out", name_a, stream, "65536");
	bridge_conf(&bf, url, "hf", "--chan-in", stream, name_b, "65536");
	bridge_start(&be);
	static unsigned char m[LEN], got[CHAN_CAP / 2];
	uint64_t sent = 0;
	int64_t full_since = 0;
	while (sent < LIMIT) { /* until the producer has waited 2 s on a full channel */
		t_msg_fill(m, LEN, sent + 1);
		int r = shmkit_chan_send(prod, m, LEN, 0);
		if (r == 0) {
			sent++;
			full_since = 0;
			continue;
		}
		CHECK_EQ(r, -EAGAIN);
		if (!full_since)
			full_since = t_now_ns();
		if (t_now_ns() - full_since > 2000000000LL)
			break;
		t_nap_ms(20);
	}
	long long fwd = status_field(&be, "forwarded"), err = status_field(&be, "errors");
	printf("backpressure: %" PRIu64 " sent before the producer waited; bridge stored %lld, "
	       "refused %lld publishes\n", sent, fwd, err);
	(*checks)++;
	if (sent < LIMIT && fwd > 0 && fwd < (long long)sent && err > 0) {
		printf("ok: backpressure: a full stream makes the channel's producer wait\n");
	} else {
		printf("FAIL: backpressure: a full stream makes the channel's producer wait\n");
		(*fails)++;
	}
	bridge_start(&bf);
	uint64_t next = 1, total = sent + MORE;
	int64_t end = t_now_ns() + 30 * 1000000000LL;
	int bad = 0;
	while (next <= total && !bad && t_now_ns() < end) {
		if (sent < total) {
			t_msg_fill(m, LEN, sent + 1);
			if (shmkit_chan_send(prod, m, LEN, 0) == 0)
				sent++;
		}
		ssize_t r = shmkit_chan_recv(cons, got, sizeof got, 10 * SHMKIT_MSEC);
		if (r == -ETIMEDOUT || r == -EAGAIN)
			continue;
		bad = r != LEN || t_msg_seq(got, LEN) != next || !t_msg_check_bytes(got, LEN, next);
		if (bad)
			fprintf(stderr, "backpressure: expected %" PRIu64 ", got %zd bytes claiming %" PRIu64
					"\n", next, r, r >= 8 ? t_msg_seq(got, (size_t)r) : 0);
		next++;
	}
	(*checks)++;
	int good = !bad && next == total + 1;
	if (good) {
		printf("ok: backpressure: once a receiver runs, all %" PRIu64 " arrive in order\n", total);
	} else {
		printf("FAIL: backpressure: %" PRIu64 " of %" PRIu64 " arrived in order\n", next - 1, total);
		(*fails)++;
	}
	pair_end(&be, &bf, !good, prod, cons);
}

/* At a low rate a message is not held back to fill a batch: nats.c's fetch returns
 * only with the whole batch or at its expiry (500 ms), so chan-in waits for one
 * message while nothing is queued. Messages 300 ms apart: the median delay from
 * channel A to channel B must stay under 100 ms (with batches it is about 250). */
static void low_rate(const char *url, int *checks, int *fails)
{
	enum { N = 8 };
	struct bridge bl = {0}, bm = {0};
	char name_a[128], name_b[128];
	snprintf(name_a, sizeof name_a, "%s", t_name("A.lr"));
	snprintf(name_b, sizeof name_b, "%s", t_name("B.lr"));
	(void)t_name("B.lr.jsmark");
	shmkit_chan *prod = t_chan_open_ok(name_a, SHMKIT_CHAN_PRODUCER, 65536, SHMKIT_SEG_CREATE);
	shmkit_chan *cons = t_chan_open_ok(name_b, SHMKIT_CHAN_CONSUMER, 65536, SHMKIT_SEG_CREATE);
	char stream[32];
	snprintf(stream, sizeof stream, "JL%d", pid_tag);
	bridge_conf(&bl, url, "hl", "--chan-out", name_a, stream, NULL);
	bridge_conf(&bm, url, "hm", "--chan-in", stream, name_b, NULL);
	bridge_start(&bl);
	bridge_start(&bm);
	/* One message through first: both bridges connected, the stream made. */
	int64_t t0 = t_now_ns(), delay[N];
	CHECK_OK(shmkit_chan_send(prod, &t0, sizeof t0, SHMKIT_SEC));
	int64_t got;
	ssize_t r = shmkit_chan_recv(cons, &got, sizeof got, 20 * SHMKIT_SEC);
	int ok = r == (ssize_t)sizeof got && got == t0, n = 0;
	for (int i = 0; ok && i < N; i++) {
		t_nap_ms(300);
		int64_t t = t_now_ns();
		CHECK_OK(shmkit_chan_send(prod, &t, sizeof t, SHMKIT_SEC));
		r = shmkit_chan_recv(cons, &got, sizeof got, 5 * SHMKIT_SEC);
		ok = r == (ssize_t)sizeof got && got == t;
		if (ok)
			delay[n++] = t_now_ns() - t;
	}
	for (int i = 1; i < n; i++) /* insertion sort: the median */
		for (int k = i; k > 0 && delay[k] < delay[k - 1]; k--) {
			int64_t x = delay[k];
			delay[k] = delay[k - 1];
			delay[k - 1] = x;
		}
	(*checks)++;
	int failed = !(ok && n == N && delay[N / 2] < 100 * SHMKIT_MSEC);
	if (!failed) {
		printf("ok: low rate: every message arrives, median delay %.1f ms (max %.1f)\n",
		       delay[N / 2] / 1e6, delay[N - 1] / 1e6);
	} else {
		printf("FAIL: low rate: %d of %d arrived, median delay %.1f ms (want < 100)\n", n, N,
		       n ? delay[n / 2] / 1e6 : -1.0);
		(*fails)++;
	}
	/* shmkit top shows the channel mappings with their stream and counters. */
	char cmd[512], want[160];
	static char out[1 << 16];
	snprintf(cmd, sizeof cmd, "'%s' top --once --json --interval 0.1", tool);
	FILE *p = popen(cmd, "r");
	size_t got_n = p ? fread(out, 1, sizeof out - 1, p) : 0;
	if (p)
		pclose(p);
	out[got_n] = '\0';
	/* (chan-out's first publish finds no stream, makes it and resends: counted.) */
	snprintf(want, sizeof want, "\"channel\": {\"stream\": \"JL%d\", \"duplicates\": ",
		 pid_tag);
	const char *at = strstr(out, want);
	(*checks)++;
	if (at && strstr(at + 1, want)) { /* both bridges' lines */
		printf("ok: top shows both channel mappings with their stream and counters\n");
	} else {
		printf("FAIL: top --json lacks '%s' twice (%zu bytes)\n", want, got_n);
		(*fails)++;
		failed = 1;
	}
	pair_end(&bl, &bm, failed, prod, cons);
}

/* The de-dup mark's layout (src/bridge/jetstream.c, struct jsmark), written by hand
 * here as a bridge killed between its mark and its commit leaves it. */
struct mark {
	uint64_t magic, chan_ctime, gen, reserved;
	struct {
		uint64_t q, seq, stream, chan, pos;
	} slot[2];
};

/* chan-in's mark after a death between the mark and the commit: slot gen & 1 names a
 * message channel B never got (its position is the true tail). The next bridge must
 * undo it, not take it as delivered: message 2 arrives; message 1, which the mark's
 * other slot says was committed, is dropped as a duplicate. */
static void mark_recovery(const char *url, int *checks, int *fails)
{
	enum { LEN = 100 };
	char name_a[128], name_b[128], name_m[140], map_g[200], map_h[200];
	snprintf(name_a, sizeof name_a, "%s", t_name("A.mk"));
	snprintf(name_b, sizeof name_b, "%s", t_name("B.mk"));
	snprintf(name_m, sizeof name_m, "%s", t_name("B.mk.jsmark"));
	unsigned char m[LEN], got[CHAN_CAP / 2];
	struct shmkit_seg_info ia, ib;
	uint64_t p1, p2, tail;
	shmkit_chan *pa = t_chan_open_ok(name_a, SHMKIT_CHAN_PRODUCER, 65536, SHMKIT_SEG_CREATE);
	CHECK_OK(shmkit_seg_stat(shmkit_chan_seg(pa), &ia));
	CHECK_OK(shmkit_chan_position(pa, &p1));
	t_msg_fill(m, LEN, 1);
	CHECK_OK(shmkit_chan_send(pa, m, LEN, 0));
	CHECK_OK(shmkit_chan_position(pa, &p2));
	t_msg_fill(m, LEN, 2);
	CHECK_OK(shmkit_chan_send(pa, m, LEN, 0));
	shmkit_chan *pb = t_chan_open_ok(name_b, SHMKIT_CHAN_PRODUCER, 65536, SHMKIT_SEG_CREATE);
	CHECK_OK(shmkit_seg_stat(shmkit_chan_seg(pb), &ib));
	t_msg_fill(m, LEN, 100); /* what channel B got before the "death" */
	CHECK_OK(shmkit_chan_send(pb, m, LEN, 0));
	CHECK_OK(shmkit_chan_position(pb, &tail));
	shmkit_chan_close(pb);
	shmkit_chan *cb = t_chan_open_ok(name_b, SHMKIT_CHAN_CONSUMER, 0, 0);
	shmkit_seg *ms = NULL;
	CHECK_OK(shmkit_seg_open(name_m, SHMKIT_KIND_DATA, 4096, 0644,
				 SHMKIT_SEG_CREATE | SHMKIT_SEG_PERSIST, &ms));
	struct mark *k = shmkit_seg_data(ms);
	k->chan_ctime = (uint64_t)ib.ctime_ns;
	k->slot[0].q = 0; /* message 1: committed at position 0 */
	k->slot[0].chan = (uint64_t)ia.ctime_ns;
	k->slot[0].pos = p1;
	k->slot[1].q = tail; /* message 2: marked, never committed */
	k->slot[1].chan = (uint64_t)ia.ctime_ns;
	k->slot[1].pos = p2;
	k->gen = 3;
	k->magic = UINT64_C(0x314b52414d534a53);
	shmkit_seg_close(ms);
	struct bridge bg = {0}, bh = {0};
	snprintf(bg.host, sizeof bg.host, "hg%d", pid_tag);
	snprintf(bg.log, sizeof bg.log, "%s/bg.log", dir);
	snprintf(bh.host, sizeof bh.host, "hh%d", pid_tag);
	snprintf(bh.log, sizeof bh.log, "%s/bh.log", dir);
	snprintf(map_g, sizeof map_g, "%s=JM%d", name_a, pid_tag);
	snprintf(map_h, sizeof map_h, "JM%d=%s", pid_tag, name_b);
	char *ag[] = {(char *)tool, "bridge", "--server", (char *)url, "--host-id", bg.host,
		      "--chan-out", map_g, NULL};
	char *ah[] = {(char *)tool, "bridge", "--server", (char *)url, "--host-id", bh.host,
		      "--chan-in", map_h, NULL};
	memcpy(bg.argv, ag, sizeof ag);
	memcpy(bh.argv, ah, sizeof ah);
	bridge_start(&bh);
	bridge_start(&bg);
	uint64_t want[] = {100, 2}, n = 0;
	int bad = 0;
	int64_t end = t_now_ns() + 20 * 1000000000LL, quiet = 0;
	while (!bad && t_now_ns() < end && (!quiet || t_now_ns() < quiet)) {
		ssize_t r = shmkit_chan_recv(cb, got, sizeof got, 20 * SHMKIT_MSEC);
		if (r <= 0)
			continue; /* the test's producer ended its stream: the bridge's follows */
		bad = n >= 2 || r != LEN || !t_msg_check_bytes(got, LEN, want[n]);
		if (bad)
			fprintf(stderr, "mark: message %" PRIu64 " on B claims %" PRIu64 " (%zd bytes)\n",
				n + 1, t_msg_seq(got, (size_t)r), r);
		if (++n == 2)
			quiet = t_now_ns() + 1500000000LL;
	}
	(*checks)++;
	int good = !bad && n == 2 && status_field(&bh, "skipped") == 1;
	if (good) {
		printf("ok: mark: a mark never committed is undone; the committed one drops its duplicate\n");
	} else {
		printf("FAIL: mark: got %" PRIu64 " messages on B, skipped %lld\n", n,
		       status_field(&bh, "skipped"));
		(*fails)++;
	}
	pair_end(&bg, &bh, !good, cb, pa);
}

static int misc(void)
{
	int fails = 0, checks = 0;
	struct server sc = {0};
	sc.port = free_port();
	server_conf(&sc, "sc", NULL);
	char url[64], map[200];
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", sc.port);
	shmkit_chan *prod = t_chan_open_ok(t_name("A.over"), SHMKIT_CHAN_PRODUCER, CHAN_CAP,
					   SHMKIT_SEG_CREATE);
	static unsigned char big[200000];
	t_msg_fill(big, sizeof big, 2);
	unsigned char small[64];
	t_msg_fill(small, sizeof small, 1);
	CHECK_OK(shmkit_chan_send(prod, small, sizeof small, 0));
	CHECK_OK(shmkit_chan_send(prod, big, sizeof big, 0));
	t_msg_fill(small, sizeof small, 3);
	CHECK_OK(shmkit_chan_send(prod, small, sizeof small, 0));
	struct bridge bc = {0};
	snprintf(bc.host, sizeof bc.host, "hc%d", pid_tag);
	snprintf(bc.log, sizeof bc.log, "%s/bc.log", dir);
	snprintf(map, sizeof map, "%s=JO%d", t_name("A.over"), pid_tag);
	char *ac[] = {(char *)tool, "bridge", "--server", url, "--host-id", bc.host, "--chan-out",
		      map, NULL};
	memcpy(bc.argv, ac, sizeof ac);
	bridge_start(&bc);
#define EXPECT2(cond, what)                                                                 \
	do {                                                                               \
		checks++;                                                                  \
		if (cond) {                                                                \
			printf("ok: %s\n", what);                                           \
		} else {                                                                   \
			printf("FAIL: %s\n", what);                                         \
			fails++;                                                           \
		}                                                                          \
	} while (0)
	EXPECT2(wait_until(10, &bc, "connected", 0), "server down: the bridge runs, not connected");
	t_nap_ms(1000);
	EXPECT2(kill(bc.pid, 0) == 0 && status_field(&bc, "forwarded") == 0,
		"server down: the bridge waits, nothing forwarded");
	server_start(&sc);
	EXPECT2(wait_until(20, &bc, "connected", 1), "server up: the bridge connects");
	EXPECT2(wait_until(20, &bc, "forwarded", 1),
		"server up: the message before the big one is stored");
	EXPECT2(wait_until(10, &bc, "oversized", 1), "oversized: counted once");
	t_nap_ms(1500);
	EXPECT2(status_field(&bc, "forwarded") == 1 && status_field(&bc, "oversized") == 1,
		"oversized: the mapping is held there (the one after it is not sent)");
	EXPECT2(log_has(bc.log, "larger than the server's max_payload (131072 bytes"),
		"oversized: a clear error on the bridge's stderr");
	bridge_kill(&bc, SIGTERM);
	/* The big message and the one after are still in the channel, whole. */
	shmkit_chan *cons = t_chan_open_ok(t_name("A.over"), SHMKIT_CHAN_CONSUMER, 0, 0);
	static unsigned char got[CHAN_CAP / 2];
	ssize_t r = shmkit_chan_recv(cons, got, sizeof got, SHMKIT_SEC);
	EXPECT2(r == (ssize_t)sizeof big && t_msg_check_bytes(got, (size_t)r, 2),
		"oversized: the message stays in the channel, whole");
	r = shmkit_chan_recv(cons, got, sizeof got, SHMKIT_SEC);
	EXPECT2(r == (ssize_t)sizeof small && t_msg_check_bytes(got, (size_t)r, 3),
		"oversized: the message after it stays too");
	shmkit_chan_close(cons);
	shmkit_chan_close(prod);
	backpressure(url, &checks, &fails);
	low_rate(url, &checks, &fails);
	mark_recovery(url, &checks, &fails);
	kill(sc.pid, SIGTERM);
	t_wait(sc.pid);

	char conf[128];
	snprintf(conf, sizeof conf, "%s/bad.conf", dir);
	FILE *f = fopen(conf, "w");
	CHECK(f);
	fprintf(f, "server nats://127.0.0.1:1\nchan-out /x\n");
	fclose(f);
	char *u1[] = {"--chan-out", "/x=bad/name", NULL};
	char *u2[] = {"--chan-out", "/x=a..b", NULL};
	char *u3[] = {"--chan-in", "a.*=/x", NULL};
	char *u4[] = {"--chan-out", "x=STREAM", NULL};
	char *u5[] = {"--stream-replicas", "9", "--chan-out", "/x=S", NULL};
	char *u6[] = {"--config", conf, NULL};
	char *u7[] = {"--stream-duplicates", "soon", "--chan-out", "/x=S", NULL};
	checks += 7;
	fails += !usage("bad stream name", "not a stream name", u1);
	fails += !usage("bad subject", "not a NATS subject", u2);
	fails += !usage("wildcard stream subject", "not a NATS subject", u3);
	fails += !usage("bad local channel", "a local channel is a name like /name", u4);
	fails += !usage("bad replicas", "expected 1 to 5", u5);
	fails += !usage("bad config mapping", "bad.conf:2: chan-out: expected LOCAL=STREAM", u6);
	fails += !usage("bad duplicates window", "expected seconds", u7);
	if (fails)
		dump(bc.log);
	printf("%d passed, %d failed\n", checks - fails, fails);
	return fails ? T_FAIL : T_PASS;
}

/* At any exit of the controller: the status segments that killed bridges left. */
static void unlink_status(void)
{
	if (getpid() != pid_tag)
		return; /* a child's exit */
	for (const char *h = "abcefgh"; *h; h++) {
		char name[64];
		snprintf(name, sizeof name, "/shmkit-bridge-h%c%d", *h, pid_tag);
		shmkit_seg_unlink(name, 0);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bridge_chan_test SHMKIT [exact|misc]\n");
		return T_FAIL;
	}
	tool = argv[1];
	const char *mode = argc > 2 ? argv[2] : "exact";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!in_path("nats-server")) {
		printf("SKIPPED: nats-server not found (apt-get install nats-server)\n");
		return T_SKIP;
	}
	char help[300];
	snprintf(help, sizeof help, "'%s' bridge --help >/dev/null 2>&1", tool);
	if (system(help) != 0) {
		printf("SKIPPED: shmkit was built without libnats: no bridge (apt-get install "
		       "libnats-dev)\n");
		return T_SKIP;
	}
	pid_tag = (int)getpid();
	atexit(unlink_status);
	snprintf(dir, sizeof dir, "/tmp/shmkit-jt-%d", pid_tag);
	CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
	sh = t_shared(sizeof *sh);
	signal(SIGPIPE, SIG_IGN);
	t_guard((unsigned)(120 + 60 * t_scale()), "bridge_chan_test");
	int r = !strcmp(mode, "misc") ? misc() : exact();
	char rm[128];
	snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
	if (r == T_PASS && system(rm) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return r;
}
