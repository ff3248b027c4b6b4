/* The seed example programs run together, as their seeds describe: server + client
 * (seed 000), write_struct then read_struct (seed 001), shared_mem_writer then
 * shared_mem_reader (seed 003), each producer's "wrote: TEXT" read back by its reader as
 * "read: TEXT", and the segments gone afterwards; then examples/demo.sh. (owner and
 * guest, seed 002, are run by test_stream.) */
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>

#include "common.h"

#define EXAMPLES SHMKIT_EXAMPLES_DIR
#define DEMO_SCRIPT SHMKIT_EXAMPLES_DIR "/../../examples/demo.sh"

static pid_t main_pid;
static pid_t server = -1;     /* a running server, killed on failure */
static char server_path[256]; /* its file; the segment is named by its realpath */
static char struct_name[256], posix_name[256];

/* Runs at exit() in the test process only: remove whatever a failed check left. */
static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	if (server > 0) {
		kill(server, SIGKILL);
		t_wait(server);
	}
	if (server_path[0]) {
		shmkit_seg_unlink(server_path, SHMKIT_SEG_SYSV);
		unlink(server_path);
	}
	if (struct_name[0])
		shmkit_seg_unlink(struct_name, SHMKIT_SEG_SYSV);
	if (posix_name[0])
		shmkit_seg_unlink(posix_name, SHMKIT_SEG_RAW);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start argv[0] with its stdout on a pipe (stderr stays ours, for diagnostics). */
static pid_t spawn(char *const argv[], int *out)
{
	int p[2];
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	*out = p[0];
	return pid;
}

/* Read from fd until a newline (line mode) or EOF, at most deadline_ms from now. The
 * result is NUL-terminated; returns its length, or -1 on timeout. */
static long read_until(int fd, char *buf, size_t cap, int line, int64_t deadline_ms)
{
	size_t n = 0;
	int64_t end = now_ms() + deadline_ms;
	for (;;) {
		buf[n] = '\0';
		if (n + 1 >= cap || (line && n > 0 && buf[n - 1] == '\n'))
			return (long)n;
		int64_t left = end - now_ms();
		if (left <= 0)
			return -1;
		struct pollfd pfd = {fd, POLLIN, 0};
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		CHECK(r >= 0);
		if (r == 0)
			return -1;
		ssize_t k = read(fd, buf + n, line ? 1 : cap - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		CHECK(k >= 0);
		if (k == 0)
			return (long)n;
		n += (size_t)k;
	}
}

/* Run a program to completion; its stdout goes to out. Returns its exit status. */
static int run(char *const argv[], char *out, size_t cap)
{
	int fd;
	pid_t pid = spawn(argv, &fd);
	long n = read_until(fd, out, cap, 0, 60000);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "%s did not finish\n", argv[0]);
		kill(pid, SIGKILL);
	}
	int st = t_wait(pid);
	if (st != 0)
		fprintf(stderr, "%s exited with %d; output:\n%s\n", argv[0], st, out);
	return n < 0 ? -1 : st;
}

/* "PREFIX TEXT\n" -> TEXT (in place), or NULL if the line is not that. */
static char *text_after(char *line, const char *prefix)
{
	size_t n = strlen(prefix), len = strlen(line);
	if (strncmp(line, prefix, n) != 0 || len < n + 2 || line[len - 1] != '\n' ||
	    memchr(line, '\n', len - 1)) {
		fprintf(stderr, "expected one line \"%sTEXT\", got \"%s\"\n", prefix, line);
		return NULL;
	}
	line[len - 1] = '\0';
	return line + n;
}

static void test_server_client(void)
{
	char wrote[512], got[512], rp[PATH_MAX];
	snprintf(server_path, sizeof server_path, "/tmp/shmkit-test-%d-server", (int)main_pid);
	unlink(server_path);
	int fd;
	char *sargv[] = {EXAMPLES "/server", server_path, "20", NULL};
	server = spawn(sargv, &fd);
	long n = read_until(fd, wrote, sizeof wrote, 1, 30000);
	if (n < 0)
		fprintf(stderr, "server printed no line in time\n");
	CHECK(n > 0);
	char *text = text_after(wrote, "wrote: ");
	CHECK(text != NULL);

	char *cargv[] = {EXAMPLES "/client", server_path, NULL};
	CHECK_EQ(run(cargv, got, sizeof got), 0);
	char *read_text = text_after(got, "read: ");
	CHECK(read_text != NULL);
	if (strcmp(text, read_text) != 0) {
		fprintf(stderr, "server wrote \"%s\", client read \"%s\"\n", text, read_text);
		exit(T_FAIL);
	}

	/* SIGTERM: the server deletes the segment and exits 0, printing nothing more. */
	CHECK_EQ(kill(server, SIGTERM), 0);
	CHECK_EQ(read_until(fd, got, sizeof got, 0, 30000), 0);
	close(fd);
	CHECK_EQ(t_wait(server), 0);
	server = -1;
	CHECK(realpath(server_path, rp) != NULL); /* the file stays, as in the seed */
	shmkit_seg *s = NULL;
	CHECK_EQ(shmkit_seg_open(rp, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV, &s), -ENOENT);
	CHECK_EQ(unlink(server_path), 0);
	server_path[0] = '\0';
	printf("server/client: \"%s\"\n", text);
}

