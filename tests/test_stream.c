/* Streams (shmkit_stream_*) and the seed-002 shmfile API (fshm_*): argument checks,
 * roles, the FILE/descriptor contract, visibility across processes, permissions, name
 * mapping, descriptor leaks, and the owner/guest examples run together. */
#include <dirent.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common.h"

#define SHM_DIR "/dev/shm"

static pid_t main_pid;
static pid_t example_owner = -1; /* a running `owner` example, killed on failure */
static char prefix[64];          /* "shmkit-test-<pid>-": every object this test makes */

/* Runs at exit() in the test process only (children share the handler, but must not
 * remove the parent's streams): remove whatever a failed check left behind. */
static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	if (example_owner > 0) {
		kill(example_owner, SIGKILL);
		t_wait(example_owner);
	}
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			char obj[300];
			snprintf(obj, sizeof obj, "/%s", e->d_name);
			shm_unlink(obj);
		}
	closedir(d);
}

/* 1 if /dev/shm has an entry with this object name ("/x"), 0 if not. */
static int obj_exists(const char *obj)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, SHM_DIR "%s", obj);
	if (stat(path, &st) == 0)
		return 1;
	CHECK_EQ(errno, ENOENT);
	return 0;
}

static FILE *open_owner(const char *name, unsigned mode)
{
	FILE *f = NULL;
	CHECK_OK(shmkit_stream_open(name, mode, SHMKIT_STREAM_OWNER, &f));
	CHECK(f != NULL);
	return f;
}

static FILE *open_guest(const char *name)
{
	FILE *f = NULL;
	CHECK_OK(shmkit_stream_open(name, 0, SHMKIT_STREAM_GUEST, &f));
	CHECK(f != NULL);
	return f;
}

static void put(FILE *f, const char *s)
{
	CHECK_EQ(fwrite(s, 1, strlen(s), f), strlen(s));
}

/* Reads the whole stream from the start through the FILE. */
static void expect_content(FILE *f, const char *want)
{
	char buf[256];
	CHECK_EQ(fseek(f, 0, SEEK_SET), 0);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	if (strcmp(buf, want)) {
		fprintf(stderr, "stream holds \"%s\", expected \"%s\"\n", buf, want);
		exit(T_FAIL);
	}
}

/* The expected outcome of a guest open, checked without leaving anything open. */
static int guest_open_err(const char *name)
{
	FILE *f = (FILE *)1;
	int r = shmkit_stream_open(name, 0, SHMKIT_STREAM_GUEST, &f);
	if (r == 0)
		fclose(f);
	else
		CHECK(f == NULL);
	return r;
}

