/* Channels, waiting: an idle consumer blocked in recv uses (almost) no CPU, and the
 * pollable descriptor is readable when a message arrives from another process, at
 * end-of-stream and when the producer dies. */
#include "chan_common.h"

/* An idle consumer blocked in recv uses (almost) no CPU. */
static void test_idle_cpu(void)
{
	const char *name = track("idle", 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	struct shared *sh = shared_new();
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
		unsigned char buf[16];
		struct rusage a, b;
		getrusage(RUSAGE_SELF, &a);
		atomic_store(&sh->flag, 1);
		ssize_t r = shmkit_chan_recv(c, buf, sizeof buf, -1);
		getrusage(RUSAGE_SELF, &b);
		int64_t ns = ((int64_t)(b.ru_utime.tv_sec - a.ru_utime.tv_sec) * 1000000 +
			      (b.ru_utime.tv_usec - a.ru_utime.tv_usec) +
			      (int64_t)(b.ru_stime.tv_sec - a.ru_stime.tv_sec) * 1000000 +
			      (b.ru_stime.tv_usec - a.ru_stime.tv_usec)) * 1000;
		atomic_store(&sh->cpu_ns, ns);
		shmkit_chan_close(c);
		_exit(r == 1 ? 0 : 1);
	}
	while (!atomic_load(&sh->flag) || stats_of(p).consumer_sleeps == 0)
		t_nap_ms(1);
	int64_t t = t_now_ns();
	t_nap_ms(1000);
	CHECK_OK(shmkit_chan_send(p, "x", 1, 0));
	CHECK_EQ(t_wait(pid), 0);
	int64_t cpu = atomic_load(&sh->cpu_ns);
	fprintf(stderr, "idle consumer: %.2f ms CPU over %.2f s blocked\n", cpu / 1e6,
		(double)(t_now_ns() - t) / 1e9);
	CHECK(cpu < (SANITIZED ? 60 : 20) * SHMKIT_MSEC);
	shmkit_chan_close(p);
	munmap(sh, sizeof *sh);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* The pollable descriptor: readable when a message arrives from another process, at
 * end-of-stream, and when the producer dies. */
static void test_poll_fd(void)
{
	const char *name = track("pollfd", 0);
	int fds0 = t_count_fds();
	shmkit_chan *c = t_chan_open_ok(name, C, 1 << 16, C_CREATE);
	int fd = shmkit_chan_fd(c);
	CHECK(fd >= 0);
	CHECK_EQ(shmkit_chan_fd(c), fd);
	int to_child[2], from_child[2];
	CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
	const int rounds = 300;
	for (int variant = 0; variant < 2; variant++) {
		pid_t pid = t_fork_raw(); /* dies with us: a failed check never leaves it blocked */
		CHECK(pid >= 0);
		if (pid == 0) {
			shmkit_chan *p = t_chan_open_ok(name, P, 0, 0);
			char b = 'r';
			CHECK(write(from_child[1], &b, 1) == 1);
			for (int i = 0; i < rounds; i++) {
				CHECK(read(to_child[0], &b, 1) == 1);
				int k = 1 + i % 3;
				for (int j = 0; j < k; j++)
					CHECK_OK(shmkit_chan_send(p, &i, sizeof i, 0));
			}
			CHECK(read(to_child[0], &b, 1) == 1);
			if (variant == 0)
				shmkit_chan_close(p);
			else
				for (;;)
					pause();
			_exit(0);
		}
		unsigned char buf[64];
		char ready;
		CHECK(read(from_child[0], &ready, 1) == 1);
		for (int i = 0; i < rounds; i++) {
			CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
			/* The producer shares our pid namespace: watched through a pidfd (where
			 * the kernel, or valgrind, has pidfd_open; else through the timer). */
			if (i == 0)
				CHECK_EQ(t_count_pidfds(), t_have_pidfd());
			/* Nothing to do: not readable (the timer that stands in for a pidfd
			 * makes it readable every tick, by design). */
			if (i % 50 == 0 && t_have_pidfd())
				CHECK(!poll_in(fd, 0));
			CHECK(write(to_child[1], "g", 1) == 1);
			int k = 0;
			while (k < 1 + i % 3) {
				/* Readable for every batch: the first poll may come between messages. */
				CHECK(poll_in(fd, 5000));
				ssize_t r;
				while ((r = shmkit_chan_recv(c, buf, sizeof buf, 0)) > 0) {
					CHECK_EQ(r, sizeof i);
					int v;
					memcpy(&v, buf, sizeof v);
					CHECK_EQ(v, i);
					k++;
				}
				CHECK_EQ(r, -EAGAIN);
			}
			CHECK_EQ(k, 1 + i % 3);
		}
		CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), -EAGAIN);
		CHECK(write(to_child[1], "e", 1) == 1);
		if (variant == 1)
			kill(pid, SIGKILL); /* instead of letting it close */
		int64_t t = t_now_ns();
		CHECK(poll_in(fd, 5000));
		ssize_t r = shmkit_chan_recv(c, buf, sizeof buf, 0);
		if (variant == 1) {
			/* Readable at once through the pidfd (or within a timer tick). */
			CHECK(t_now_ns() - t < SHMKIT_SEC);
			/* The pidfd may turn readable a hair before /proc shows the zombie:
			 * the descriptor stays readable, so poll and look again. */
			for (int i = 0; r == -EAGAIN && i < 100; i++) {
				(void)poll_in(fd, 100);
				r = shmkit_chan_recv(c, buf, sizeof buf, 0);
			}
		}
		CHECK_EQ(r, variant == 0 ? 0 : -EPIPE);
		/* The condition lasts, and so does readability. */
		CHECK(poll_in(fd, 0));
		CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), variant == 0 ? 0 : -EPIPE);
		CHECK_EQ(t_wait(pid), variant == 0 ? 0 : 128 + SIGKILL);
	}
	shmkit_chan_close(c);
	close(to_child[0]);
	close(to_child[1]);
	close(from_child[0]);
	close(from_child[1]);
	CHECK_EQ(t_count_fds(), fds0);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

int main(void)
{
	chan_test_init();
	test_idle_cpu();
	test_poll_fd();
	return T_PASS;
}
