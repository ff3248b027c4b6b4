#!/bin/sh
# Drives the tool's live views and topic recording: top --once --json and hz read a
# channel's and a topic's rate within 20 % of what tests/live_pace sends at a known
# pace (a consumer draining meanwhile); record then replay (full speed and at the
# recorded pace) reproduces every message of a topic in order, every byte checked;
# record stops at end-of-stream, --count, --duration and SIGINT with a complete file;
# hostile and truncated record files (every truncation of a good one, random byte
# flips) give a clear error and exit 1, never a crash; --help and bad options.
# Usage: tool_live_test.sh PATH/TO/shmkit PATH/TO/live_pace
set -u
tool="$1"
pace="$2"
# top lists every segment on the machine: where we may, run in a private IPC namespace
# with a /dev/shm of our own, so that other tests' segments do not come and go in it.
. "$(dirname "$0")/tool_lib.sh"
tool_private "$0" "$@"
if ! command -v python3 >/dev/null 2>&1; then
	echo "python3 not found: skipped"
	exit 77
fi
tag="shmkit-livetest-$$"
tmp=$(mktemp -d)
bg=""   # background processes, killed at exit

cleanup() {
	for p in $bg; do kill "$p" 2>/dev/null; done
	for p in $bg; do wait "$p" 2>/dev/null; done
	find /dev/shm -maxdepth 1 -name "*$tag*" -exec rm -f {} + 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for DESCRIPTION COMMAND...: polls COMMAND for up to 20 s.
wait_for() {
	d="$1"; shift
	end=$(($(date +%s) + 20))
	while ! "$@" 2>/dev/null; do
		if [ "$(date +%s)" -ge $end ]; then fail "timed out: $d"; return 1; fi
		sleep 0.05
	done
	return 0
}
# subscribers NAME: how many subscriber slots the topic's stat lists.
subscribers() {
	"$tool" stat --json "$1" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["topic"]["subscribers"])' 2>/dev/null
}
has_subscriber() { [ "$(subscribers "$1")" = 1 ]; }
# within VALUE TARGET: VALUE within 20 % of TARGET.
within() {
	python3 -c 'import sys; v, t = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(v - t) <= 0.2 * t else 1)' "$1" "$2" 2>/dev/null
}

# start_pace KIND NAME RATE SECONDS: live_pace in the background (pace_pid), once it
# has sent its first message.
start_pace() {
	: >"$tmp/pace"
	"$pace" "$@" >"$tmp/pace" 2>&1 &
	pace_pid=$!; bg="$bg $pace_pid"
	wait_for "live_pace $1 starts" grep -q started "$tmp/pace"
	sleep 0.3
}
# hz_rate NAME KIND: one second of hz --json, its rate (the kind checked).
hz_rate() {
	"$tool" hz --json --count 1 "$1" >"$tmp/hz.json"
	python3 -c 'import json,sys; l = json.load(open(sys.argv[1])); assert l["kind"] == sys.argv[2]; print(l["rate"])' "$tmp/hz.json" "$2"
}

# ---- help and usage ----
for c in top hz record replay; do
	"$tool" $c --help >"$tmp/help" 2>&1; check "$c --help exits 0" [ $? -eq 0 ]
	check "$c --help says usage" grep -q "usage: shmkit $c" "$tmp/help"
	"$tool" help $c >"$tmp/help" 2>&1; check "help $c" grep -q "usage: shmkit $c" "$tmp/help"
