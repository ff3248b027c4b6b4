/* server — seed 000's server: create (or open) the shmem segment named by a file path,
 * write a message into it, and keep it alive for a while so clients can read it.
 *
 *   server [PATH [SECONDS]]     defaults: /tmp/shmkit_example_shmem, 10 seconds
 *
 * On exit (time up, SIGINT or SIGTERM) it deletes the segment. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmkit/shmem.h>

#define SEGMENT_SIZE 256

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	char *path = argc > 1 ? argv[1] : "/tmp/shmkit_example_shmem";
	int seconds = argc > 2 ? atoi(argv[2]) : 10;
	char text[SEGMENT_SIZE] = {0};

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	/* Creates the file if needed, then the System V segment it names. */
	shmem_t *shm = shmem_open(path, SEGMENT_SIZE);
	if (!shm) {
		fprintf(stderr, "server: shmem_open(%s): %s\n", path, strerror(errno));
		return 1;
	}
	snprintf(text, sizeof text, "hello from server pid %d", (int)getpid());
	/* The whole write is seen by readers at once, never half of it. */
	if (shmem_write(&shm, text, sizeof text) < 0) {
		fprintf(stderr, "server: shmem_write(%s): %s\n", path, strerror(errno));
		shmem_close(&shm);
		return 1;
	}
	printf("wrote: %s\n", text);
	fflush(stdout);

	struct timespec tick = {0, 100000000};
	for (int i = 0; i < seconds * 10 && !stop; i++)
		nanosleep(&tick, NULL);

	/* Nobody can use the segment after this: their calls fail with EIDRM. */
	if (shmem_delete(&shm) < 0) {
		fprintf(stderr, "server: shmem_delete(%s): %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}
