/* shared_mem_writer — seed 003: create a POSIX shared-memory object (shm_open,
 * ftruncate, mmap underneath) and write a string into it.
 *
 *   shared_mem_writer [NAME]     default: /shmkit_example_posix
 *
 * SHMKIT_SEG_RAW makes a plain object with no shmkit header, exactly what the seed's
 * programs (or Python's multiprocessing.shared_memory) create and read. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmkit/seg.h>

#define SEGMENT_SIZE 4096

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/shmkit_example_posix";
	shmkit_seg *seg;

	int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, SEGMENT_SIZE, 0600,
				SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &seg);
	if (r < 0) {
		fprintf(stderr, "shared_mem_writer: %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	char *mem = shmkit_seg_data(seg);
	snprintf(mem, SEGMENT_SIZE, "hello from writer pid %d", (int)getpid());
	printf("wrote: %s\n", mem);
	/* Unmaps and closes; the object stays in /dev/shm for the reader. */
	shmkit_seg_close(seg);
	return 0;
}
