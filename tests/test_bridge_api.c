/* The bridge library's API without a NATS server: argument checks (a table of bad
 * calls and the error each gets), subject syntax, and a bridge whose server is
 * unreachable: it opens anyway, says it is not connected, takes local messages
 * without ever blocking their publisher, publishes its status segment, and removes it
 * at close. Built only where libnats is found. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <shmkit/bridge.h>
#include <shmkit/shmkit.h>
#include "common.h"

/* A loopback port nobody listens on: the kernel picks a free one, then we let it go. */
static int dead_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	CHECK(s >= 0);
	CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
	close(s);
	return ntohs(a.sin_port);
}

static void subjects(void)
{
	static const struct {
		const char *s;
		int wild, ok;
	} t[] = {
	    {"a", 0, 1},       {"a.b.c", 0, 1},   {"a-b_c.d9", 0, 1}, {"", 0, 0},
	    {".a", 0, 0},      {"a.", 0, 0},      {"a..b", 0, 0},     {"a b", 0, 0},
	    {"a\tb", 0, 0},    {"a.*", 0, 0},     {"a.*", 1, 1},      {"a.>", 1, 1},
	    {">", 1, 1},       {"a.>.b", 1, 0},   {"a.b*", 1, 0},     {"a.>b", 1, 0},
	    {"*.*", 1, 1},     {"a.>", 0, 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (shmkit_bridge_valid_subject(t[i].s, t[i].wild) != t[i].ok) {
			fprintf(stderr, "subject '%s' wild %d: expected %d\n", t[i].s, t[i].wild,
				t[i].ok);
			exit(T_FAIL);
		}
	}
	CHECK_EQ(shmkit_bridge_valid_subject(NULL, 1), 0);
}

static void bad_calls(const char *url, const char *topic)
{
	const char *servers[] = {url};
	const char *empty[] = {""};
	struct shmkit_bridge_map good = {
	    .dir = SHMKIT_BRIDGE_TOPIC_OUT, .local = topic, .subject = "t.x"};
	struct shmkit_bridge_map wild_out = {
	    .dir = SHMKIT_BRIDGE_TOPIC_OUT, .local = topic, .subject = "t.*"};
	struct shmkit_bridge_map bad_dir = {.dir = 7, .local = topic, .subject = "t.x"};
	struct shmkit_bridge_map bad_local = {
	    .dir = SHMKIT_BRIDGE_TOPIC_IN, .local = "noslash", .subject = "t.x"};
	struct shmkit_bridge_map bad_subj = {
	    .dir = SHMKIT_BRIDGE_TOPIC_IN, .local = topic, .subject = "t..x"};
	struct shmkit_bridge_opts base = {.servers = servers, .nservers = 1, .maps = &good,
					  .nmaps = 1, .host_id = "t1"};
	struct {
		const char *what;
		struct shmkit_bridge_opts o;
		const char *says; /* in errbuf */
	} t[] = {
	    {"no server", base, "1 to 64 servers"},
	    {"empty server", base, "an empty server URL"},
	    {"no map", base, "1 to 4096 mappings"},
	    {"no host id", base, "bad host id"},
	    {"bad host id", base, "bad host id"},
	    {"long host id", base, "bad host id"},
	    {"wildcard out", base, "mapping 0: not a NATS subject (no wildcards on publish)"},
	    {"bad direction", base, "mapping 0: unknown direction"},
	    {"bad local", base, "mapping 0: a local topic is a name like /name"},
	    {"bad subject", base, "mapping 0: not a NATS subject"},
	    {"reserved", base, "reserved[] must be zero"},
	};
	t[0].o.nservers = 0;
	t[1].o.servers = empty;
	t[2].o.nmaps = 0;
	t[3].o.host_id = NULL;
	t[4].o.host_id = "a b";
	t[5].o.host_id = "0123456789012345678901234567890123456789012345678901234567890123456789";
	t[6].o.maps = &wild_out;
	t[7].o.maps = &bad_dir;
	t[8].o.maps = &bad_local;
	t[9].o.maps = &bad_subj;
	t[10].o.reserved[2] = 1;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		shmkit_bridge *b = (shmkit_bridge *)1;
		char err[200] = "left over";
		t[i].o.errbuf = err;
		t[i].o.errcap = sizeof err;
		int r = shmkit_bridge_open(&t[i].o, &b);
		if (r != -EINVAL || b != NULL || strncmp(err, t[i].says, strlen(t[i].says))) {
			fprintf(stderr, "%s: open returned %d (%s), errbuf '%s', want '%s'\n", t[i].what,
				r, shmkit_strerror(r), err, t[i].says);
			exit(T_FAIL);
		}
	}
	shmkit_bridge *b = NULL;
	CHECK_EQ(shmkit_bridge_open(NULL, &b), -EINVAL);
	CHECK_EQ(shmkit_bridge_open(&base, NULL), -EINVAL);
	CHECK_EQ(shmkit_bridge_run(NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_bridge_counts(NULL, 0, NULL), -EINVAL);
	CHECK_EQ(shmkit_bridge_close(NULL), 0);
	char buf[64];
	CHECK_EQ(shmkit_bridge_status_read("a/b", buf, sizeof buf), -EINVAL);
	CHECK_EQ(shmkit_bridge_status_read("t1", NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_bridge_status_read("nobody-here", buf, sizeof buf), -ENOENT);
}

/* TLS and credential options that cannot work: -EINVAL, and errbuf says why, naming
 * the file when a file is the reason. */
static void bad_credentials(const char *url, const char *topic)
{
	const char *servers[] = {url};
	struct shmkit_bridge_map good = {
	    .dir = SHMKIT_BRIDGE_TOPIC_OUT, .local = topic, .subject = "t.x"};
	char junk[] = "/tmp/shmkit-bridge-junk-XXXXXX"; /* a file that is no PEM */
	int fd = mkstemp(junk);
	CHECK(fd >= 0);
	CHECK(write(fd, "not a certificate\n", 18) == 18);
	close(fd);
	char err[512];
	struct shmkit_bridge_opts base = {.servers = servers, .nservers = 1, .maps = &good,
					  .nmaps = 1, .host_id = "t2", .errbuf = err,
					  .errcap = sizeof err};
	struct {
		const char *what, *says;
		struct shmkit_bridge_opts o;
	} t[] = {
	    {"unknown TLS flag", "unknown TLS flags", base},
	    {"certificate without key", "needs its key", base},
	    {"key without certificate", "needs its key", base},
	    {"creds and nkey", "exclude each other", base},
	    {"nkey without seed", "needs its seed file", base},
	    {"token and user", "exclude each other", base},
	    {"password without user", "needs a user", base},
	    {"missing CA file", "CA certificate file /nonexistent/ca.pem: No such file", base},
	    {"directory as CA file", "CA certificate file /: Is a directory", base},
	    {"device as key file", "key file /dev/null: not a regular file", base},
	    {"missing creds file", "credentials file /nonexistent/u.creds: No such file", base},
	    {"missing seed file", "NKey seed file /nonexistent/u.nk: No such file", base},
	    {"CA file that is no PEM", "CA certificate file /tmp/shmkit-bridge-junk-", base},
	};
	t[0].o.tls_flags = 1u << 5;
	t[1].o.tls_cert = junk;
	t[2].o.tls_key = junk;
	t[3].o.creds = junk;
	t[3].o.nkey = "UABC";
	t[3].o.nkey_seed = junk;
	t[4].o.nkey = "UABC";
	t[5].o.token = "x";
	t[5].o.user = "u";
	t[6].o.password = "p";
	t[7].o.tls_ca = "/nonexistent/ca.pem";
	t[8].o.tls_ca = "/";
	t[9].o.tls_cert = junk;
	t[9].o.tls_key = "/dev/null";
	t[10].o.creds = "/nonexistent/u.creds";
	t[11].o.nkey = "UABC";
	t[11].o.nkey_seed = "/nonexistent/u.nk";
	t[12].o.tls_ca = junk;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		shmkit_bridge *b = (shmkit_bridge *)1;
		err[0] = '\0';
		int r = shmkit_bridge_open(&t[i].o, &b);
		if (r != -EINVAL || b != NULL || !strstr(err, t[i].says)) {
			fprintf(stderr, "%s: open returned %d (%s), errbuf '%s'\n", t[i].what, r,
				shmkit_strerror(r), err);
			unlink(junk);
			exit(T_FAIL);
		}
	}
	t[7].o.errbuf = NULL; /* nowhere to say why: the same error */
	shmkit_bridge *b = (shmkit_bridge *)1;
	CHECK_EQ(shmkit_bridge_open(&t[7].o, &b), -EINVAL);
	CHECK(b == NULL);
	unlink(junk);
	char buf[8];
	CHECK_EQ(shmkit_bridge_last_error(NULL, buf, sizeof buf), -EINVAL);
}

/* A server that is not there: the bridge opens, waits, and never blocks the topic. */
static void unreachable(const char *url, const char *out_topic, const char *in_topic)
{
	const char *servers[] = {url};
	struct shmkit_bridge_map maps[] = {
	    {.dir = SHMKIT_BRIDGE_TOPIC_OUT, .local = out_topic, .subject = "t.out"},
	    {.dir = SHMKIT_BRIDGE_TOPIC_IN, .local = in_topic, .subject = "t.in.>"},
	};
	char id[64];
	snprintf(id, sizeof id, "test-%d", (int)getpid());
	struct shmkit_bridge_opts o = {.servers = servers, .nservers = 1, .maps = maps,
				       .nmaps = 2, .host_id = id};
	shmkit_bridge *b = NULL;
	CHECK_OK(shmkit_bridge_open(&o, &b));
	CHECK_EQ(shmkit_bridge_connected(b), 0);
	CHECK_EQ(shmkit_bridge_max_payload(b), 0);

	shmkit_topic *pub = NULL;
	CHECK_OK(shmkit_topic_open(out_topic, SHMKIT_TOPIC_PUBLISHER, 0, 0, 0, &pub));
	enum { N = 5000 }; /* 5000 x 1 KiB: five times the ring */
	static char msg[1024];
	int64_t t0 = t_now_ns();
	for (int i = 0; i < N; i++) {
		memset(msg, 'a' + i % 26, sizeof msg);
		CHECK_OK(shmkit_topic_publish(pub, msg, sizeof msg, 0)); /* timeout 0: never waits */
		if (i % 500 == 0)
			CHECK_OK(shmkit_bridge_run(b, 0));
	}
	double secs = (double)(t_now_ns() - t0) / 1e9;
	printf("unreachable: %d publishes in %.3f s while the server is down\n", N, secs);
	for (int i = 0; i < 5; i++)
		CHECK_OK(shmkit_bridge_run(b, 60 * SHMKIT_MSEC));

	struct shmkit_bridge_counts c;
	CHECK_OK(shmkit_bridge_counts(b, 0, &c));
	/* Every message is accounted for: handed to nats.c (its reconnect buffer) or lost
	 * to the topic's overflow, which we let happen by publishing faster than it drains. */
	CHECK_EQ(c.forwarded + c.dropped, N);
	CHECK_EQ(c.pending, 0);
	CHECK_EQ(c.oversized, 0);
	CHECK_EQ(shmkit_bridge_counts(b, 2, &c), -EINVAL);

	char text[4096];
	ssize_t n = shmkit_bridge_status_read(id, text, sizeof text);
	CHECK(n > 0);
	char head[128];
	snprintf(head, sizeof head, "shmkit-bridge 1 %s 0 - ", id);
	CHECK(!strncmp(text, head, strlen(head)));
	long long written = atoll(text + strlen(head)), now_ms;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	CHECK(written <= now_ms && written > now_ms - 5000); /* rewritten by run() */
	char line[512];
	snprintf(line, sizeof line, "\nout %s t.out forwarded ", out_topic);
	CHECK(strstr(text, line));
	snprintf(line, sizeof line, "\nin %s t.in.> forwarded 0 dropped 0 ", in_topic);
	CHECK(strstr(text, line));
	/* Why it is not connected: nats.c's reason, in the status's last line too. */
	char why[256];
	n = shmkit_bridge_last_error(b, why, sizeof why);
	CHECK(n > 0 && (size_t)n == strlen(why));
	printf("unreachable: last error '%s'\n", why);
	char *err_line = strstr(text, "\nerror ");
	CHECK(err_line && strchr(err_line + 1, '\n') && !strchr(err_line + 1, '\n')[1]);
	CHECK_EQ(shmkit_bridge_last_error(b, why, 4), 3); /* truncated, NUL-terminated */
	CHECK_EQ(shmkit_bridge_last_error(b, why, 0), -EINVAL);

	shmkit_topic_close(pub);
	CHECK_OK(shmkit_bridge_close(b));
	CHECK_EQ(shmkit_bridge_status_read(id, text, sizeof text), -ENOENT);
}

int main(void)
{
	char url[64];
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", dead_port());
	const char *out_topic = t_name("bridge-out"), *in_topic = t_name("bridge-in");
	T_RUN(subjects());
	T_RUN(bad_calls(url, out_topic));
	T_RUN(bad_credentials(url, out_topic));
	T_RUN(unreachable(url, out_topic, in_topic));
	return T_PASS;
}
