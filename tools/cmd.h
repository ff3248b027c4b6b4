/* shmkit(1) — the subcommands. Each is one function taking the arguments after the
 * tool's name (argv[0] is the subcommand's name) and returning the process exit code.
 * Every subcommand answers --help on stdout with exit 0. */
#ifndef SHMKIT_TOOLS_CMD_H
#define SHMKIT_TOOLS_CMD_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes of the tool and of every subcommand. */
#define SHMKIT_EXIT_OK 0    /* success */
#define SHMKIT_EXIT_FAIL 1  /* the operation failed */
#define SHMKIT_EXIT_USAGE 2 /* bad command line, or a name that needs --posix or --sysv */

/* Names as output, escaped the same way everywhere: tools/escape.c. */
/* s as a JSON string with its quotes: valid UTF-8 kept, control characters as \uXXXX,
 * each byte that is not valid UTF-8 as \udcXX (Python's surrogateescape). */
void shmkit__json_str(FILE *f, const char *s);
/* Room for any name escaped for text: a byte becomes at most 4 characters. */
#define SHMKIT_TEXT_MAX (4 * (NAME_MAX + 2) + 1)
/* s for a line of text into out (cap bytes, NUL-terminated; cut short only between
 * characters): backslash and control characters escaped (\\, \n, \t, \r, \xXX),
 * bytes that are not valid UTF-8 as \xXX. Returns the length written. */
size_t shmkit__text_str(char *out, size_t cap, const char *s);

/* shmkit bench [--json] [--quick] [--rounds N] ...: bench/bench.c */
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

#endif
