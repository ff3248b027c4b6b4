/* shmkit(1) — the subcommands. Each is one function taking the arguments after the
 * tool's name (argv[0] is the subcommand's name) and returning the process exit code.
 * Every subcommand answers --help on stdout with exit 0. */
#ifndef SHMKIT_TOOLS_CMD_H
#define SHMKIT_TOOLS_CMD_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <shmkit/shmkit.h>
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
	/* Optional: the words for a failed send's error r (written into buf), or NULL
	 * for shmkit_strerror()'s. */
	const char *(*why)(void *h, int r, char *buf, size_t len);
};
int shmkit__send_lines_how(FILE *in, const struct shmkit__lines *how);

/* Commands that run until told to stop (top, hz, record, replay): after
 * shmkit__catch_stop(), SIGINT and SIGTERM set shmkit__stop (to the signal's number)
 * and interrupt sleeps and polls, instead of ending the process, so that the command
 * restores the terminal, flushes its output or completes its file first. */
extern volatile sig_atomic_t shmkit__stop;
void shmkit__catch_stop(void);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t shmkit__mono_ns(void);

/* shmkit_strerror(err), except for an -EPROTO that comes from a segment (name, flags:
 * SHMKIT_SEG_SYSV or not) of another layout than this library's: then "channel layout
 * 4, this library reads layout 3" (or the segment header's), written into buf.
 * tools/layout.c. */
const char *shmkit__strerror_at(int err, const char *name, unsigned flags, char *buf,
				size_t len);

/* shmkit bench [--json] [--quick] [--rounds N] ...: bench/bench.c (measuring) and
 * bench/report.c (statistics, output), two translation units sharing bench/bench.h */
int shmkit_cmd_bench(int argc, char **argv);

/* What ls, stat, gc and top know about a segment: tools/segments.c. */
struct entry {
	struct shmkit_seg_info in;
	/* As shown: "/" and the file's name for POSIX (up to NAME_MAX bytes after the
	 * slash, one more than the library opens), the header's name for a System V
	 * shmkit segment, its key (0x...) for any other System V segment. */
	char name[NAME_MAX + 2];
	char obj[NAME_MAX + 2]; /* what the library is given: POSIX "/x", System V "id:N" */
	dev_t dev;              /* POSIX: the object's identity, which gc matches users by */
	ino_t ino;
	/* Processes seen mapping, holding or attaching it; -1 unknown. POSIX: at least
	 * this many when blind (some processes could not be looked at). */
	int users;
	int blind;
	int lease;              /* POSIX, gc only: probe_unused(), or LEASE_UNTRIED */
	int stale;              /* garbage to gc --all-users: see verdict() */
};

struct list {
	struct entry *e;
	int n, cap;
};

/* Every POSIX and System V segment on the machine, with its users, appended to l
 * (zeroed by the caller, l->e freed by the caller). Returns 0 or -ENOMEM. */
int shmkit__collect(struct list *l);
/* A kind as the tool names it: "data", "blob", "chan", "topic", "-" (raw), "?". */
const char *shmkit__kind_name(unsigned kind);
/* The kind as a noun with its article, for errors: "a channel", "a data segment". */
const char *shmkit__kind_noun(unsigned kind);

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

/* A blob's, channel's or topic's figures, as stat, top and hz read them: tools/live.c.
 * Read through a read-only handle of that kind (an observer), which takes no role and
 * writes nothing a peer reads. */
struct shmkit__figures {
	unsigned kind;                    /* SHMKIT_KIND_BLOB, _CHAN or _TOPIC */
	int64_t when_ns;                  /* CLOCK_MONOTONIC right after the counters */
	size_t blob_size;                 /* blob: its size */
	int64_t blob_version;             /* blob: completed writes */
	struct shmkit_chan_stats chan;    /* chan: its counters */
	struct shmkit_topic_stats topic;  /* topic: its counters */
	struct shmkit_topic_sub_info *subs; /* topic: the listed subscribers (malloc'd) */
	int nsubs;
};
/* Reads name's figures (flags: SHMKIT_SEG_SYSV or 0) as kind. Returns 0, or the
 * library's error (-ENOENT, -EPROTO, ...; -EINVAL for another kind). Free with
 * shmkit__figures_free(), also after a failure. */
int shmkit__figures_read(const char *name, unsigned flags, unsigned kind,
			 struct shmkit__figures *f);
void shmkit__figures_free(struct shmkit__figures *f);

/* The live views: tools/live.c */
int shmkit_cmd_top(int argc, char **argv);
int shmkit_cmd_hz(int argc, char **argv);

/* Topic recording: tools/record.c */
int shmkit_cmd_record(int argc, char **argv);
int shmkit_cmd_replay(int argc, char **argv);

/* The topic commands: tools/topic.c */
int shmkit_cmd_pub(int argc, char **argv);
int shmkit_cmd_sub(int argc, char **argv);
/* Options of the commands that open a topic by name (pub, sub, record, replay). */
struct topic_opts {
	const char *name;
	unsigned flags;   /* SHMKIT_SEG_* and SHMKIT_TOPIC_* for shmkit_topic_open() */
	size_t capacity;  /* 0: the default when creating, any when opening */
	long count;       /* sub: messages to print; -1 all */
	double timeout;   /* sub: seconds to wait for each message; < 0 forever */
};
/* Opens o->name as role (creating it as pub and sub do, --reliable checked), or says
 * why not as "shmkit CMD: NAME: reason" and returns NULL. */
shmkit_topic *shmkit__topic_open_cmd(const char *cmd, const struct topic_opts *o,
				     unsigned role);
/* A subscriber's next message into *buf, waiting up to timeout: its length, 0 at
 * end-of-stream, or shmkit_topic_receive()'s error. *buf (malloc'd, *cap bytes) grows
 * to the topic's largest message when one does not fit (-EMSGSIZE if it cannot); loss
 * in a lossy topic is reported on stderr as "shmkit CMD: NAME: lost N messages" and
 * the next intact message returned. */
ssize_t shmkit__topic_next(shmkit_topic *t, const char *cmd, const char *name, char **buf,
			   size_t *cap, int64_t timeout);
/* A topic's figures for stat, from an observer handle on name (flags: SHMKIT_SEG_SYSV
 * or 0): JSON members, each starting with ", " (json), or lines of text. Returns a
 * string to free(), or NULL when the topic cannot be read. */
char *shmkit__topic_describe(const char *name, unsigned flags, int json);

/* The NATS bridge: tools/bridge.c, built only with libnats (SHMKIT_HAVE_BRIDGE). */
int shmkit_cmd_bridge(int argc, char **argv);

#endif