done
"$tool" --help | grep -q "^  top " ; check "the command list names top" [ $? -eq 0 ]
"$tool" top --interval 0 >/dev/null 2>"$tmp/err"; check "top --interval 0 exits 2" [ $? -eq 2 ]
check "top says which interval is bad" grep -q -- "--interval 0: seconds from 0.01 to 3600 expected" "$tmp/err"
"$tool" top --count x >/dev/null 2>&1; check "top --count x exits 2" [ $? -eq 2 ]
"$tool" top --bogus >/dev/null 2>&1; check "top --bogus exits 2" [ $? -eq 2 ]
"$tool" hz >/dev/null 2>&1; check "hz without NAME exits 2" [ $? -eq 2 ]
"$tool" hz --window 0 "/$tag-x" >/dev/null 2>&1; check "hz --window 0 exits 2" [ $? -eq 2 ]
"$tool" hz "/$tag-none" --count 1 2>"$tmp/err"; check "hz on a missing name exits 1" [ $? -eq 1 ]
check "hz names what is missing" grep -q "shmkit hz: /$tag-none: " "$tmp/err"
"$tool" create "/$tag-data" 64 && "$tool" hz "/$tag-data" --count 1 2>"$tmp/err"
check "hz on a data segment exits 1" [ $? -eq 1 ]
check "hz says what the segment is" grep -qx "shmkit hz: /$tag-data: a data segment, not a channel, topic or blob" "$tmp/err"
"$tool" record "/$tag-t" >/dev/null 2>&1; check "record without FILE exits 2" [ $? -eq 2 ]
"$tool" replay >/dev/null 2>&1; check "replay without args exits 2" [ $? -eq 2 ]
"$tool" record --duration -1 "/$tag-t" "$tmp/x" >/dev/null 2>&1
check "record --duration -1 exits 2" [ $? -eq 2 ]

# ---- top and hz: a channel paced at 2000 messages/s, a consumer draining ----
rate=2000
chan="/$tag-chan"
start_pace chan "$chan" $rate 9 # top, hz and perhaps hz again sample it while it sends
"$tool" top --once --json >"$tmp/top.json"; st=$?
check "top --once --json exits 0" [ $st -eq 0 ]
check "top --once --json parses" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/top.json"
python3 - "$tmp/top.json" "$chan" $rate >"$tmp/row" 2>&1 <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
rows = [s for s in doc["segments"] if s["name"] == sys.argv[2]]
assert len(rows) == 1, "the channel is listed once: %r" % rows
r = rows[0]
rate = float(sys.argv[3])
assert r["kind"] == "chan" and r["backend"] == "posix" and r["readable"], r
assert abs(r["msgs_per_s"] - rate) <= 0.2 * rate, "msgs/s %r" % r["msgs_per_s"]
assert abs(r["bytes_per_s"] - 64 * rate) <= 0.2 * 64 * rate, "bytes/s %r" % r["bytes_per_s"]
assert r["fill_pct"] is not None and 0 <= r["fill_pct"] <= 100, r
assert r["sleeps_per_s"] is not None and r["sleeps_per_s"] >= 0, r
c = r["chan"]
assert c["producer_pid"] and c["consumer_pid"] and not c["producer_closed"], c
assert c["producer_alive"] is True and c["consumer_alive"] is True, c
assert doc["interval"] == 1, doc["interval"]
print("top: %.0f msgs/s, %.0f B/s" % (r["msgs_per_s"], r["bytes_per_s"]))
PY
check "top shows the channel's rate within 20 % ($(tail -n 1 "$tmp/row"))" [ $? -eq 0 ]
echo "measured at $rate msgs/s sent: $(tail -n 1 "$tmp/row")"
# The text table shows it too, with its figures in the columns.
"$tool" top --once --interval 0.5 >"$tmp/top.txt"
check "top's table has its header" grep -q "^TYPE  *NAME  *KIND  *MSG/S  *BYTES/S  *FILL  *SLEEP/S  *PEERS" "$tmp/top.txt"
check "top's table lists the channel with its peers" grep -q "^posix $chan  *chan .* prod [0-9][0-9]* cons [0-9]" "$tmp/top.txt"
check "top --once draws no escape sequences into a file" sh -c "! grep -q \"\$(printf '\\033')\" '$tmp/top.txt'"
# hz: two lines, each within 20 %; the window's mean too. A window that the machine
# stalled (the paced producer or hz descheduled, seen under TSan with the bridge tests
# running beside) is measured once more: a wrong hz fails both times.
hz_chan_check() {
	"$tool" hz --json --count 2 "$chan" >"$tmp/hz.json" || return 1
	[ "$(wc -l <"$tmp/hz.json")" -eq 2 ] || return 1
	python3 - "$tmp/hz.json" $rate >"$tmp/row" 2>&1 <<'PY'
import json, sys
rate = float(sys.argv[2])
lines = [json.loads(l) for l in open(sys.argv[1])]
for n, l in enumerate(lines, 1):
    assert l["kind"] == "chan" and l["window"] == n, l
    assert abs(l["rate"] - rate) <= 0.2 * rate, "rate %r" % l["rate"]
    assert l["min"] <= l["mean"] <= l["max"], l
assert abs(lines[-1]["mean"] - rate) <= 0.2 * rate, lines[-1]
assert lines[1]["messages"] > lines[0]["messages"], lines
print("hz: %.0f, %.0f msgs/s" % (lines[0]["rate"], lines[1]["rate"]))
PY
}
if ! hz_chan_check; then
	echo "hz, first try: $(tail -n 1 "$tmp/row"); measuring again"
	hz_chan_check
