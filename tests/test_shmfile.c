/* The calls shmfile's releases after seed 002 added: fshm_create() and
 * fshm_guest_open() across fork(), FSHM_PERSIST (the owner's close keeps the stream,
 * without it the close destroys it), fshm_chmod()/fshm_chgrp() and their refusals as
 * uid 65534, shmfile_get_version(), and a program written for shmfile 1.1
 * (tests/shmfile_later.c, which also calls _fshm_printCopyrightVersion() as shmfile's
 * examples do) run as its user would. */
#include <grp.h>
#include <sys/stat.h>

#include <shmkit/version.h>

#include "common.h"

#define NOBODY 65534

/* 1 if the stream (a name with no inner '/', so its object has the same name) exists. */
static int stream_exists(const char *name)
{
	char path[300];
	struct stat st;
	snprintf(path, sizeof path, "/dev/shm%s", name);
	if (stat(path, &st) == 0)
		return 1;
	CHECK_EQ(errno, ENOENT);
	return 0;
}

static void put(FILE *f, const char *s)
{
	CHECK_EQ(fwrite(s, 1, strlen(s), f), strlen(s));
}

/* The whole stream, read from the start. */
static const char *content(FILE *f)
{
	static char buf[256];
	CHECK_EQ(fseek(f, 0, SEEK_SET), 0);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	return buf;
}

static void expect_str(const char *got, const char *want)
{
	if (strcmp(got, want)) {
		fprintf(stderr, "got \"%s\", expected \"%s\"\n", got, want);
		exit(T_FAIL);
	}
}

/* The errno a call returning NULL must leave; closes the FILE if it did not fail. */
static int null_errno(FILE *f)
{
	int e = errno;
	if (f) {
		fclose(f);
		return 0;
	}
	return e;
}

static int drop_to_nobody(void)
{
	return setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY) ? -1 : 0;
}

static void test_bad_args(void)
{
	char valid[128], missing[128];
	snprintf(valid, sizeof valid, "%s", t_name("bad"));
	snprintf(missing, sizeof missing, "%s", t_name("bad-missing"));

	/* One row per refused call; each must leave nothing behind. */
	errno = 0;
	CHECK_EQ(null_errno(fshm_create(NULL, 0600)), EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_create("", 0600)), EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_create(valid, 04755)), EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_create(valid, 01777)), EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_guest_open(NULL)), EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_guest_open("/")), EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_guest_open(missing)), ENOENT);
	errno = 0;
	CHECK_EQ(null_errno(fshm_open(valid, 0600, FSHM_PERSIST)), EINVAL); /* no role */
	errno = 0;
	CHECK_EQ(null_errno(fshm_open(valid, 0600, FSHM_OWNER | FSHM_GUEST | FSHM_PERSIST)),
		 EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_open(valid, 0600, FSHM_OWNER | FSHM_PERSIST | 8)), EINVAL);
	errno = 0;
	CHECK_EQ(null_errno(fshm_open(missing, 0600, FSHM_GUEST | FSHM_PERSIST)), ENOENT);
	/* The core refuses PERSIST for a guest, whose close never removes anyway. */
	FILE *f = (FILE *)1;
	CHECK_EQ(shmkit_stream_open(valid, 0600, SHMKIT_STREAM_GUEST | SHMKIT_STREAM_PERSIST, &f),
		 -EINVAL);
	CHECK(f == NULL);
	CHECK(!stream_exists(valid));

	errno = 0;
	CHECK_EQ(fshm_chmod(NULL, 0600), -1);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK_EQ(fshm_chgrp(NULL, 0), -1);
	CHECK_EQ(errno, EINVAL);

	/* FILEs that are not streams: no descriptor, a regular file, a character device.
	 * Their modes must not change. */
	char mem[16];
	FILE *m = fmemopen(mem, sizeof mem, "r+");
	CHECK(m != NULL);
	errno = 0;
	CHECK_EQ(fshm_chmod(m, 0600), -1);
	CHECK_EQ(errno, EBADF);
	errno = 0;
	CHECK_EQ(fshm_chgrp(m, 0), -1);
	CHECK_EQ(errno, EBADF);
	fclose(m);
	FILE *t = tmpfile();
	CHECK(t != NULL);
	struct stat before, after;
	CHECK_EQ(fstat(fileno(t), &before), 0);
	errno = 0;
	CHECK_EQ(fshm_chmod(t, 0777), -1);
	CHECK_EQ(errno, EBADF);
	errno = 0;
	CHECK_EQ(fshm_chgrp(t, before.st_gid + 1), -1);
	CHECK_EQ(errno, EBADF);
	CHECK_EQ(fstat(fileno(t), &after), 0);
	CHECK_EQ(after.st_mode, before.st_mode);
	CHECK_EQ(after.st_gid, before.st_gid);
	fclose(t);
	FILE *n = fopen("/dev/null", "r");
	CHECK(n != NULL);
	errno = 0;
	CHECK_EQ(fshm_chmod(n, 0600), -1);
	CHECK_EQ(errno, EBADF);
	fclose(n);

	/* A stream refuses a mode beyond permission bits and keeps its own. */
	f = fshm_create(valid, 0600);
	CHECK(f != NULL);
	static const mode_t bad_modes[] = {01000, 02600, 04600, 07777, 010000};
	for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
		errno = 0;
		CHECK_EQ(fshm_chmod(f, bad_modes[i]), -1);
		CHECK_EQ(errno, EINVAL);
	}
	struct stat st;
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(fclose(f), 0);
	CHECK(!stream_exists(valid));
}

