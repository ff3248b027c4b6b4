/* The bridge writes what it forwarded when its out topics run dry, instead of leaving
 * it in nats.c's buffer for nats.c's flusher (which writes on whole milliseconds and
 * made round trips through two bridges a millisecond longer; BENCHMARKS.md, "Bridge").
 * It does so with natsConnection_FlushTimeout(), which writes the buffer and a PING.
 *
 * The server is a fake one, on loopback, that speaks just enough of the NATS protocol
 * for nats.c to connect (INFO, then PONG to the client's PING), so the test sees every
 * byte the bridge writes. nats.c sends no PING of its own for two minutes (its ping
 * interval), so a PING after the message can only be the bridge's flush: without it,
 * none ever comes, and the test fails however long it waits. Then a bridge that moves
 * nothing must not flush: no byte at all during an idle run(). Built only where libnats
 * is found. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <shmkit/bridge.h>
#include <shmkit/shmkit.h>
#include "common.h"

#define WAIT_MS 5000 /* a bound for bytes on their way over loopback, never a measurement */

struct fake {
	int lfd, fd, port;
	char got[8192]; /* everything the bridge wrote, NUL-terminated */
	size_t len;
};

/* Reads what is there (waiting up to @ms for the first byte). Returns bytes read. */
static size_t fake_read(struct fake *f, int ms)
{
	struct pollfd p = {.fd = f->fd, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return 0;
	ssize_t n = recv(f->fd, f->got + f->len, sizeof f->got - 1 - f->len, MSG_DONTWAIT);
	CHECK(n > 0);
	f->len += (size_t)n;
	f->got[f->len] = '\0';
	return (size_t)n;
}

/* Reads until @what appears after @from, for at most WAIT_MS. Returns its offset, or -1. */
static long fake_until(struct fake *f, size_t from, const char *what)
{
	int64_t end = t_now_ns() + (int64_t)WAIT_MS * 1000000;
	for (;;) {
		char *hit = strstr(f->got + from, what);
		if (hit)
			return hit - f->got;
		if (t_now_ns() >= end || f->len == sizeof f->got - 1)
			return -1;
		fake_read(f, 100);
	}
}

/* The server's side of a connect: INFO, the client's CONNECT and PING, PONG. On a
 * thread: shmkit_bridge_open() connects, and waits for it, on the caller's. */
static void *fake_accept(void *arg)
{
	struct fake *f = arg;
	char info[512];
	f->fd = accept(f->lfd, NULL, NULL);
	CHECK(f->fd >= 0);
	int n = snprintf(info, sizeof info,
			 "INFO {\"server_id\":\"fake\",\"version\":\"2.9.10\",\"host\":\"127.0.0.1\","
			 "\"port\":%d,\"headers\":true,\"max_payload\":1048576,\"proto\":1}\r\n",
			 f->port);
	CHECK(write(f->fd, info, (size_t)n) == n);
	CHECK(fake_until(f, 0, "PING\r\n") >= 0);
	CHECK(write(f->fd, "PONG\r\n", 6) == 6);
	return NULL;
}

/* The bridge's status segment, removed by shmkit_bridge_close(); and at exit, when a
 * CHECK failed before it. */
static char status_name[64];
static void status_cleanup(void)
{
	shmkit_seg_unlink(status_name, SHMKIT_SEG_RAW);
}

int main(void)
{
	struct fake f = {.fd = -1};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	f.lfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(f.lfd >= 0);
	CHECK(bind(f.lfd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(listen(f.lfd, 1) == 0);
	CHECK(getsockname(f.lfd, (struct sockaddr *)&a, &alen) == 0);
	f.port = ntohs(a.sin_port);

	char url[64], host[32];
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", f.port);
	snprintf(host, sizeof host, "bf%d", (int)getpid());
	snprintf(status_name, sizeof status_name, "/shmkit-bridge-%s", host);
	atexit(status_cleanup);
	const char *servers[] = {url};
	const char *topic = t_name("bflush");
	struct shmkit_bridge_map map = {
	    .dir = SHMKIT_BRIDGE_TOPIC_OUT, .local = topic, .subject = "t.flush"};
	struct shmkit_bridge_opts o = {.servers = servers, .nservers = 1, .maps = &map,
				       .nmaps = 1, .host_id = host};
	pthread_t th;
	shmkit_bridge *b = NULL;
	CHECK(pthread_create(&th, NULL, fake_accept, &f) == 0);
	CHECK_OK(shmkit_bridge_open(&o, &b));
	CHECK(pthread_join(th, NULL) == 0);
	CHECK(shmkit_bridge_connected(b));
	size_t mark = f.len; /* the handshake's bytes */

	shmkit_topic *pub = NULL;
	CHECK_OK(shmkit_topic_open(topic, SHMKIT_TOPIC_PUBLISHER, 0, 0, 0, &pub));
	CHECK_OK(shmkit_topic_publish(pub, "hello", 5, 0));
	/* One pass at a time until it is forwarded (the topic's descriptor is made by the
	 * first pass; the publish may come before). */
	struct shmkit_bridge_counts c = {0};
	int64_t end = t_now_ns() + (int64_t)WAIT_MS * 1000000;
	while (c.forwarded == 0 && t_now_ns() < end) {
		CHECK_OK(shmkit_bridge_run(b, 10 * 1000000));
		CHECK_OK(shmkit_bridge_counts(b, 0, &c));
	}
	CHECK_EQ(c.forwarded, 1);

	/* The message, then the flush's PING. */
	long msg = fake_until(&f, mark, "HPUB t.flush ");
	CHECK(msg >= 0);
	CHECK(fake_until(&f, (size_t)msg, "hello\r\n") >= 0);
	long ping = fake_until(&f, (size_t)msg, "PING\r\n");
	if (ping < 0) {
		fprintf(stderr, "no PING after the forwarded message: the bridge left it to "
				"nats.c's flusher; the server got:\n%s\n", f.got + mark);
		return T_FAIL;
	}
	CHECK(write(f.fd, "PONG\r\n", 6) == 6);

	/* Idle: a run that moves nothing writes nothing (no PING, no flush). */
	mark = f.len;
	CHECK_OK(shmkit_bridge_run(b, 300 * 1000000));
	CHECK_EQ(fake_read(&f, 0), 0);
	CHECK_EQ(f.len, mark);

	/* Each pass that sends flushes again. nats.c's own flusher may write a message
	 * first when this thread is descheduled between the publish and the flush (seen
	 * under ASan on a loaded machine): then nothing is buffered and no PING is due. So
	 * up to five passes, one message each: at least one must end with a PING. */
	long again_ping = -1;
	for (int k = 0; k < 5 && again_ping < 0; k++) {
		char text[16];
		int tn = snprintf(text, sizeof text, "again%d", k);
		uint64_t before = c.forwarded;
		mark = f.len;
		CHECK_OK(shmkit_topic_publish(pub, text, (size_t)tn, 0));
		end = t_now_ns() + (int64_t)WAIT_MS * 1000000;
		while (c.forwarded == before && t_now_ns() < end) {
			CHECK_OK(shmkit_bridge_run(b, 10 * 1000000));
			CHECK_OK(shmkit_bridge_counts(b, 0, &c));
		}
		CHECK_EQ(c.forwarded, before + 1);
		char line[24];
		snprintf(line, sizeof line, "%s\r\n", text);
		msg = fake_until(&f, mark, line);
		CHECK(msg >= 0);
		again_ping = fake_until(&f, (size_t)msg, "PING\r\n");
	}
	CHECK(again_ping >= 0);

	/* Gone before the bridge closes: close() would wait a second for a PONG. */
	close(f.fd);
	close(f.lfd);
	shmkit_topic_close(pub);
	CHECK_OK(shmkit_bridge_close(b));
	printf("test_bridge_flush: ok\n");
	return T_PASS;
}
