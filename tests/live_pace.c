/* Helper of tests/tool_live_test.sh: traffic of a known shape for `shmkit top`, `hz`,
 * `record` and `replay` to observe.
 *   live_pace chan NAME RATE SECONDS   a producer sending RATE messages/s of 64 bytes
 *                                      for SECONDS, a forked consumer draining them
 *   live_pace topic NAME RATE SECONDS  the same on a reliable topic, one subscriber
 *   live_pace blob NAME RATE SECONDS   RATE writes/s into a 64-byte blob
 *   live_pace publish NAME N           once a subscriber is listed, N checksummed
 *                                      messages (16 B to 3000 B) on a reliable topic
 *   live_pace expect NAME N            subscribes (says "subscribed" on stdout), then
 *                                      checks that exactly those N messages arrive, in
 *                                      order, every byte, before end-of-stream
 * The pacing keeps absolute deadlines (message i at start + i/RATE), so a late wake-up
 * is caught up and every window of a second holds RATE messages, give or take the
 * scheduler's delay. "started" goes to stdout once the first message is sent. Exit 0
 * when the receiving side got every message, 1 otherwise. */
#include "common.h"

#define PACE_LEN 64
#define MAX_LEN 3000

/* What a draining child receives from, and how many messages it must get. */
struct drain {
	const char *name;
	int topic;
	long total;
};

/* Every message, in order (each carries its number), then end-of-stream. */
static int drain(void *arg)
{
	const struct drain *d = arg;
	shmkit_chan *ch = NULL;
	shmkit_topic *sub = NULL;
	unsigned char buf[PACE_LEN];
	long got = 0, seq;
	ssize_t n;
	if (d->topic ? shmkit_topic_open(d->name, SHMKIT_TOPIC_SUBSCRIBER, 0, 0600, 0, &sub) < 0
		     : shmkit_chan_open(d->name, SHMKIT_CHAN_CONSUMER, 0, 0600, 0, &ch) < 0)
		return T_FAIL;
	while ((n = sub ? shmkit_topic_receive(sub, buf, sizeof buf, SHMKIT_FOREVER)
			   : shmkit_chan_recv(ch, buf, sizeof buf, SHMKIT_FOREVER)) > 0) {
		memcpy(&seq, buf, sizeof seq);
		if (n != PACE_LEN || seq != got++)
			return T_FAIL;
	}
	shmkit_chan_close(ch);
	shmkit_topic_close(sub);
	return n == 0 && got == d->total ? T_PASS : T_FAIL;
}

/* A reliable topic keeps nothing for a subscriber that is not there yet. */
static void wait_subscriber(const shmkit_topic *t)
{
	struct shmkit_topic_stats st;
	const int64_t give_up = t_now_ns() + 20 * SHMKIT_SEC;
	while (shmkit_topic_stats(t, &st) == 0 && st.subscribers == 0) {
		CHECK(t_now_ns() < give_up);
		t_nap_ms(5);
	}
}

static int pace(int kind, const char *name, double rate, double seconds)
{
	const int topic = kind == 't';
	shmkit_blob *blob = NULL;
	shmkit_chan *ch = NULL;
	shmkit_topic *t = NULL;
	unsigned char msg[PACE_LEN];
	pid_t child = 0;
	const long total = (long)(rate * seconds);
	struct drain d = {.name = name, .topic = topic, .total = total};
	if (topic) {
		CHECK_OK(shmkit_topic_open(name, SHMKIT_TOPIC_PUBLISHER, 0, 0600,
					   SHMKIT_SEG_CREATE | SHMKIT_TOPIC_RELIABLE, &t));
		child = t_fork(drain, &d);
		wait_subscriber(t);
	} else if (kind == 'b') {
		CHECK_OK(shmkit_blob_open(name, PACE_LEN, 0600, SHMKIT_SEG_CREATE, &blob));
	} else {
		CHECK_OK(shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, 0, 0600, SHMKIT_SEG_CREATE,
					  &ch));
		child = t_fork(drain, &d);
	}
	CHECK(child >= 0);
	memset(msg, 'x', sizeof msg);
	const int64_t start = t_now_ns();
	for (long i = 0; i < total; i++) {
		int64_t due = start + (int64_t)((double)i * 1e9 / rate);
		struct timespec at = {.tv_sec = (time_t)(due / SHMKIT_SEC),
				      .tv_nsec = (long)(due % SHMKIT_SEC)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
			;
		memcpy(msg, &i, sizeof i);
		if (topic)
			CHECK_OK(shmkit_topic_publish(t, msg, sizeof msg, SHMKIT_FOREVER));
		else if (blob)
			CHECK_OK(shmkit_blob_write(blob, msg, sizeof msg));
		else
			CHECK_OK(shmkit_chan_send(ch, msg, sizeof msg, SHMKIT_FOREVER));
		if (i == 0) {
			printf("started\n");
			fflush(stdout);
		}
	}
	shmkit_topic_close(t);
	shmkit_chan_close(ch);
	shmkit_blob_close(blob);
	if (child)
		CHECK_EQ(t_wait(child), T_PASS);
	return T_PASS;
}

static int publish(const char *name, long n)
{
	shmkit_topic *t;
	static unsigned char msg[MAX_LEN];
	CHECK_OK(shmkit_topic_open(name, SHMKIT_TOPIC_PUBLISHER, 0, 0600,
				   SHMKIT_SEG_CREATE | SHMKIT_TOPIC_RELIABLE, &t));
	wait_subscriber(t);
	for (long i = 0; i < n; i++) {
		size_t len = t_msg_len((uint64_t)i, MAX_LEN);
		t_msg_fill(msg, len, (uint64_t)i);
		CHECK_OK(shmkit_topic_publish(t, msg, len, SHMKIT_FOREVER));
	}
	shmkit_topic_close(t);
	return T_PASS;
}

static int expect(const char *name, long n)
{
	shmkit_topic *t;
	static unsigned char msg[MAX_LEN];
	CHECK_OK(shmkit_topic_open(name, SHMKIT_TOPIC_SUBSCRIBER, 0, 0600,
				   SHMKIT_SEG_CREATE | SHMKIT_TOPIC_RELIABLE, &t));
	printf("subscribed\n");
	fflush(stdout);
	long i = 0;
	ssize_t len;
	while ((len = shmkit_topic_receive(t, msg, sizeof msg, 30 * SHMKIT_SEC)) > 0) {
		if (i >= n || !t_msg_check(msg, (size_t)len, (uint64_t)i, MAX_LEN)) {
			fprintf(stderr, "expect: message %ld (%zd bytes) is not the one sent\n", i,
				len);
			return T_FAIL;
		}
		i++;
	}
	shmkit_topic_close(t);
	if (len != 0 || i != n) {
		fprintf(stderr, "expect: %ld of %ld messages, then %s\n", i, n,
			len ? shmkit_strerror((int)len) : "end-of-stream");
		return T_FAIL;
	}
	return T_PASS;
}

int main(int argc, char **argv)
{
	if (argc == 5 && (!strcmp(argv[1], "chan") || !strcmp(argv[1], "topic") ||
			  !strcmp(argv[1], "blob")))
		return pace(argv[1][0], argv[2], atof(argv[3]), atof(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "publish"))
		return publish(argv[2], atol(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "expect"))
		return expect(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: live_pace chan|topic|blob NAME RATE SECONDS | publish|expect NAME N\n");
	return 2;
}