static int guest_child(void *p)
{
	const char *name = p;
	FILE *g = fshm_guest_open(name);
	if (!g)
		return 2;
	char buf[32] = {0};
	if (fread(buf, 1, sizeof buf - 1, g) != 6 || strcmp(buf, "owner:"))
		return 3;
	/* Append through the descriptor, then the FILE: one position for both. */
	if (write(fileno(g), "gu", 2) != 2)
		return 4;
	if (fwrite("est", 1, 3, g) != 3)
		return 5;
	if (fclose(g) != 0)
		return 6;
	return 0;
}

/* fshm_create() in the parent, fshm_guest_open() in a child: the guest reads what the
 * owner wrote and writes back; its close leaves the stream; the owner's destroys it. */
static void test_create_guest(void)
{
	const char *name = t_name("create");
	mode_t old = umask(077);
	FILE *f = fshm_create(name, 0640);
	umask(old);
	CHECK(f != NULL);
	struct stat st;
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0640); /* exactly, despite the umask */
	errno = 0;
	CHECK_EQ(null_errno(fshm_create(name, 0600)), EEXIST);
	put(f, "owner:");

	pid_t pid = t_fork(guest_child, (void *)name);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	expect_str(content(f), "owner:guest");
	CHECK(stream_exists(name));

	/* Guests in this process too: each has its own position from 0. */
	FILE *g = fshm_guest_open(name);
	CHECK(g != NULL);
	expect_str(content(g), "owner:guest");
	CHECK_EQ(fclose(g), 0);
	CHECK(stream_exists(name));

	CHECK_EQ(fclose(f), 0);
	CHECK(!stream_exists(name));
	errno = 0;
	CHECK_EQ(null_errno(fshm_guest_open(name)), ENOENT);
}

struct owner_arg {
	const char *name;
	int flags;
};

/* An owner in its own process: creates, writes, closes, exits. */
static int owner_child(void *p)
{
	const struct owner_arg *a = p;
	FILE *f = fshm_open(a->name, 0600, a->flags);
	if (!f)
		return 2;
	if (fputs("kept", f) < 0)
		return 3;
	return fclose(f) == 0 ? 0 : 4;
}