fi
check "hz shows the channel's rate within 20 % ($(tail -n 1 "$tmp/row"))" [ $? -eq 0 ]
echo "measured at $rate msgs/s sent: $(tail -n 1 "$tmp/row")"
"$tool" hz --interval 0.2 --count 1 "$chan" >"$tmp/hz.txt"
check "hz text line" grep -q "^$chan: rate .* msg/s  min .*  max .*  mean .*  (window 1)" "$tmp/hz.txt"
wait "$pace_pid"; st=$?
check "the consumer got every paced message, in order" [ $st -eq 0 ]

# ---- hz on a topic, paced at 1000 messages/s, one subscriber draining ----
topic="/$tag-topic"
start_pace topic "$topic" 1000 6 # hz, then top, sample it while it publishes
r=$(hz_rate "$topic" topic)
check "hz shows the topic's rate within 20 % ($r msgs/s)" within "${r:-0}" 1000
echo "measured at 1000 msgs/s published: hz $r msgs/s"
"$tool" top --once --json --interval 0.5 >"$tmp/top.json"
python3 - "$tmp/top.json" "$topic" <<'PY'
import json, sys
r = [s for s in json.load(open(sys.argv[1]))["segments"] if s["name"] == sys.argv[2]][0]
t = r["topic"]
assert r["kind"] == "topic" and t["delivery"] == "reliable", r
assert t["publishers"] == 1 and t["subscribers"] == 1 and t["subscribers_alive"] == 1, t
assert r["lag"] is not None and r["msgs_per_s"] > 0, r
PY
check "top shows the topic's publisher, live subscriber and lag" [ $? -eq 0 ]
wait "$pace_pid"; st=$?
check "the topic's subscriber got every paced message" [ $st -eq 0 ]

printf 'v1' | "$tool" write "/$tag-data" # a data segment is not listed by top
python3 -c 'import json,sys
d = json.load(sys.stdin)
assert all(s["kind"] in ("chan", "topic", "blob") for s in d["segments"]), d
assert not [s for s in d["segments"] if s["name"].endswith("-data")], d' <<EOF
$("$tool" top --once --json --interval 0.1)
EOF
check "top lists channels, topics and blobs only" [ $? -eq 0 ]
"$tool" top --count 2 --interval 0.1 --json >"$tmp/frames"
check "top --count 2 prints two JSON frames, one a line" python3 -c '
import json, sys
frames = [json.loads(l) for l in open(sys.argv[1])]
assert len(frames) == 2 and all("segments" in f for f in frames)' "$tmp/frames"

# A blob's writes are its messages: 200 writes/s.
blob="/$tag-blob"
start_pace blob "$blob" 200 6 # as long as the channel's: hz and top must both sample it while it writes
r=$(hz_rate "$blob" blob)
check "hz shows the blob's writes/s within 20 % ($r)" within "${r:-0}" 200
"$tool" top --once --json --interval 0.5 >"$tmp/top.json"
python3 - "$tmp/top.json" "$blob" <<'PY'
import json, sys
r = [s for s in json.load(open(sys.argv[1]))["segments"] if s["name"] == sys.argv[2]][0]
assert r["kind"] == "blob" and r["blob"]["size"] == 64 and r["blob"]["writes"] > 0, r
assert abs(r["msgs_per_s"] - 200) <= 40 and r["bytes_per_s"] is None, r
PY
check "top shows the blob's writes/s" [ $? -eq 0 ]
wait "$pace_pid"; check "the paced writer ends well" [ $? -eq 0 ]