static void test_bad_args(void)
{
	char longname[300], longesc[300], edge[300], edge_esc[300], valid[128];
	snprintf(valid, sizeof valid, "%s", t_name("bad"));
	/* "/" + 255 bytes: one more than an object name can hold. */
	memset(longname, 'a', sizeof longname);
	longname[0] = '/';
	longname[256] = '\0';
	/* 100 bytes that escape to 300. */
	memset(longesc, '/', 101);
	longesc[0] = 'x';
	longesc[101] = '\0';

	static const struct {
		int name; /* index into names[] below */
		unsigned flags;
		int err;
	} rows[] = {
		{0, SHMKIT_STREAM_OWNER, EINVAL},
		{0, SHMKIT_STREAM_GUEST, EINVAL},
		{1, SHMKIT_STREAM_OWNER, EINVAL},
		{1, SHMKIT_STREAM_GUEST, EINVAL},
		{2, SHMKIT_STREAM_OWNER, EINVAL},
		{2, SHMKIT_STREAM_GUEST, EINVAL},
		{3, 0, EINVAL},
		{3, SHMKIT_STREAM_OWNER | SHMKIT_STREAM_GUEST, EINVAL},
		{3, SHMKIT_STREAM_OWNER | 8u, EINVAL},
		{3, SHMKIT_STREAM_PERSIST, EINVAL}, /* no role */
		{3, SHMKIT_STREAM_GUEST | (1u << 31), EINVAL},
		{3, 8u, EINVAL},
		{4, SHMKIT_STREAM_OWNER, ENAMETOOLONG},
		{4, SHMKIT_STREAM_GUEST, ENAMETOOLONG},
		{5, SHMKIT_STREAM_OWNER, ENAMETOOLONG},
		{6, SHMKIT_STREAM_OWNER, EINVAL},
		{7, SHMKIT_STREAM_GUEST, EINVAL},
	};
	const char *names[] = {NULL, "", "/", valid, longname, longesc, "/.", ".."};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *name = names[rows[i].name];
		FILE *f = (FILE *)1;
		int r = shmkit_stream_open(name, 0600, rows[i].flags, &f);
		if (r != -rows[i].err || f != NULL) {
			fprintf(stderr, "core row %zu: got %d (%s), f %p; want -%d\n", i, r,
				shmkit_strerror(r), (void *)f, rows[i].err);
			exit(T_FAIL);
		}
		/* The seed's flag values are the same bits; translate explicitly anyway. */
		int ff = (int)((rows[i].flags & SHMKIT_STREAM_OWNER ? FSHM_OWNER : 0) |
			       (rows[i].flags & SHMKIT_STREAM_GUEST ? FSHM_GUEST : 0) |
			       (rows[i].flags & ~3u));
		errno = 0;
		f = fshm_open(name, 0600, ff);
		int e = errno;
		if (f != NULL || e != rows[i].err) {
			fprintf(stderr, "fshm row %zu: got %p errno %d; want NULL errno %d\n", i,
				(void *)f, e, rows[i].err);
			exit(T_FAIL);
		}
	}
	/* Negative flags, which only the int-typed seed API can express. */
	errno = 0;
	CHECK(fshm_open(valid, 0600, -1) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(shmkit_stream_open(valid, 0600, SHMKIT_STREAM_OWNER, NULL), -EINVAL);
	/* None of the rejected calls created anything. */
	CHECK_EQ(guest_open_err(valid), -ENOENT);

	CHECK_EQ(shmkit_stream_destroy(NULL), -EINVAL);
	CHECK_EQ(shmkit_stream_destroy(""), -EINVAL);
	CHECK_EQ(shmkit_stream_destroy("/"), -EINVAL);
	CHECK_EQ(shmkit_stream_destroy(longname), -ENAMETOOLONG);
	const char *bad_destroy[] = {NULL, "", "/"};
	for (size_t i = 0; i < 3; i++) {
		errno = 0;
		CHECK_EQ(fshm_force_destroy(bad_destroy[i]), -1);
		CHECK_EQ(errno, EINVAL);
	}
	errno = 0;
	CHECK_EQ(fshm_force_destroy(longname), -1);
	CHECK_EQ(errno, ENAMETOOLONG);

	/* The limits are exact: 255 bytes of object name work, escapes counted. */
	int p = snprintf(edge, sizeof edge, "/%s", prefix);
	memset(edge + p, 'e', 255 - (size_t)p);
	edge[255] = '\0';
	FILE *f = open_owner(edge, 0600);
	CHECK(obj_exists(edge));
	CHECK_EQ(fclose(f), 0);
	CHECK(!obj_exists(edge));
	memcpy(edge_esc, edge, 256);
	edge_esc[252] = '/'; /* 252..254 -> "%2F" + 2 more bytes: 257 */
	CHECK_EQ(guest_open_err(edge_esc), -ENAMETOOLONG);
	edge_esc[253] = '\0'; /* "/" + 251 + "%2F" = 255 */
	f = open_owner(edge_esc, 0600);
	CHECK_EQ(fclose(f), 0);
}

static void test_exist_missing(void)
{
	const char *name = t_name("exist");
	FILE *f = open_owner(name, 0600), *g = (FILE *)1;

	CHECK_EQ(shmkit_stream_open(name, 0600, SHMKIT_STREAM_OWNER, &g), -EEXIST);
	CHECK(g == NULL);
	errno = 0;
	CHECK(fshm_open(name, 0600, FSHM_OWNER) == NULL);
	CHECK_EQ(errno, EEXIST);
	CHECK_EQ(fclose(f), 0);

	g = (FILE *)1;
	CHECK_EQ(shmkit_stream_open(name, 0, SHMKIT_STREAM_GUEST, &g), -ENOENT);
	CHECK(g == NULL);
	errno = 0;
	CHECK(fshm_open(name, 0, FSHM_GUEST) == NULL);
	CHECK_EQ(errno, ENOENT);
	CHECK_EQ(shmkit_stream_destroy(name), -ENOENT);
	errno = 0;
	CHECK_EQ(fshm_force_destroy(name), -1);
	CHECK_EQ(errno, ENOENT);
}