static void test_persist(void)
{
	const char *name = t_name("persist");

	/* Without FSHM_PERSIST the owner's close destroys the stream. */
	struct owner_arg plain = {name, FSHM_OWNER};
	pid_t pid = t_fork(owner_child, &plain);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK(!stream_exists(name));
	errno = 0;
	CHECK_EQ(null_errno(fshm_guest_open(name)), ENOENT);

	/* With it, the stream outlives its owner's close and its process. */
	struct owner_arg kept = {name, FSHM_OWNER | FSHM_PERSIST};
	pid = t_fork(owner_child, &kept);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK(stream_exists(name));
	FILE *g = fshm_guest_open(name);
	CHECK(g != NULL);
	expect_str(content(g), "kept");
	CHECK_EQ(fclose(g), 0);
	/* It still exists, so a new owner is refused, PERSIST or not, and a refused
	 * owner removes nothing. */
	errno = 0;
	CHECK_EQ(null_errno(fshm_create(name, 0600)), EEXIST);
	errno = 0;
	CHECK_EQ(null_errno(fshm_open(name, 0600, FSHM_OWNER | FSHM_PERSIST)), EEXIST);
	CHECK(stream_exists(name));
	/* shmfile accepted PERSIST from a guest, without effect: its close leaves the
	 * stream, as every guest's does. */
	g = fshm_open(name, 0, FSHM_GUEST | FSHM_PERSIST);
	CHECK(g != NULL);
	expect_str(content(g), "kept");
	CHECK_EQ(fclose(g), 0);
	CHECK(stream_exists(name));
	/* fshm_force_destroy() is what removes it. */
	CHECK_EQ(fshm_force_destroy(name), 0);
	CHECK(!stream_exists(name));
	errno = 0;
	CHECK_EQ(null_errno(fshm_guest_open(name)), ENOENT);

	/* The core flag, in this process: close keeps it, destroy removes it. */
	FILE *f = NULL;
	CHECK_OK(shmkit_stream_open(name, 0600, SHMKIT_STREAM_OWNER | SHMKIT_STREAM_PERSIST, &f));
	put(f, "core");
	CHECK_EQ(fclose(f), 0);
	CHECK(stream_exists(name));
	CHECK_OK(shmkit_stream_destroy(name));
	CHECK(!stream_exists(name));
}

/* As nobody: the refusals and the access that fshm_chmod()/fshm_chgrp() grant. Which
 * phase is chosen by the argument; each returns 0 when every check holds. */
struct perm_arg {
	const char *name;  /* root's stream */
	const char *own;   /* a name for a stream nobody creates */
	int phase;
};

static int nobody_child(void *p)
{
	const struct perm_arg *a = p;
	char buf[16] = {0};
	if (drop_to_nobody())
		return 2;
	FILE *g;
	switch (a->phase) {
	case 0: /* root's 0600: no access at all */
		errno = 0;
		if (fshm_guest_open(a->name) || errno != EACCES)
			return 3;
		return 0;
	case 1: /* after fshm_chmod(0604): others may read */
		g = fshm_guest_open(a->name);
		if (!g)
			return 4;
		if ((fcntl(fileno(g), F_GETFL) & O_ACCMODE) != O_RDONLY)
			return 5;
		if (fread(buf, 1, sizeof buf - 1, g) != 6 || strcmp(buf, "secret"))
			return 6;
		/* Reading is all: nobody may not change the mode or group of root's stream,
		 * nor take it to a group of its own. */
		errno = 0;
		if (fshm_chmod(g, 0666) != -1 || errno != EPERM)
			return 7;
		errno = 0;
		if (fshm_chgrp(g, NOBODY) != -1 || errno != EPERM)
			return 8;
		fclose(g);
		return 0;
	case 2: /* after fshm_chgrp(NOBODY) and fshm_chmod(0660): the group may write */
		g = fshm_guest_open(a->name);
		if (!g)
			return 9;
		if ((fcntl(fileno(g), F_GETFL) & O_ACCMODE) != O_RDWR)
			return 10;
		if (fseek(g, 0, SEEK_END) != 0 || fputs("+group", g) < 0)
			return 11;
		/* Write access does not make one the owner. */
		errno = 0;
		if (fshm_chmod(g, 0666) != -1 || errno != EPERM)
			return 12;
		errno = 0;
		if (fshm_chgrp(g, 0) != -1 || errno != EPERM)
			return 13;
		/* Already its group: shmfile's answer is success, changing nothing. */
		if (fshm_chgrp(g, NOBODY) != 0)
			return 14;
		fclose(g);
		return 0;
	case 3: /* nobody's own stream: it may chmod it, and chgrp only to its groups */
		g = fshm_create(a->own, 0600);
		if (!g)
			return 15;
		if (fshm_chmod(g, 0640) != 0)
			return 16;
		errno = 0;
		if (fshm_chgrp(g, 0) != -1 || errno != EPERM)
			return 17;
		if (fshm_chgrp(g, NOBODY) != 0)
			return 18;
		struct stat st;
		if (fstat(fileno(g), &st) || (st.st_mode & 07777) != 0640 ||
		    st.st_uid != NOBODY || st.st_gid != NOBODY)
			return 19;
		return fclose(g) == 0 ? 0 : 20;
	}
	return 99;
}

