/* write_struct — seed 001: write a struct into a System V shared-memory segment.
 *
 *   write_struct [NAME]     default: /tmp/shmkit_example_struct
 *
 * A blob is a typed snapshot: readers get the whole struct from one write, never a mix
 * of two. The segment stays after this program exits; read_struct reads and removes it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmkit/blob.h>
#include "record.h"

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/tmp/shmkit_example_struct";
	struct record rec = {.id = (int)getpid(), .value = 3.25};
	shmkit_blob *blob;

	snprintf(rec.text, sizeof rec.text, "struct from pid %d", (int)getpid());
	/* SHMKIT_SEG_SYSV: shmget() underneath, the key derived from the name. */
	int r = shmkit_blob_open(name, sizeof rec, 0600, SHMKIT_SEG_CREATE | SHMKIT_SEG_SYSV, &blob);
	if (r < 0) {
		fprintf(stderr, "write_struct: %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	r = shmkit_blob_write(blob, &rec, sizeof rec);
	shmkit_blob_close(blob);
	if (r < 0) {
		fprintf(stderr, "write_struct: %s: %s\n", name, shmkit_strerror(r));
		return 1;
	}
	printf("wrote: ");
	record_print(&rec);
	return 0;
}
