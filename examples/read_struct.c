/* read_struct — seed 001: read the struct write_struct left in System V shared memory,
 * then remove the segment.
 *
 *   read_struct [NAME]     default: /tmp/shmkit_example_struct */
#include <stdio.h>

#include <shmkit/blob.h>
#include "record.h"

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/tmp/shmkit_example_struct";
	struct record rec;
	shmkit_blob *blob;

	/* Opening checks the segment is a blob of exactly this struct's size. */
	int r = shmkit_blob_open(name, sizeof rec, 0, SHMKIT_SEG_SYSV, &blob);
	if (r < 0) {
		fprintf(stderr, "read_struct: %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	ssize_t n = shmkit_blob_read(blob, &rec, sizeof rec, NULL);
	if (n >= 0)
		r = shmkit_blob_delete(blob); /* like shmctl(IPC_RMID) in the seed */
	shmkit_blob_close(blob);
	if (n < 0 || r < 0) {
		fprintf(stderr, "read_struct: %s: %s\n", name, shmkit_strerror(n < 0 ? (int)n : r));
		return 1;
	}
	rec.text[sizeof rec.text - 1] = '\0';
	printf("read: ");
	record_print(&rec);
	return 0;
}