static void test_fileno_position(void)
{
	const char *name = t_name("fileno");
	char path[300], buf[32];
	struct stat st, st2;
	FILE *f = fshm_open(name, 0600, FSHM_OWNER);
	CHECK(f != NULL);

	int fd = fileno(f);
	CHECK(fd > 2);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	snprintf(path, sizeof path, SHM_DIR "%s", name);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK_EQ(st.st_ino, st2.st_ino);
	CHECK_EQ(st.st_dev, st2.st_dev);
	/* Not inherited across exec by accident. */
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);

	put(f, "hello");
	CHECK_EQ(ftell(f), 5);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
	CHECK_EQ(write(fd, " world", 6), 6);
	CHECK_EQ(ftell(f), 11);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, 11);

	/* Seeking either side moves both. */
	CHECK_EQ(fseek(f, 0, SEEK_SET), 0);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
	CHECK_EQ(read(fd, buf, 5), 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(ftell(f), 5);
	CHECK_EQ(fread(buf, 1, 6, f), 6);
	CHECK(!memcmp(buf, " world", 6));
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 11);
	CHECK_EQ(lseek(fd, 6, SEEK_SET), 6);
	CHECK_EQ(fgetc(f), 'w');
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 7);
	CHECK_EQ(fseek(f, 0, SEEK_END), 0);
	CHECK_EQ(ftell(f), 11);
	CHECK_EQ(fgetc(f), EOF);
	CHECK(feof(f));
	clearerr(f);

	/* A guest has its own position, from 0. */
	FILE *g = open_guest(name);
	CHECK(fileno(g) != fd);
	CHECK_EQ(ftell(g), 0);
	CHECK_EQ(fread(buf, 1, 11, g), 11);
	CHECK(!memcmp(buf, "hello world", 11));
	CHECK_EQ(ftell(f), 11);
	CHECK_EQ(fclose(g), 0);
	CHECK_EQ(fclose(f), 0);
}

struct unbuf_arg {
	const char *name;
	int ready, go; /* child -> parent, parent -> child */
};

static int unbuf_child(void *p)
{
	struct unbuf_arg *a = p;
	char c = 0, buf[8] = {0};
	FILE *g = fshm_open(a->name, 0, FSHM_GUEST);
	if (!g)
		return 2;
	if (write(a->ready, "r", 1) != 1 || read(a->go, &c, 1) != 1)
		return 3;
	/* Nothing was flushed in the parent: the bytes must already be in the object. */
	if (fread(buf, 1, sizeof buf, g) != 3 || memcmp(buf, "abc", 3))
		return 4;
	fclose(g);
	return 0;
}

static void test_unbuffered(void)
{
	const char *name = t_name("unbuf");
	int ready[2], go[2];
	char c;
	FILE *f = open_owner(name, 0600);

	CHECK_EQ(pipe(ready), 0);
	CHECK_EQ(pipe(go), 0);
	struct unbuf_arg a = {name, ready[1], go[0]};
	pid_t pid = t_fork(unbuf_child, &a);
	CHECK(pid > 0);
	CHECK_EQ(read(ready[0], &c, 1), 1);
	put(f, "abc");
	CHECK_EQ(write(go[1], "g", 1), 1);
	CHECK_EQ(t_wait(pid), 0);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
	}
	CHECK_EQ(fclose(f), 0);
}

static int guest_reads_child(void *p)
{
	char line[64];
	FILE *g = fshm_open(p, 0, FSHM_GUEST);
	if (!g)
		return 2;
	if (!fgets(line, sizeof line, g) || strcmp(line, "first line\n"))
		return 3;
	/* fgets() must not have read ahead: the descriptor is just past the line. */
	if (lseek(fileno(g), 0, SEEK_CUR) != 11)
		return 4;
	return fclose(g) == 0 ? 0 : 5;
}

static void test_guest_reads(void)
{
	const char *name = t_name("guest");
	FILE *f = open_owner(name, 0600);
	put(f, "first line\nsecond\n");

	pid_t pid = t_fork(guest_reads_child, (void *)name);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	/* The guest's fclose() left the stream: it opens again, content intact. */
	FILE *g = open_guest(name);
	expect_content(g, "first line\nsecond\n");
	CHECK_EQ(fclose(g), 0);
	g = open_guest(name);
	CHECK_EQ(fclose(g), 0);
	CHECK(obj_exists(name));
	CHECK_EQ(fclose(f), 0);
}

