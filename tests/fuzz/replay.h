/* Replays a fuzz target without libFuzzer, so that every build runs it under ctest:
 * first each file of its seed corpus (tests/fuzz/corpus/<target>), then seeded random
 * inputs. Every input runs under alarm(): a hang is reported with the input that
 * caused it, as a crash is by the signal's default action. */
#ifndef SHMKIT_FUZZ_REPLAY_H
#define SHMKIT_FUZZ_REPLAY_H

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What is running, for the alarm handler. */
static char replay_what[1200];

static inline void replay_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "replay: input hung past its bound: ";
	ssize_t r = write(2, msg, sizeof msg - 1);
	r = write(2, replay_what, strlen(replay_what));
	r = write(2, "\n", 1);
	(void)r;
	_exit(1);
}

/* A crash: say which input, then die of the same signal. */
static inline void replay_crash(int sig)
{
	static const char msg[] = "replay: crash on ";
	ssize_t r = write(2, msg, sizeof msg - 1);
	r = write(2, replay_what, strlen(replay_what));
	r = write(2, "\n", 1);
	(void)r;
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline void replay_signals(void)
{
	signal(SIGALRM, replay_alarm);
	signal(SIGSEGV, replay_crash);
	signal(SIGBUS, replay_crash);
	signal(SIGABRT, replay_crash);
	signal(SIGILL, replay_crash);
	signal(SIGFPE, replay_crash);
}

static inline void replay_one(const uint8_t *in, size_t n, unsigned bound_s)
{
	alarm(bound_s);
	LLVMFuzzerTestOneInput(in, n);
	alarm(0);
}

/* Each regular file of @dir, in name order. Returns the number replayed, or -1 if the
 * directory cannot be read. */
static inline int replay_corpus(const char *dir, unsigned bound_s)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), done = 0;
	if (n < 0)
		return -1;
	replay_signals();
	for (int i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
		FILE *f = ents[i]->d_name[0] == '.' ? NULL : fopen(path, "rb");
		free(ents[i]);
		if (!f)
			continue;
		static uint8_t buf[1 << 16];
		size_t len = fread(buf, 1, sizeof buf, f);
		fclose(f);
		snprintf(replay_what, sizeof replay_what, "corpus file %s", path);
		replay_one(buf, len, bound_s);
		done++;
	}
	free(ents);
	return done;
}

static inline uint64_t replay_rand(uint64_t *s)
{
	/* xorshift64*: reproducible from the printed seed */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* @runs random inputs of @min to @max bytes; @shape may bend each towards the target's
 * format. */
static inline void replay_random(uint64_t seed, int runs, size_t min, size_t max, unsigned bound_s,
			  void (*shape)(uint8_t *in, size_t n, uint64_t *s))
{
	static uint8_t in[1 << 12];
	if (max > sizeof in)
		max = sizeof in;
	if (min < 1 || min > max)
		min = 1;
	replay_signals();
	for (int i = 0; i < runs; i++) {
		snprintf(replay_what, sizeof replay_what, "random input %d (seed %#llx before it)", i,
			 (unsigned long long)seed);
		size_t n = min + replay_rand(&seed) % (max - min + 1);
		for (size_t j = 0; j < n; j++)
			in[j] = (uint8_t)replay_rand(&seed);
		if (shape)
			shape(in, n, &seed);
		replay_one(in, n, bound_s);
	}
}

#endif
