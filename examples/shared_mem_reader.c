/* shared_mem_reader — seed 003: open the POSIX shared-memory object the writer made,
 * print its string, and remove it (shm_unlink), as the seed's reader does.
 *
 *   shared_mem_reader [NAME]     default: /shmkit_example_posix */
#include <stdio.h>
#include <string.h>

#include <shmkit/seg.h>

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/shmkit_example_posix";
	shmkit_seg *seg;

	int r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_RAW | SHMKIT_SEG_RDONLY, &seg);
	if (r < 0) {
		fprintf(stderr, "shared_mem_reader: %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	const char *mem = shmkit_seg_data(seg);
	size_t size = shmkit_seg_size(seg);
	printf("read: %.*s\n", (int)strnlen(mem, size), mem);
	shmkit_seg_close(seg);
	/* Comment this out to keep the object, as the seed suggests. */
	r = shmkit_seg_unlink(name, SHMKIT_SEG_RAW);
	if (r < 0) {
		fprintf(stderr, "shared_mem_reader: removing %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	return 0;
}