# In a terminal, top redraws in place and q ends it; SIGINT ends top and hz, exit 0.
if command -v script >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
	(sleep 1; printf q) | timeout 20 script -qfc "'$tool' top --interval 0.2 && stty -a" /dev/null >"$tmp/tty"
	check "top in a terminal quits on q" [ $? -eq 0 ]
	check "top gives the terminal back as it was (icanon, echo)" sh -c "grep -q ' icanon ' '$tmp/tty' && grep -q ' echo ' '$tmp/tty'"
	esc=$(printf '\033')
	check "top in a terminal clears and redraws" grep -q "$esc\[H$esc\[J" "$tmp/tty"
else
	echo "script or timeout not found: top in a terminal not checked"
fi
"$tool" top --interval 0.1 >"$tmp/frames.txt" &
top_pid=$!; bg="$bg $top_pid"
wait_for "top draws" grep -q "^TYPE" "$tmp/frames.txt"
kill -INT "$top_pid"; wait "$top_pid"; check "top ends on SIGINT, exit 0" [ $? -eq 0 ]
"$tool" hz --interval 0.1 "$topic" >"$tmp/hz.txt" &
hz_pid=$!; bg="$bg $hz_pid"
wait_for "hz prints" grep -q "rate" "$tmp/hz.txt"
kill -INT "$hz_pid"; wait "$hz_pid"; check "hz ends on SIGINT, exit 0" [ $? -eq 0 ]

# ---- record, then replay: every message of a topic, in order, every byte ----
n=3000
src="/$tag-rec"
dst="/$tag-play"
"$tool" record --reliable "$src" "$tmp/rec" 2>"$tmp/rec.err" &
rec_pid=$!; bg="$bg $rec_pid"
wait_for "record subscribes" has_subscriber "$src"
"$pace" publish "$src" $n; check "publish $n messages" [ $? -eq 0 ]
wait "$rec_pid"; st=$?
check "record ends at end-of-stream, exit 0" [ $st -eq 0 ]
check "record sums up" grep -q "^shmkit record: $n messages, [0-9]* bytes to $tmp/rec\$" "$tmp/rec.err"
"$tool" replay --check "$tmp/rec" >"$tmp/check"; st=$?
check "replay --check accepts the recording" [ $st -eq 0 ]
check "replay --check counts every message" grep -q "^$tmp/rec: $n messages, " "$tmp/check"
# A topic whose publishers all closed reports end-of-stream to a subscriber that
# joins later: each replay goes to a topic of its own.
for mode in --fast --paced; do
	: >"$tmp/expect"
	"$pace" expect "$dst$mode" $n >"$tmp/expect" 2>"$tmp/expect.err" &
	exp_pid=$!; bg="$bg $exp_pid"
	wait_for "the checker subscribes" grep -q subscribed "$tmp/expect"
	"$tool" replay $([ $mode = --fast ] && echo --fast) "$tmp/rec" "$dst$mode"; st=$?
	check "replay $mode exits 0" [ $st -eq 0 ]
	wait "$exp_pid"; st=$?
	check "replay $mode delivers all $n messages in order, every byte ($(cat "$tmp/expect.err"))" [ $st -eq 0 ]
done

# Timestamps kept: five messages 0.3 s apart replay over at least 1 s (at the
# recorded pace), and the file says they span at least 1.1 s.
slow="/$tag-slow"
"$tool" record "$slow" "$tmp/slow" 2>/dev/null &
rec_pid=$!; bg="$bg $rec_pid"
wait_for "record subscribes" has_subscriber "$slow"
for i in 1 2 3 4 5; do echo "m$i"; sleep 0.3; done | "$tool" pub "$slow"
wait "$rec_pid"; check "record of a slow topic exits 0" [ $? -eq 0 ]
span=$("$tool" replay --check "$tmp/slow" | sed -n 's/.* over \([0-9.]*\) s,.*/\1/p')
check "the recording spans the publisher's pauses ($span s)" python3 -c "import sys; sys.exit(0 if float('${span:-0}') >= 1.1 else 1)"
"$tool" sub "$slow-2" >"$tmp/slow.out" &
sub_pid=$!; bg="$bg $sub_pid"
wait_for "sub subscribes" has_subscriber "$slow-2"
t0=$(date +%s.%N)
"$tool" replay "$tmp/slow" "$slow-2"; st=$?
t1=$(date +%s.%N)
wait "$sub_pid"
check "paced replay exits 0" [ $st -eq 0 ]
check "paced replay delivers the lines" [ "$(cat "$tmp/slow.out" | tr '\n' ' ')" = "m1 m2 m3 m4 m5 " ]
check "paced replay keeps the recorded gaps ($t0 .. $t1)" python3 -c "import sys; sys.exit(0 if $t1 - $t0 >= 1.0 else 1)"

