/* shmkit(1) and shmkit bench — JSON values and names as output, one module for both
 * (tools/json.c): the tool's ls/stat and the benchmark's report write every string and
 * number through it, so that both escape alike and neither writes what JSON forbids. It
 * uses nothing of the library, so a test links it alone. */
#ifndef SHMKIT_TOOLS_JSON_H
#define SHMKIT_TOOLS_JSON_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

/* s as a JSON string with its quotes: valid UTF-8 kept, '"' and '\' escaped, newline and
 * tab as \n and \t, other control characters (C0, DEL, C1) as \uXXXX, each byte that is
 * not valid UTF-8 as \udcXX (Python's surrogateescape). NULL is written as null. */
void shmkit__json_str(FILE *f, const char *s);

/* v as a JSON number (printf "%.6g"), or null when v is NaN or infinite. */
void shmkit__json_num(FILE *f, double v);

/* Room for any name escaped for text: a byte becomes at most 4 characters. */
#define SHMKIT_TEXT_MAX (4 * (NAME_MAX + 2) + 1)

/* s for a line of text into out (cap bytes, NUL-terminated; cut short only between
 * characters): backslash and control characters escaped (\\, \n, \t, \r, \xXX),
 * bytes that are not valid UTF-8 as \xXX. Returns the length written. */
size_t shmkit__text_str(char *out, size_t cap, const char *s);

#endif
