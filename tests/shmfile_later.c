/* shmfile_later — a program as its user wrote it for shmfile 1.1, using what the
 * releases after seed 002 added (fshm_create, fshm_guest_open, fshm_chmod, fshm_chgrp,
 * FSHM_PERSIST, shmfile_get_version). It is built against shmkit unchanged but for the
 * include line, with the compiler flags a user would pick, and test_shmfile runs it.
 *
 * Usage:
 *   shmfile_later version             print "shmfile version: X.Y.Z<extra>"
 *   shmfile_later --version           shmfile's own banner, as its examples print it
 *   shmfile_later publish NAME TEXT   create NAME to outlive us (FSHM_PERSIST),
 *                                     readable by all, write TEXT, close, exit
 *   shmfile_later serve NAME TEXT     create NAME (plain owner), write TEXT, print
 *                                     "ready", close (destroying it) at EOF on stdin
 *   shmfile_later read NAME           open as guest, print "read: CONTENT"
 *   shmfile_later append NAME TEXT    open as guest, append TEXT
 *   shmfile_later destroy NAME        fshm_force_destroy
 * Exits 0, or 1 with a message on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmkit/shmfile.h> /* was: #include "shmfile.h" */

/* Not in shmfile.h: its example programs declared it themselves, like this. */
void _fshm_printCopyrightVersion(void);

static int fail(const char *what, const char *name)
{
	fprintf(stderr, "shmfile_later: %s %s: %s\n", what, name, strerror(errno));
	return 1;
}

/* fail() once the stream is open: say why (errno as the failed call left it), then
 * close the stream, as a program that cleans up on its error paths does. */
static int fail_close(FILE *f, const char *what, const char *name)
{
	fail(what, name);
	fclose(f);
	return 1;
}

static int write_text(FILE *f, const char *text)
{
	/* fprintf, then the descriptor: both must reach the same stream. */
	size_t half = strlen(text) / 2;
	if (fprintf(f, "%.*s", (int)half, text) < 0)
		return -1;
	if (fflush(f) != 0)
		return -1;
	size_t rest = strlen(text + half);
	if (write(fileno(f), text + half, rest) != (ssize_t)rest)
		return -1;
	return 0;
}

int main(int argc, char *argv[])
{
	FILE *f;
	char buf[512];
	unsigned char major, minor, patch;
	const char *extra;

	if (argc == 2 && strcmp(argv[1], "version") == 0) {
		shmfile_get_version(&major, &minor, &patch, &extra);
		printf("shmfile version: %hhu.%hhu.%hhu%s\n", major, minor, patch, extra);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		_fshm_printCopyrightVersion();
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "publish") == 0) {
		errno = 0;
		f = fshm_open(argv[2], 0600, FSHM_OWNER | FSHM_PERSIST);
		if (!f && errno == EEXIST) {
			fshm_force_destroy(argv[2]);
			f = fshm_open(argv[2], 0600, FSHM_OWNER | FSHM_PERSIST);
		}
		if (!f)
			return fail("cannot create", argv[2]);
		/* Open it up once it is written: group and others may read. */
		if (write_text(f, argv[3]) != 0)
			return fail_close(f, "cannot write", argv[2]);
		if (fshm_chgrp(f, getegid()) != 0)
			return fail_close(f, "cannot chgrp", argv[2]);
		if (fshm_chmod(f, S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH) != 0)
			return fail_close(f, "cannot chmod", argv[2]);
		fclose(f);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "serve") == 0) {
		f = fshm_create(argv[2], 0644);
		if (!f)
			return fail("cannot create", argv[2]);
		if (write_text(f, argv[3]) != 0)
			return fail_close(f, "cannot write", argv[2]);
		printf("ready\n");
		fflush(stdout);
		while (fgets(buf, sizeof buf, stdin))
			;
		fclose(f);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "read") == 0) {
		f = fshm_guest_open(argv[2]);
		if (!f)
			return fail("cannot open", argv[2]);
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = '\0';
		printf("read: %s\n", buf);
		fclose(f);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "append") == 0) {
		f = fshm_guest_open(argv[2]);
		if (!f)
			return fail("cannot open", argv[2]);
		if (fseek(f, 0, SEEK_END) != 0 || write_text(f, argv[3]) != 0)
			return fail_close(f, "cannot append to", argv[2]);
		fclose(f);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "destroy") == 0) {
		if (fshm_force_destroy(argv[2]) != 0)
			return fail("cannot destroy", argv[2]);
		return 0;
	}
	fprintf(stderr, "usage: shmfile_later version | publish NAME TEXT | serve NAME TEXT"
			" | read NAME | append NAME TEXT | destroy NAME | --version\n");
	return 1;
}
