#!/bin/sh
# bench_bridge_test.sh SHMKIT: `shmkit bench --bridge` runs one tiny round (servers,
# bridges, all four paths, both sizes) and prints every line it promises: the setup
# (saying that the judged nats.c paths flush as the bridge does), the round-trip and
# throughput rows with their losses (the nats.c-on-its-tick row among them), the CPU
# table, a PASS or MISS line with its threshold for each of the four targets, naming
# the flushing nats.c it divides by, and the context ratios; it leaves no server, bridge,
# segment or temporary directory behind, also when it is stopped mid-run; usage errors
# exit 2 and a missing nats-server is a clear "skipped" line. No time is asserted.
# Skips (77) when nats-server is not installed or the tool was built without libnats.
set -u
S=${1:?usage: bench_bridge_test.sh SHMKIT}
. "$(dirname "$0")/tool_lib.sh"

# Without nats-server on PATH: a clear line, exit 0, whatever the build.
out=$(PATH=/nonexistent "$S" bench --bridge 2>&1)
st=$?
case "$out" in
*"skipped: nats-server not found"* | *"skipped: this shmkit was built without libnats"*) ok ;;
*) fail "no nats-server: expected a skipped line, got: $out" ;;
esac
check "no nats-server: exit 0 (got $st)" [ "$st" -eq 0 ]

if ! command -v nats-server >/dev/null 2>&1; then
	echo "SKIP: nats-server is not installed (apt-get install nats-server)"
	exit 77
fi
if ! "$S" bridge --help >/dev/null 2>&1; then
	out=$("$S" bench --bridge 2>&1)
	case "$out" in
	*"skipped: this shmkit was built without libnats"*) ;;
	*) echo "FAIL: built without libnats: expected a skipped line, got: $out" >&2; exit 1 ;;
	esac
	echo "SKIP: shmkit was built without libnats: no bridge (apt-get install libnats-dev)"
	exit 77
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ls -d /tmp/shmkit-bench-bridge-* 2>/dev/null | sort >"$T/tmp.before"

# Usage: --bridge prints a table only, and is a section of its own.
"$S" bench --bridge --json >/dev/null 2>&1
st=$?; check "--bridge --json: exit 2 (got $st)" [ "$st" -eq 2 ]
"$S" bench --bridge --topic >/dev/null 2>&1
st=$?; check "--bridge --topic: exit 2 (got $st)" [ "$st" -eq 2 ]

# leftovers TAG: what a run with host ids TAGa/TAGb left: segments, processes.
leftovers() {
	ls /dev/shm 2>/dev/null | grep -e "$1" || true
	pgrep -f "shmkit-$1" 2>/dev/null || true      # servers: --cluster_name shmkit-TAG
	pgrep -f "host-id $1" 2>/dev/null || true     # bridges
}

# --- one tiny round ---------------------------------------------------------------
# 100 ms trials: long enough for a figure even on a loaded machine (a row without one
# still counts below, as it says why: no timing is asserted).
"$S" bench --bridge --no-nice --rounds 1 --trial-ms 100 >"$T/out" 2>"$T/err"
st=$?
check "one round: exit 0 (got $st; stderr: $(cat "$T/err"))" [ "$st" -eq 0 ]
has() { grep -qF -- "$1" "$T/out" || { fail "output lacks: $1"; return 1; }; ok; }
has "shmkit bench --bridge (shmkit "
has "machine: "
has "two nats-servers clustered on loopback"
has "Bridges: two \`shmkit bridge\` processes (this binary, as deployed)"
has "the judged nats.c paths flush as the bridge does (FlushTimeout when nats.c holds bytes"
has "\"on nats.c's 1 ms tick\": never flushed, nats.c's flusher writes (context, not judged)"
has "÷nats.c: ÷ the nats.c row flushing as the bridge"
has "Round trip A → B → A"
has "Throughput A → B, windowed"
has "CPU per message, µs"
has "Bridge targets, against plain nats.c flushing as the bridge does (the strict comparison):"
has "the median of the per-round ratios, and their quartiles"
has "Where the ratios come from"
for size in "64 B" "64 KiB"; do
	# each path, each kind: a row with its figures, or a dash / a sentence when
	# nothing was timed (never a failure: a case that failed prints "failed:")
	for label in "topic → bridge → NATS → bridge → topic" \
		"nats.c publish → NATS → nats.c subscribe" \
		"the same with the bridge's headers" \
		"plain nats.c on its 1 ms tick, no flush"; do
		n=$(grep -cE "$label +$size +([0-9]|- |no round trip timed)" "$T/out")
		check "two rows of $size (round trip, throughput): $label ($n)" [ "$n" -eq 2 ]
	done
done
# the CPU table has each path (a case that moved nothing has no row: at least one)
for path in bridge "nats\.c" "nats\.c \+ headers" "nats\.c on its tick"; do
	n=$(grep -cE "^  (round trip|stream), $path +(64 B|64 KiB) +[0-9]" "$T/out")
	check "CPU rows for $path ($n)" [ "$n" -ge 1 ]
done
for t in "bridge RTT / nats.c flushing alike, 64 B       <=  1.10" \
	"bridge RTT / nats.c flushing alike, 64 KiB     <=  1.10" \
	"bridge msgs/s / nats.c flushing alike, 64 B    >=  0.80" \
	"bridge msgs/s / nats.c flushing alike, 64 KiB  >=  0.80"; do
	if grep -qE "^  (PASS|MISS)  $t  measured +[0-9.]+ " "$T/out"; then ok; else
		fail "no PASS/MISS line with a measured ratio for: $t"
	fi
done
# the context ratios, each with four figures (a dash when a round had none)
for l in "bridge ÷ nats\.c with headers \(topics\)" "nats\.c with headers ÷ nats\.c \(headers\)" \
	"bridge ÷ nats\.c on its tick" "nats\.c on its tick ÷ nats\.c flushing"; do
	if grep -qE "^  $l +([0-9.]+|-) +([0-9.]+|-) +([0-9.]+|-) +([0-9.]+|-)\$" "$T/out"; then
		ok
	else
		fail "no context line with four ratios: $l"
	fi
done
tag=$(sed -n 's/.*host ids \(bb[0-9]*\)a and .*/\1/p' "$T/out")
check "the output names the host ids" [ -n "$tag" ]
if [ -n "$tag" ]; then
	left=$(leftovers "$tag")
	check "nothing left after the run: $left" [ -z "$left" ]
fi

# --- stopped mid-run: SIGTERM cleans up too -----------------------------------------
"$S" bench --bridge --no-nice --rounds 10000 --trial-ms 20 >"$T/out2" 2>"$T/err2" &
bp=$!
i=0
while [ $i -lt 300 ] && ! [ -e "/dev/shm/shmkit-bridge-bb${bp}b" ]; do
	sleep 0.1; i=$((i + 1))
done
check "the stopped run's bridge B came up" [ -e "/dev/shm/shmkit-bridge-bb${bp}b" ]
sleep 0.5
during=$(leftovers "bb$bp")
check "leftovers sees a running bench's segments, servers and bridges" [ -n "$during" ]
kill -TERM "$bp"
wait "$bp"
st=$?
check "stopped run: exit 1 (got $st)" [ "$st" -eq 1 ]
check "stopped run: says so" grep -q "interrupted" "$T/err2"
left=$(leftovers "bb$bp")
check "nothing left after the stopped run: $left" [ -z "$left" ]

ls -d /tmp/shmkit-bench-bridge-* 2>/dev/null | sort >"$T/tmp.after"
check "no temporary directory left" cmp -s "$T/tmp.before" "$T/tmp.after"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
