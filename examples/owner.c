/* owner — create a shared-memory stream, write a line into it, and keep it alive for a
 * while so that `guest` can read it. Closing the stream as its owner destroys it.
 *
 * Usage: owner [NAME [SECONDS]]   (defaults: /shmkit_example_stream, 10)
 * Stops early on SIGTERM or SIGINT, still closing (and so destroying) the stream. */
#define _POSIX_C_SOURCE 200809L /* sigaction(), sleep() under -std=c11 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmkit/shmfile.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/shmkit_example_stream";
	int seconds = argc > 2 ? atoi(argv[2]) : 10;
	char text[64];
	FILE *f;

	/* Install the handlers before the stream exists, so that a signal can never kill
	 * us between creating and destroying it. No SA_RESTART: sleep() must return. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	/* FSHM_OWNER creates the stream with exactly this mode; it fails with EEXIST if
	 * it exists. An owner that crashed leaves its stream behind, so, as the seed
	 * suggests, remove such a leftover and try once more. */
	errno = 0;
	f = fshm_open(name, 0600, FSHM_OWNER);
	if (!f && errno == EEXIST) {
		fshm_force_destroy(name);
		f = fshm_open(name, 0600, FSHM_OWNER);
	}
	if (!f) {
		fprintf(stderr, "owner: cannot create stream %s: %s\n", name, strerror(errno));
		return 1;
	}

	/* An ordinary FILE*. It is unbuffered, so the bytes are in shared memory as soon
	 * as fwrite() returns: no fflush() needed. */
	snprintf(text, sizeof text, "hello from owner pid %d", (int)getpid());
	if (fwrite(text, 1, strlen(text), f) != strlen(text) || fputc('\n', f) == EOF) {
		fprintf(stderr, "owner: cannot write to stream %s: %s\n", name, strerror(errno));
		fclose(f);
		return 1;
	}
	printf("wrote: %s\n", text);
	fflush(stdout);

	/* Keep the stream alive so that guests can connect. */
	for (int i = 0; i < seconds && !stop; i++)
		sleep(1);

	/* The owner's fclose() destroys the stream: new guests get ENOENT. */
	if (fclose(f) != 0) {
		fprintf(stderr, "owner: closing stream %s: %s\n", name, strerror(errno));
		return 1;
	}
	return 0;
}