static void run_nobody(const struct perm_arg *a, int phase)
{
	struct perm_arg arg = *a;
	arg.phase = phase;
	pid_t pid = t_fork(nobody_child, &arg);
	CHECK(pid > 0);
	int st = t_wait(pid);
	if (st != 0) {
		fprintf(stderr, "nobody phase %d: check %d failed\n", phase, st);
		exit(T_FAIL);
	}
}

static void test_chmod_chgrp(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_shmfile: not root, permission checks skipped\n");
		return;
	}
	struct perm_arg a = {t_name("perm"), t_name("perm-nobody"), 0};
	struct stat st;
	FILE *f = fshm_create(a.name, 0600);
	CHECK(f != NULL);
	put(f, "secret");
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_gid, getegid()); /* the creator's group until fshm_chgrp() */
	run_nobody(&a, 0);

	CHECK_EQ(fshm_chmod(f, 0604), 0);
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0604);
	run_nobody(&a, 1);
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0604); /* nobody's attempts changed nothing */
	CHECK_EQ(st.st_gid, getegid());

	/* Root may give the stream to any group; the group bits then let it in. A guest's
	 * FILE serves as well as the owner's: the calls act on the stream. */
	FILE *g = fshm_guest_open(a.name);
	CHECK(g != NULL);
	CHECK_EQ(fshm_chmod(g, 0600), 0);
	CHECK_EQ(fshm_chgrp(g, NOBODY), 0);
	CHECK_EQ(fshm_chmod(f, 0660), 0);
	CHECK_EQ(fclose(g), 0);
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_gid, NOBODY);
	CHECK_EQ(st.st_uid, 0);
	run_nobody(&a, 2);
	expect_str(content(f), "secret+group");
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0660);
	CHECK_EQ(st.st_gid, NOBODY);
	/* (gid_t)-1 changes nothing. */
	CHECK_EQ(fshm_chgrp(f, (gid_t)-1), 0);
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_gid, NOBODY);

	run_nobody(&a, 3);
	CHECK(!stream_exists(a.own)); /* nobody's owner close destroyed it */
	CHECK_EQ(fclose(f), 0);
	CHECK(!stream_exists(a.name));
}

static void test_version(void)
{
	unsigned char major = 9, minor = 9, patch = 9;
	const char *extra = NULL;
	shmfile_get_version(&major, &minor, &patch, &extra);
	CHECK_EQ(major, 1);
	CHECK_EQ(minor, 1);
	CHECK_EQ(patch, 0);
	CHECK(extra != NULL);
	expect_str(extra, "+shmkit." SHMKIT_VERSION_STRING);
	/* The library's own idea of its version, not only the header's. */
	char want[64];
	snprintf(want, sizeof want, "+shmkit.%s", shmkit_version_string());
	expect_str(extra, want);
	/* The way shmfile's programs print it. */
	char line[96];
	snprintf(line, sizeof line, "%hhu.%hhu.%hhu%s", major, minor, patch, extra);
	unsigned a, b, c;
	int end = 0;
	CHECK_EQ(sscanf(line, "1.1.0+shmkit.%u.%u.%u%n", &a, &b, &c, &end), 3);
	CHECK_EQ((size_t)end, strlen(line));
	CHECK_EQ(a, SHMKIT_VERSION_MAJOR);
	CHECK_EQ(b, SHMKIT_VERSION_MINOR);
	CHECK_EQ(c, SHMKIT_VERSION_PATCH);
	/* Any part may be skipped. */
	shmfile_get_version(NULL, NULL, NULL, NULL);
	minor = 9;
	shmfile_get_version(NULL, &minor, NULL, NULL);
	CHECK_EQ(minor, 1);
}

/* Runs the later-release program with argv, optionally as nobody, its stdin on a pipe
 * (*in_fd, or closed when in_fd is NULL) and stdout on another (*out_fd). */
