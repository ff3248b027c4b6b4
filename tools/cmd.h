/* shmkit(1) — the subcommands. Each is one function taking the arguments after the
 * tool's name (argv[0] is the subcommand's name) and returning the process exit code.
 * Every subcommand answers --help on stdout with exit 0. */
#ifndef SHMKIT_TOOLS_CMD_H
#define SHMKIT_TOOLS_CMD_H

#include <stdio.h>

#include "json.h" /* names and JSON values as output, escaped alike everywhere */

/* Exit codes of the tool and of every subcommand. */
#define SHMKIT_EXIT_OK 0    /* success */
#define SHMKIT_EXIT_FAIL 1  /* the operation failed */
#define SHMKIT_EXIT_USAGE 2 /* bad command line, or a name that needs --posix or --sysv */

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

#endif