# record --count, --duration, SIGINT: stops with a complete file.
cnt="/$tag-cnt"
"$tool" record --reliable --count 10 "$cnt" "$tmp/cnt" 2>/dev/null &
rec_pid=$!; bg="$bg $rec_pid"
wait_for "record subscribes" has_subscriber "$cnt"
seq 1 20 | "$tool" pub --reliable "$cnt" &
pub_pid=$!; bg="$bg $pub_pid"
wait "$rec_pid"; check "record --count exits 0" [ $? -eq 0 ]
wait "$pub_pid"
"$tool" replay --check "$tmp/cnt" | grep -q ": 10 messages,"; check "record --count 10 records 10 messages" [ $? -eq 0 ]
t0=$(date +%s.%N)
"$tool" record --duration 0.5 "/$tag-dur" "$tmp/dur" 2>/dev/null; st=$?
t1=$(date +%s.%N)
check "record --duration exits 0" [ $st -eq 0 ]
check "record --duration 0.5 lasts that long" python3 -c "import sys; sys.exit(0 if 0.45 <= $t1 - $t0 <= 15 else 1)"
"$tool" replay --check "$tmp/dur" | grep -q ": 0 messages,"; check "an empty recording is valid" [ $? -eq 0 ]
fifo="$tmp/fifo"
mkfifo "$fifo"
intr="/$tag-int"
"$tool" record "$intr" "$tmp/int" 2>/dev/null &
rec_pid=$!; bg="$bg $rec_pid"
wait_for "record subscribes" has_subscriber "$intr"
"$tool" pub "$intr" <"$fifo" &
pub_pid=$!; bg="$bg $pub_pid"
exec 3>"$fifo"
printf 'a\nb\nc\n' >&3
wait_for "three messages recorded" sh -c "\"$tool\" stat --json \"$intr\" | grep -q '\"received\": 3'"
kill -INT "$rec_pid"
wait "$rec_pid"; check "record stops on SIGINT, exit 0" [ $? -eq 0 ]
exec 3>&-
wait "$pub_pid"
"$tool" replay --check "$tmp/int" | grep -q ": 3 messages,"; check "the interrupted recording is complete" [ $? -eq 0 ]