static void test_struct(void)
{
	char wrote[512], got[512];
	snprintf(struct_name, sizeof struct_name, "/tmp/shmkit-test-%d-struct", (int)main_pid);
	char *wargv[] = {EXAMPLES "/write_struct", struct_name, NULL};
	char *rargv[] = {EXAMPLES "/read_struct", struct_name, NULL};
	CHECK_EQ(run(wargv, wrote, sizeof wrote), 0);
	char *text = text_after(wrote, "wrote: ");
	CHECK(text != NULL);
	shmkit_seg *s = NULL;
	CHECK_OK(shmkit_seg_open(struct_name, SHMKIT_KIND_BLOB, 0, 0, SHMKIT_SEG_SYSV, &s));
	shmkit_seg_close(s); /* it outlives its writer */
	CHECK_EQ(run(rargv, got, sizeof got), 0);
	char *read_text = text_after(got, "read: ");
	CHECK(read_text != NULL);
	if (strcmp(text, read_text) != 0) {
		fprintf(stderr, "write_struct wrote \"%s\", read_struct read \"%s\"\n", text,
			read_text);
		exit(T_FAIL);
	}
	/* read_struct removed it. */
	CHECK_EQ(shmkit_seg_open(struct_name, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV, &s),
		 -ENOENT);
	struct_name[0] = '\0';
	printf("write_struct/read_struct: \"%s\"\n", text);
}

static void test_posix(void)
{
	char wrote[512], got[512], file[300];
	struct stat st;
	snprintf(posix_name, sizeof posix_name, "/shmkit-test-%d-posix", (int)main_pid);
	snprintf(file, sizeof file, "/dev/shm%s", posix_name);
	char *wargv[] = {EXAMPLES "/shared_mem_writer", posix_name, NULL};
	char *rargv[] = {EXAMPLES "/shared_mem_reader", posix_name, NULL};
	CHECK_EQ(run(wargv, wrote, sizeof wrote), 0);
	char *text = text_after(wrote, "wrote: ");
	CHECK(text != NULL);
	CHECK_EQ(stat(file, &st), 0); /* it outlives its writer */
	CHECK_EQ(run(rargv, got, sizeof got), 0);
	char *read_text = text_after(got, "read: ");
	CHECK(read_text != NULL);
	if (strcmp(text, read_text) != 0) {
		fprintf(stderr, "shared_mem_writer wrote \"%s\", shared_mem_reader read \"%s\"\n",
			text, read_text);
		exit(T_FAIL);
	}
	/* The reader removed it, as the seed's reader does. */
	errno = 0;
	CHECK(stat(file, &st) < 0 && errno == ENOENT);
	shmkit_seg *s = NULL;
	CHECK_EQ(shmkit_seg_open(posix_name, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_RAW, &s), -ENOENT);
	posix_name[0] = '\0';
	printf("shared_mem_writer/shared_mem_reader: \"%s\"\n", text);
}

/* examples/demo.sh BUILD_DIR exits 0. Returns 0, or T_SKIP if the script is not beside
 * the build directory (an out-of-tree build). */
static int test_demo(void)
{
	char script[PATH_MAX], build[PATH_MAX];
	static char out[1 << 16];
	if (!realpath(DEMO_SCRIPT, script)) {
		printf("demo: %s not found: skipped\n", DEMO_SCRIPT);
		return T_SKIP;
	}
	CHECK(realpath(SHMKIT_EXAMPLES_DIR "/..", build) != NULL);
	char *argv[] = {"/bin/sh", script, build, NULL};
	int st = run(argv, out, sizeof out);
	if (st != 0)
		fprintf(stderr, "demo.sh exited with %d\n", st);
	CHECK_EQ(st, 0);
	CHECK(strstr(out, "demo: done") != NULL);
	printf("demo.sh: exit 0\n");
	return 0;
}

int main(void)
{
	main_pid = getpid();
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);
	alarm(240); /* nothing here may hang the suite */
	setvbuf(stdout, NULL, _IONBF, 0);
	test_server_client();
	test_struct();
	test_posix();
	return test_demo() == T_SKIP ? T_SKIP : T_PASS;
}
