/* client — seed 000's client: open the shmem segment named by a file path and print
 * what the server wrote.
 *
 *   client [PATH]     default: /tmp/shmkit_example_shmem */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <shmkit/shmem.h>

#define SEGMENT_SIZE 256

int main(int argc, char **argv)
{
	char *path = argc > 1 ? argv[1] : "/tmp/shmkit_example_shmem";
	char text[SEGMENT_SIZE];

	shmem_t *shm = shmem_open(path, SEGMENT_SIZE);
	if (!shm) {
		fprintf(stderr, "client: shmem_open(%s): %s\n", path, strerror(errno));
		return 1;
	}
	/* The buffer must hold the whole segment. */
	if (shmem_read(&shm, text, sizeof text) < 0) {
		fprintf(stderr, "client: shmem_read(%s): %s\n", path, strerror(errno));
		shmem_close(&shm);
		return 1;
	}
	text[sizeof text - 1] = '\0';
	printf("read: %s\n", text);
	shmem_close(&shm);
	return 0;
}