static void test_owner_close_destroys(void)
{
	const char *name = t_name("destroy");
	FILE *f = open_owner(name, 0600);
	put(f, "still here");
	FILE *g = open_guest(name);

	CHECK_EQ(fclose(f), 0);
	CHECK(!obj_exists(name));
	CHECK_EQ(guest_open_err(name), -ENOENT);
	errno = 0;
	CHECK(fshm_open(name, 0, FSHM_GUEST) == NULL);
	CHECK_EQ(errno, ENOENT);
	/* The open guest keeps the memory: it reads, and may even write. */
	expect_content(g, "still here");
	put(g, "!");
	expect_content(g, "still here!");
	CHECK_EQ(fclose(g), 0);
}

static int dying_owner(void *p)
{
	FILE *f = fshm_open(p, 0600, FSHM_OWNER);
	if (!f || fwrite("x", 1, 1, f) != 1)
		return 2;
	_exit(0); /* no fclose(): the stream is left behind */
}

static void test_force_destroy(void)
{
	const char *name = t_name("dead");
	pid_t pid = t_fork(dying_owner, (void *)name);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK(obj_exists(name));

	/* The seed's recovery recipe. */
	errno = 0;
	FILE *f = fshm_open(name, 0600, FSHM_OWNER);
	CHECK(f == NULL);
	CHECK_EQ(errno, EEXIST);
	CHECK_EQ(fshm_force_destroy(name), 0);
	f = fshm_open(name, 0600, FSHM_OWNER);
	CHECK(f != NULL);
	CHECK_EQ(ftell(f), 0);
	CHECK_EQ(fgetc(f), EOF); /* a fresh, empty stream */

	/* A stale owner whose stream was destroyed and created anew must not remove the
	 * new one when it closes. */
	CHECK_EQ(shmkit_stream_destroy(name), 0);
	FILE *f2 = open_owner(name, 0600);
	put(f2, "new");
	CHECK_EQ(fclose(f), 0);
	CHECK(obj_exists(name));
	FILE *g = open_guest(name);
	expect_content(g, "new");
	CHECK_EQ(fclose(g), 0);
	CHECK_EQ(fclose(f2), 0);
	CHECK(!obj_exists(name));
}

static void test_exact_mode(void)
{
	static const struct {
		mode_t umask, mode;
	} rows[] = {{077, 0644}, {022, 0666}, {0, 0600}, {0777, 0640}};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *name = t_name("mode");
		struct stat st;
		mode_t old = umask(rows[i].umask);
		FILE *f = fshm_open(name, rows[i].mode, FSHM_OWNER);
		int e = errno;
		umask(old);
		errno = e;
		CHECK(f != NULL);
		CHECK_EQ(fstat(fileno(f), &st), 0);
		CHECK_EQ(st.st_mode & 07777, rows[i].mode);
		CHECK_EQ(fclose(f), 0);
	}
}

/* Set-id, sticky and other bits above 0777 are refused, and nothing is created; a
 * guest ignores the mode, as before. */
static void test_mode_bits(void)
{
	const unsigned bad[] = {04755, 02770, 01777, 07777, 010000, 0100644, ~0u};
	const char *name = t_name("mode-bits");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		FILE *f = (FILE *)1;
		CHECK_EQ(shmkit_stream_open(name, bad[i], SHMKIT_STREAM_OWNER, &f), -EINVAL);
		CHECK(f == NULL);
		CHECK(!obj_exists(name));
		errno = 0;
		CHECK(fshm_open(name, (mode_t)bad[i], FSHM_OWNER) == NULL);
		CHECK_EQ(errno, EINVAL);
		CHECK(!obj_exists(name));
	}
	FILE *o = fshm_open(name, 0777, FSHM_OWNER);
	CHECK(o != NULL);
	struct stat st;
	CHECK_EQ(fstat(fileno(o), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0777);
	FILE *g = fshm_open(name, 04755, FSHM_GUEST);
	CHECK(g != NULL);
	CHECK_EQ(fclose(g), 0);
	CHECK_EQ(fclose(o), 0);
	CHECK(!obj_exists(name));
}

