/* shmkit(1) — command-line tool: a table of subcommands, one function each (cmd.h).
 * Exit codes: 0 success, 1 failure, 2 usage. */
#define _GNU_SOURCE /* getline() */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include <shmkit/shmkit.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Adding a subcommand: one function declared in cmd.h, one row here. */
static const struct command commands[] = {
    {"ls", shmkit_cmd_ls, "list every POSIX and System V segment"},
    {"stat", shmkit_cmd_stat, "describe one segment, with a blob's, channel's or topic's figures"},
    {"rm", shmkit_cmd_rm, "remove segments by name, key or id"},
    {"gc", shmkit_cmd_gc, "remove stale shmkit segments (creator dead, unused)"},
    {"create", shmkit_cmd_create, "create a segment"},
    {"cat", shmkit_cmd_cat, "write a segment's data to standard output"},
    {"write", shmkit_cmd_write, "copy standard input into a segment"},
    {"send", shmkit_cmd_send, "send each input line as a channel message"},
    {"recv", shmkit_cmd_recv, "print channel messages, one a line"},
    {"pub", shmkit_cmd_pub, "publish each input line as a topic message"},
    {"sub", shmkit_cmd_sub, "print topic messages, one a line"},
    {"top", shmkit_cmd_top, "a live table of every channel, topic and blob, with rates"},
    {"hz", shmkit_cmd_hz, "the message rate of a channel or topic, without receiving"},
    {"record", shmkit_cmd_record, "write a topic's messages, timed, to a file"},
    {"replay", shmkit_cmd_replay, "publish a recorded file's messages on a topic"},
    {"bench", shmkit_cmd_bench, "measure the channel and the topic against the kernel's IPC"},
#ifdef SHMKIT_HAVE_BRIDGE
    {"bridge", shmkit_cmd_bridge, "carry topics over NATS subjects (built with libnats)"},
#endif
};

int shmkit__want_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

int shmkit__usage_error(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	return SHMKIT_EXIT_USAGE;
}

volatile sig_atomic_t shmkit__stop;

static void on_stop(int sig)
{
	shmkit__stop = sig;
}

void shmkit__catch_stop(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop; /* no SA_RESTART: a sleep or poll ends at the signal */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int64_t shmkit__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

int shmkit__send_lines(FILE *in, const char *cmd, const char *name,
		       int (*send)(void *h, const char *msg, size_t len), void *h)
{
	struct shmkit__lines how = {.cmd = cmd, .name = name, .send = send, .h = h};
	return shmkit__send_lines_how(in, &how);
}

int shmkit__send_lines_how(FILE *in, const struct shmkit__lines *how)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int status = SHMKIT_EXIT_OK;
	while ((n = getline(&line, &cap, in)) > 0) {
		lineno++;
		if (line[n - 1] == '\n')
			n--;
		if (n == 0)
			continue;
		int r = how->send(how->h, line, (size_t)n);
		if (r == -EMSGSIZE && how->max_msg) {
			fprintf(stderr, "shmkit %s: %s: line %ld is %zd bytes, longer than the "
					"largest message (%zu bytes)\n",
				how->cmd, how->name, lineno, n, how->max_msg);
			status = SHMKIT_EXIT_FAIL;
			break;
		}
		if (r < 0) {
			char buf[160];
			const char *why = how->why ? how->why(how->h, r, buf, sizeof buf) : NULL;
			fprintf(stderr, "shmkit %s: %s: %s\n", how->cmd, how->name,
				why ? why : shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
			break;
		}
		if (how->progress)
			shmkit__progress_add(how->progress, (size_t)n);
	}
	if (status == SHMKIT_EXIT_OK && ferror(in)) {
		fprintf(stderr, "shmkit %s: reading input: %s\n", how->cmd, strerror(errno));
		status = SHMKIT_EXIT_FAIL;
	}
	free(line);
	return status;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: shmkit COMMAND [ARGS...]\n"
		   "       shmkit help [COMMAND] | --help | --version\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'shmkit COMMAND --help' describes a command. Exit status: 0 success, "
		   "1 failure, 2 usage.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *cmd;

	if (argc < 2) {
		usage(stderr);
		return SHMKIT_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    (!strcmp(argv[1], "help") && argc == 2)) {
		usage(stdout);
		return SHMKIT_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("shmkit %s (library %s)\n", SHMKIT_VERSION_STRING, shmkit_version_string());
		return SHMKIT_EXIT_OK;
	}
	if (!strcmp(argv[1], "help")) {
		char help[] = "--help";
		char *args[] = {argv[2], help, NULL};
		if (argc > 3 || !(cmd = find_command(argv[2]))) {
			fprintf(stderr, "shmkit: no command '%s'\n", argv[2]);
			usage(stderr);
			return SHMKIT_EXIT_USAGE;
		}
		return cmd->run(2, args);
	}
	cmd = find_command(argv[1]);
	if (!cmd && !strcmp(argv[1], "bridge")) {
		fprintf(stderr, "shmkit: this shmkit was built without libnats: no bridge "
				"(install libnats-dev and rebuild)\n");
		return SHMKIT_EXIT_FAIL;
	}
	if (!cmd) {
		fprintf(stderr, "shmkit: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return SHMKIT_EXIT_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}
