#!/bin/sh
# make demo: the seed programs, each producer with its reader in another process.
# Usage: examples/demo.sh BUILD_DIR
set -eu
bin="${1:-build}/examples"
tag="demo-$$"
say() { printf '\n== %s\n' "$*"; }

# A producer that stays alive (server, owner): start it, wait for its "wrote:" line,
# run the reader, then stop the producer with SIGTERM (it cleans up).
pair() { # pair PRODUCER READER NAME
	out=$(mktemp)
	"$bin/$1" "$3" 30 >"$out" &
	pid=$!
	i=0
	until grep -q '^wrote:' "$out"; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
			echo "demo: $1 did not start" >&2
			cat "$out" >&2
			kill $pid 2>/dev/null || true
			rm -f "$out"
			exit 1
		fi
		sleep 0.05
	done
	cat "$out"
	"$bin/$2" "$3"
	kill -TERM $pid
	wait $pid
	rm -f "$out"
}

say "seed 000: shmem_* (System V, whole-buffer read/write): server + client"
pair server client "/tmp/shmkit-$tag"
rm -f "/tmp/shmkit-$tag"

say "seed 001: a struct through System V: write_struct, then read_struct"
"$bin/write_struct" "/tmp/shmkit-$tag-struct"
"$bin/read_struct" "/tmp/shmkit-$tag-struct"

say "seed 002: fshm_open FILE* streams: owner + guest"
pair owner guest "/shmkit-$tag/stream"

say "seed 003: POSIX shm_open: shared_mem_writer, then shared_mem_reader (removes it)"
"$bin/shared_mem_writer" "/shmkit-$tag-posix"
"$bin/shared_mem_reader" "/shmkit-$tag-posix"

if [ -x "$bin/chan_demo" ]; then
	say "channels: a producer and a consumer process exchange messages"
	"$bin/chan_demo"
fi
if [ -x "$bin/topic_demo" ]; then
	say "topics: two publishers, three subscribers, and a late joiner reading the history"
	"$bin/topic_demo"
fi
printf '\ndemo: done\n'
