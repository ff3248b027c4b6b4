/* guest — connect to a stream that `owner` created, print its first line.
 *
 * Usage: guest [NAME]   (default: /shmkit_example_stream) */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <shmkit/shmfile.h>

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/shmkit_example_stream";
	char line[256];

	/* FSHM_GUEST opens an existing stream (ENOENT if there is no owner's stream);
	 * the mode is only used when creating, so 0 will do. Each open starts reading at
	 * the beginning of the stream. */
	FILE *f = fshm_open(name, 0, FSHM_GUEST);
	if (!f) {
		fprintf(stderr, "guest: cannot open stream %s: %s\n", name, strerror(errno));
		return 1;
	}

	/* Plain stdio works on it; fileno(f) would give a descriptor for read() too. */
	if (!fgets(line, sizeof line, f)) {
		fprintf(stderr, "guest: stream %s: %s\n", name,
			ferror(f) ? strerror(errno) : "empty");
		fclose(f);
		return 1;
	}
	line[strcspn(line, "\n")] = '\0';
	printf("read: %s\n", line);

	/* A guest's fclose() only disconnects; the stream lives on until its owner
	 * closes it. */
	fclose(f);
	return 0;
}
