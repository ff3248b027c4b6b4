/* shmkit(1) — the subcommands. Each is one function taking the arguments after the
 * tool's name (argv[0] is the subcommand's name) and returning the process exit code.
 * Every subcommand answers --help on stdout with exit 0. */
#ifndef SHMKIT_TOOLS_CMD_H
#define SHMKIT_TOOLS_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "json.h" /* names and JSON values as output, escaped alike everywhere */

/* Exit codes of the tool and of every subcommand. */
#define SHMKIT_EXIT_OK 0    /* success */
#define SHMKIT_EXIT_FAIL 1  /* the operation failed */
#define SHMKIT_EXIT_USAGE 2 /* bad command line, or a name that needs --posix or --sysv */

/* Argument handling shared by the subcommands: tools/shmkit.c. */
/* Whether the arguments (after argv[0], up to a "--") ask for --help or -h. */
int shmkit__want_help(int argc, char **argv);
/* Prints "usage: USAGE" on stderr; returns SHMKIT_EXIT_USAGE. */
int shmkit__usage_error(const char *usage);
/* Sends each line of in, without its newline, through send(h, line, len); empty lines
 * are skipped (a message has at least one byte). Stops at the first error, which it
 * reports as "shmkit CMD: NAME: reason". Returns the exit code. */
int shmkit__send_lines(FILE *in, const char *cmd, const char *name,
		       int (*send)(void *h, const char *msg, size_t len), void *h);

/* Counts and rates of a transfer on stderr (--progress): tools/segments.c. */
struct shmkit__progress {
	const char *cmd, *name;
	int64_t start, last;     /* CLOCK_MONOTONIC ns: the start, the last line printed */
	uint64_t msgs, bytes;    /* so far */
	uint64_t last_msgs, last_bytes; /* at the last line printed */
};
void shmkit__progress_start(struct shmkit__progress *p, const char *cmd, const char *name);
/* One message of @bytes; prints a line when a second passed since the last one. */
void shmkit__progress_add(struct shmkit__progress *p, size_t bytes);
/* The totals, and the mean rates. */
void shmkit__progress_end(struct shmkit__progress *p);

/* shmkit__send_lines() with more to say: a line longer than max_msg (when not 0) is
 * reported with its number, its length and the limit; progress (when not NULL) counts
 * each message sent. */
struct shmkit__lines {
	const char *cmd, *name;
	int (*send)(void *h, const char *msg, size_t len);
	void *h;
	size_t max_msg;
	struct shmkit__progress *progress;
};
int shmkit__send_lines_how(FILE *in, const struct shmkit__lines *how);

/* shmkit bench [--json] [--quick] [--rounds N] ...: bench/bench.c (measuring) and
 * bench/report.c (statistics, output), two translation units sharing bench/bench.h */
int shmkit_cmd_bench(int argc, char **argv);

/* The segment commands: tools/segments.c */
int shmkit_cmd_ls(int argc, char **argv);
int shmkit_cmd_stat(int argc, char **argv);
int shmkit_cmd_rm(int argc, char **argv);
int shmkit_cmd_gc(int argc, char **argv);
int shmkit_cmd_create(int argc, char **argv);
int shmkit_cmd_cat(int argc, char **argv);
int shmkit_cmd_write(int argc, char **argv);
int shmkit_cmd_send(int argc, char **argv);
int shmkit_cmd_recv(int argc, char **argv);

/* The topic commands: tools/topic.c */
int shmkit_cmd_pub(int argc, char **argv);
int shmkit_cmd_sub(int argc, char **argv);
/* A topic's figures for stat, from an observer handle on name (flags: SHMKIT_SEG_SYSV
 * or 0): JSON members, each starting with ", " (json), or lines of text. Returns a
 * string to free(), or NULL when the topic cannot be read. */
char *shmkit__topic_describe(const char *name, unsigned flags, int json);

#endif