static int nobody_child(void *p)
{
	const char *const *names = p; /* [0]: a 0600 stream, [1]: a 0644 stream */
	char buf[16] = {0};
	FILE *f = (FILE *)1;

	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return 2;
	if (shmkit_stream_open(names[0], 0, SHMKIT_STREAM_GUEST, &f) != -EACCES || f != NULL)
		return 3;
	errno = 0;
	if (fshm_open(names[0], 0, FSHM_GUEST) != NULL || errno != EACCES)
		return 4;

	/* Readable, not writable: the guest falls back to a read-only stream. */
	f = fshm_open(names[1], 0, FSHM_GUEST);
	if (!f)
		return 5;
	if ((fcntl(fileno(f), F_GETFL) & O_ACCMODE) != O_RDONLY)
		return 6;
	if (fread(buf, 1, sizeof buf, f) != 6 || memcmp(buf, "public", 6))
		return 7;
	if (fwrite("x", 1, 1, f) != 0 || !ferror(f))
		return 8;
	if (write(fileno(f), "x", 1) != -1 || errno != EBADF)
		return 9;
	fclose(f);

	/* Nor may nobody remove root's stream (glibc reports the sticky /dev/shm's
	 * EPERM as EACCES). */
	if (shmkit_stream_destroy(names[1]) != -EACCES)
		return 10;
	errno = 0;
	if (fshm_force_destroy(names[0]) != -1 || errno != EACCES)
		return 11;
	return 0;
}

static void test_permissions(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_stream: not root, permission checks skipped\n");
		return;
	}
	const char *names[2] = {t_name("private"), t_name("public")};
	FILE *priv = open_owner(names[0], 0600), *pub = open_owner(names[1], 0644);
	put(pub, "public");
	/* Root bypasses permission checks, so the refusals are checked as nobody. */
	pid_t pid = t_fork(nobody_child, names);
	CHECK(pid > 0);
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(fclose(priv), 0);
	CHECK_EQ(fclose(pub), 0);
}

static void test_names(void)
{
	char name[128], bare[128], literal[128], obj[160], dir[160];
	snprintf(name, sizeof name, "%s/x", t_name("streams"));
	snprintf(literal, sizeof literal, "%s%%2Fx", t_name("streams"));
	snprintf(bare, sizeof bare, "%s", name + 1);
	snprintf(obj, sizeof obj, "%s%%2Fx", t_name("streams"));
	snprintf(dir, sizeof dir, "%s", t_name("streams"));

	FILE *f = open_owner(name, 0600);
	put(f, "slash");
	/* One flat /dev/shm entry, no directory. */
	CHECK(obj_exists(obj));
	CHECK(!obj_exists(dir));
	/* The leading '/' is optional. */
	FILE *g = open_guest(bare);
	expect_content(g, "slash");
	CHECK_EQ(fclose(g), 0);
	/* '%' is escaped too, so a name spelling the escape is another stream. */
	CHECK_EQ(guest_open_err(literal), -ENOENT);
	FILE *l = open_owner(literal, 0600);
	CHECK(obj_exists(obj));
	snprintf(obj, sizeof obj, "%s%%252Fx", t_name("streams"));
	CHECK(obj_exists(obj));
	CHECK_EQ(fclose(l), 0);
	CHECK(!obj_exists(obj));
	CHECK_EQ(shmkit_stream_destroy(bare), 0);
	CHECK_EQ(guest_open_err(name), -ENOENT);
	CHECK_EQ(fclose(f), 0); /* already destroyed: nothing to remove, no error */
}

static void test_fd_leaks(void)
{
	char name[128], missing[128];
	/* Copies: t_name() recycles its buffers. */
	snprintf(name, sizeof name, "%s", t_name("leak"));
	snprintf(missing, sizeof missing, "%s", t_name("leak-missing"));
	int before = t_count_fds();
	for (int i = 0; i < 5000; i++) {
		FILE *f = open_owner(name, 0600);
		CHECK_EQ(fclose(f), 0);
	}
	CHECK_EQ(t_count_fds(), before);
	CHECK(!obj_exists(name));

	FILE *f = open_owner(name, 0600);
	before = t_count_fds();
	for (int i = 0; i < 5000; i++) {
		FILE *g = open_guest(name);
		CHECK_EQ(fclose(g), 0);
	}
	/* Failing opens release what they took as well. */
	for (int i = 0; i < 1000; i++) {
		FILE *g;
		CHECK_EQ(shmkit_stream_open(name, 0600, SHMKIT_STREAM_OWNER, &g), -EEXIST);
		CHECK_EQ(guest_open_err(missing), -ENOENT);
	}
	CHECK_EQ(t_count_fds(), before);
	CHECK_EQ(fclose(f), 0);
}