# ---- hostile and truncated record files: a clear error, exit 1, never a crash ----
# bad NAME CONTENT-MAKER MESSAGE: replay FILE /topic exits 1 and says MESSAGE; nothing
# is published (the topic is not even made).
bad() {
	python3 -c "import sys, struct; sys.stdout.buffer.write($2)" >"$tmp/bad"
	"$tool" replay "$tmp/bad" "/$tag-bad" >/dev/null 2>"$tmp/err"; st=$?
	check "$1: exit 1" [ $st -eq 1 ]
	check "$1: says '$3'" grep -qF -- "$3" "$tmp/err"
	check "$1: publishes nothing" [ ! -e "/dev/shm/$tag-bad" ]
}
H="b'SHMKITRC' + struct.pack('<IIqQ', 1, 32, 0, 0)"
R="struct.pack('<QII', 0, 3, 0) + b'abc'"
bad "empty file" "b''" "truncated header (0 of 32 bytes)"
bad "short header" "b'SHMKITRC' + b'\\1\\0'" "truncated header (10 of 32 bytes)"
bad "bad magic" "b'NOTMAGIC' + bytes(24)" "not a shmkit record file (bad magic)"
bad "future version" "b'SHMKITRC' + struct.pack('<IIqQ', 2, 32, 0, 0)" "record format version 2; this shmkit reads version 1"
bad "bad header size" "b'SHMKITRC' + struct.pack('<IIqQ', 1, 40, 0, 0)" "bad header (size 40, reserved 0; expected 32 and 0)"
bad "truncated record header" "$H + $R + b'\\0' * 7" "truncated record 2 at byte 51 (the file ends inside its 16-byte header)"
bad "zero length" "$H + struct.pack('<QII', 0, 0, 0)" "record 1 at byte 32: bad length 0 (1 to 268435456)"
bad "huge length" "$H + struct.pack('<QII', 0, 0xffffffff, 0)" "record 1 at byte 32: bad length 4294967295"
bad "truncated message" "$H + $R + struct.pack('<QII', 5, 100, 0) + b'xyz'" "truncated record 2 at byte 51 (100 bytes of message, 3 left in the file)"
bad "time going back" "$H + struct.pack('<QII', 9, 1, 0) + b'a' + struct.pack('<QII', 8, 1, 0) + b'b'" "record 2 at byte 49: time 8 ns before the previous record's"
bad "time out of range" "$H + struct.pack('<QII', 1 << 63, 1, 0) + b'a'" "record 1 at byte 32: time 9223372036854775808 ns out of range"
bad "reserved field" "$H + struct.pack('<QII', 0, 1, 7) + b'a'" "record 1 at byte 32: reserved field not zero"
"$tool" replay "$tmp" "/$tag-bad" 2>"$tmp/err"; st=$?
check "a directory: exit 1" [ $st -eq 1 ]
check "a directory: says so" grep -qF "$tmp: not a regular file" "$tmp/err"
"$tool" replay "$tmp/none" "/$tag-bad" 2>"$tmp/err"; st=$?
check "a missing file: exit 1 and says why" sh -c "[ $st -eq 1 ] && grep -qF '$tmp/none: No such file or directory' '$tmp/err'"
# A message larger than the topic takes: refused before anything is published.
"$tool" pub --capacity 4096 "/$tag-small" </dev/null
python3 -c "import sys, struct; sys.stdout.buffer.write($H + struct.pack('<QII', 0, 2000, 0) + b'x' * 2000)" >"$tmp/big"
"$tool" replay "$tmp/big" "/$tag-small" 2>"$tmp/err"; st=$?
check "too large for the topic: exit 1" [ $st -eq 1 ]
check "too large for the topic: says the sizes" grep -qF "holds a message of 2000 bytes; topic /$tag-small takes 1024 at most" "$tmp/err"
# Every truncation of a good recording, and random byte flips: exit 0 (a cut at a
# record's end, or a flip that keeps the file valid) or 1, never a signal.
python3 - "$tmp/slow" "$tmp/mut" <<'PY'
import os, random, sys
data = open(sys.argv[1], "rb").read()
os.makedirs(sys.argv[2], exist_ok=True)
for n in range(len(data)):
    open(os.path.join(sys.argv[2], "cut-%03d" % n), "wb").write(data[:n])
rnd = random.Random(11)
for i in range(150):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        b[rnd.randrange(len(b))] = rnd.randrange(256)
    open(os.path.join(sys.argv[2], "flip-%03d" % i), "wb").write(bytes(b))
PY
crashes=0; cut_ok=0
for f in "$tmp/mut"/*; do
	"$tool" replay --check "$f" >/dev/null 2>"$tmp/err"; st=$?
	if [ $st -ne 0 ] && [ $st -ne 1 ]; then crashes=$((crashes + 1)); echo "status $st on $f" >&2; fi
	if [ $st -eq 1 ] && ! grep -q "^shmkit replay: $f: " "$tmp/err"; then crashes=$((crashes + 1)); echo "no clear error for $f" >&2; fi
	case "$f" in */cut-*) [ $st -eq 0 ] && cut_ok=$((cut_ok + 1)) ;; esac
done
check "every damaged file gives exit 0 or 1 with the file named, never a crash" [ $crashes -eq 0 ]
# Cuts that are valid files: the bare header and the end of each of the 4 first records.
check "exactly the cuts at record boundaries are valid ($cut_ok)" [ $cut_ok -eq 5 ]

echo "tool_live_test: $passes passed, $fails failed"
[ $fails -eq 0 ]