static pid_t spawn(const char *const argv[], int as_nobody, int *in_fd, int *out_fd)
{
	int in[2], out[2];
	CHECK_EQ(pipe2(in, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(out, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		if (as_nobody && drop_to_nobody())
			_exit(126);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (in_fd)
		*in_fd = in[1];
	else
		close(in[1]);
	*out_fd = out[0];
	return pid;
}

/* Runs the program to its end; returns its status, its stdout in out. */
static int run(const char *const argv[], int as_nobody, char *out, size_t cap)
{
	int fd;
	pid_t pid = spawn(argv, as_nobody, NULL, &fd);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && ((r = read(fd, out + n, cap - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			n += (size_t)r;
	out[n] = '\0';
	close(fd);
	return t_wait(pid);
}

static void test_later_program(void)
{
	const char *prog = SHMKIT_SHMFILE_LATER;
	char out[600], want[600];
	if (access(prog, X_OK)) {
		fprintf(stderr, "test_shmfile: %s missing\n", prog);
		exit(T_FAIL);
	}
	char name[128];
	snprintf(name, sizeof name, "%s", t_name("later"));

	const char *version[] = {prog, "version", NULL};
	CHECK_EQ(run(version, 0, out, sizeof out), 0);
	expect_str(out, "shmfile version: 1.1.0+shmkit." SHMKIT_VERSION_STRING "\n");
	const char *banner[] = {prog, "--version", NULL};
	CHECK_EQ(run(banner, 0, out, sizeof out), 0);
	expect_str(out, "shmfile 1.1.0+shmkit." SHMKIT_VERSION_STRING
			"\nThe shmfile API, provided by shmkit " SHMKIT_VERSION_STRING ".\n\n");

	/* publish: a persistent stream, left behind when the program has exited, which
	 * others may read but not write (its fshm_chmod), in its owner's group. */
	const char *publish[] = {prog, "publish", name, "hello later", NULL};
	CHECK_EQ(run(publish, 0, out, sizeof out), 0);
	expect_str(out, "");
	CHECK(stream_exists(name));
	const char *readv[] = {prog, "read", name, NULL};
	CHECK_EQ(run(readv, 0, out, sizeof out), 0);
	expect_str(out, "read: hello later\n");
	FILE *g = fshm_guest_open(name);
	CHECK(g != NULL);
	struct stat st;
	CHECK_EQ(fstat(fileno(g), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0644);
	CHECK_EQ(st.st_gid, getegid());
	CHECK_EQ(fclose(g), 0);
	const char *append[] = {prog, "append", name, ", again", NULL};
	if (geteuid() == 0) {
		CHECK_EQ(run(readv, 1, out, sizeof out), 0);
		expect_str(out, "read: hello later\n");
		CHECK_EQ(run(append, 1, out, sizeof out), 1); /* read-only for nobody */
	}
	CHECK_EQ(run(append, 0, out, sizeof out), 0);
	CHECK_EQ(run(readv, 0, out, sizeof out), 0);
	expect_str(out, "read: hello later, again\n");
	/* Publishing again over the leftover: the program's EEXIST recovery. */
	const char *republish[] = {prog, "publish", name, "second", NULL};
	CHECK_EQ(run(republish, 0, out, sizeof out), 0);
	CHECK_EQ(run(readv, 0, out, sizeof out), 0);
	expect_str(out, "read: second\n");
	const char *destroy[] = {prog, "destroy", name, NULL};
	CHECK_EQ(run(destroy, 0, out, sizeof out), 0);
	CHECK(!stream_exists(name));
	CHECK_EQ(run(readv, 0, out, sizeof out), 1);
	expect_str(out, "");
	CHECK_EQ(run(destroy, 0, out, sizeof out), 1);

	/* serve: a plain owner; its stream lives while it runs and goes with its close. */
	int in, fd;
	const char *serve[] = {prog, "serve", name, "served", NULL};
	pid_t server = spawn(serve, 0, &in, &fd);
	size_t n = 0;
	while (n < 6) {
		ssize_t r = read(fd, out + n, 6 - n);
		if (r < 0 && errno == EINTR)
			continue;
		CHECK(r > 0);
		n += (size_t)r;
	}
	out[n] = '\0';
	expect_str(out, "ready\n");
	CHECK_EQ(run(readv, 0, want, sizeof want), 0);
	expect_str(want, "read: served\n");
	close(in); /* EOF: the server closes its stream */
	CHECK_EQ(t_wait(server), 0);
	close(fd);
	CHECK(!stream_exists(name));
	CHECK_EQ(run(readv, 0, out, sizeof out), 1);
}

int main(void)
{
	T_RUN(test_bad_args());
	T_RUN(test_create_guest());
	T_RUN(test_persist());
	T_RUN(test_chmod_chgrp());
	T_RUN(test_version());
	T_RUN(test_later_program());
	return T_PASS;
}