/* fork+exec argv with stdout (and stderr if err_fd) on pipes; returns the pid,
 * *out_fd and *err_fd the read ends. */
static pid_t spawn(const char *const argv[], int *out_fd, int *err_fd)
{
	int p[2], e[2] = {-1, -1};
	CHECK_EQ(pipe(p), 0);
	if (err_fd)
		CHECK_EQ(pipe(e), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		if (err_fd)
			dup2(e[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		if (err_fd) {
			close(e[0]);
			close(e[1]);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	if (err_fd) {
		close(e[1]);
		*err_fd = e[0];
	}
	return pid;
}

/* Reads one line (at most cap-1 bytes) from fd a byte at a time, so nothing after
 * the line is consumed. Returns its length, 0 on EOF. */
static size_t read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return n;
}

static void test_examples(void)
{
	const char *owner = SHMKIT_EXAMPLES_DIR "/owner", *guest = SHMKIT_EXAMPLES_DIR "/guest";
	char name[128], line[300], text[256], out[300];
	int fd;

	if (access(owner, X_OK) || access(guest, X_OK)) {
		fprintf(stderr, "test_stream: examples missing in %s\n", SHMKIT_EXAMPLES_DIR);
		exit(T_FAIL);
	}
	snprintf(name, sizeof name, "%s", t_name("example"));

	const char *owner_argv[] = {owner, name, "20", NULL};
	example_owner = spawn(owner_argv, &fd, NULL);
	CHECK(read_line(fd, line, sizeof line) > 0);
	CHECK(!strncmp(line, "wrote: ", 7));
	snprintf(text, sizeof text, "%.255s", line + 7); /* TEXT + newline */
	CHECK(obj_exists(name));

	const char *guest_argv[] = {guest, name, NULL};
	int gfd;
	pid_t g = spawn(guest_argv, &gfd, NULL);
	size_t n = read_line(gfd, out, sizeof out);
	CHECK(n > 0);
	CHECK_EQ(read_line(gfd, line, sizeof line), 0); /* exactly one line */
	close(gfd);
	CHECK_EQ(t_wait(g), 0);
	snprintf(line, sizeof line, "read: %s", text);
	if (strcmp(out, line)) {
		fprintf(stderr, "guest printed \"%s\", expected \"%s\"\n", out, line);
		exit(T_FAIL);
	}

	/* SIGTERM ends the owner early; it still closes, which destroys the stream. */
	CHECK_EQ(kill(example_owner, SIGTERM), 0);
	CHECK_EQ(t_wait(example_owner), 0);
	example_owner = -1;
	close(fd);
	CHECK(!obj_exists(name));
	CHECK_EQ(guest_open_err(name), -ENOENT);

	/* With no owner, the guest fails with status 1, nothing on stdout, and a message
	 * naming the stream and the reason on stderr. */
	int efd;
	g = spawn(guest_argv, &gfd, &efd);
	CHECK_EQ(read_line(gfd, out, sizeof out), 0);
	CHECK(read_line(efd, line, sizeof line) > 0);
	close(gfd);
	close(efd);
	CHECK_EQ(t_wait(g), 1);
	if (!strstr(line, name) || !strstr(line, strerror(ENOENT))) {
		fprintf(stderr, "unexpected guest error message: %s", line);
		exit(T_FAIL);
	}
}

int main(void)
{
	main_pid = getpid();
	snprintf(prefix, sizeof prefix, "%s", t_name("") + 1); /* t_name()s start with it */
	atexit(cleanup);

	test_bad_args();
	test_exist_missing();
	test_fileno_position();
	test_unbuffered();
	test_guest_reads();
	test_owner_close_destroys();
	test_force_destroy();
	test_exact_mode();
	test_mode_bits();
	test_permissions();
	test_names();
	test_fd_leaks();
	test_examples();
	return T_PASS;
}
