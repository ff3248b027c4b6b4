#!/bin/sh
# Drives the real shmkit tool: create/ls/stat/cat/write/rm on both backends, send piped
# into recv, pub piped into sub (reliable, lossy with exact losses, timeouts, a dead
# publisher, topics in ls/stat), gc after a SIGKILLed creator, and interoperation with
# ipcs/ipcrm and Python's multiprocessing.shared_memory. Then the trust checks of issue 8: names that
# cannot be confused (a System V segment named by digits, a name in both namespaces),
# listing that does not lie (UTF-8, invalid bytes, dot and 255-byte names, newlines),
# and gc that removes only provable garbage (odd names in use, persistent segments,
# other users' segments).
# Usage: tool_test.sh PATH/TO/shmkit
set -u
tool="$1"
# gc collects every stale segment on the machine, other tests' too (the crash test's
# killed creators are exactly what it removes): so, where we may, run in a private
# IPC namespace with a /dev/shm of our own. Without unshare (or not root), run as is.
. "$(dirname "$0")/tool_lib.sh"
tool_private "$0" "$@"
tag="shmkit-tooltest-$$"
tmp=$(mktemp -d)

sysv_ids=""   # System V segments to remove at exit, by id (ipcrm): no name to misread
holders=""    # processes that hold segments open, killed at exit
# A file named as the library names its liveness tokens (never locked: a dead one).
token=".shmkit-live-$(printf '%016x' $$)"

cleanup() {
	for n in "/$tag-p" "/$tag-raw" "/$tag-py" "/$tag-chan" "/$tag-stale" "/$tag-live" "/$tag-blob"; do
		"$tool" rm "$n" >/dev/null 2>&1
	done
	for n in "/tmp/$tag-s" "/tmp/$tag-sraw" "/tmp/$tag-tsv"; do
		"$tool" rm --sysv "$n" >/dev/null 2>&1
	done
	[ -n "${live_pid:-}" ] && kill "$live_pid" 2>/dev/null
	[ -n "${topic_holder:-}" ] && kill "$topic_holder" 2>/dev/null
	for p in $holders; do kill "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
	for id in $sysv_ids; do ipcrm -m "$id" 2>/dev/null; done
	rm -f "/dev/shm/$token"
	# The trust checks' POSIX segments, whatever their names: every file with our tag.
	find /dev/shm -maxdepth 1 -name "*$tag*" -exec rm -f {} + 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT


# ---- usage and help ----
"$tool" >/dev/null 2>&1; check "no command exits 2" [ $? -eq 2 ]
"$tool" nosuch >/dev/null 2>&1; check "unknown command exits 2" [ $? -eq 2 ]
for c in ls stat rm gc create cat write send recv pub sub bench; do
	"$tool" $c --help >"$tmp/help" 2>&1; check "$c --help exits 0" [ $? -eq 0 ]
	check "$c --help says usage" grep -q "usage: shmkit $c" "$tmp/help"
done
"$tool" create >/dev/null 2>&1; check "create without args exits 2" [ $? -eq 2 ]
"$tool" create "/$tag-p" 12x >/dev/null 2>&1; check "create with a bad size exits 2" [ $? -eq 2 ]

# ---- both backends: create, ls, stat, write, cat, rm ----
for backend in posix sysv; do
	if [ $backend = posix ]; then name="/$tag-p"; opt=""; else name="/tmp/$tag-s"; opt="--sysv"; fi
	check "$backend create" "$tool" create $opt --mode 0640 "$name" 100
	"$tool" create $opt "$name" 100 2>"$tmp/err"; st=$?
	check "$backend create twice fails (1)" [ $st -eq 1 ]
	check "$backend error names the segment" grep -q -- "$name" "$tmp/err"
	"$tool" ls >"$tmp/ls"
	check "$backend ls shows it" grep -q -- "$name" "$tmp/ls"
	"$tool" stat $opt "$name" >"$tmp/stat"
	check "$backend stat kind" grep -q "kind: *data" "$tmp/stat"
	check "$backend stat mode" grep -q "mode: *0640" "$tmp/stat"
	printf 'hello %s' $backend | "$tool" write $opt "$name"
	check "$backend write" [ $? -eq 0 ]
	"$tool" cat $opt "$name" | head -c 11 >"$tmp/cat"
	check "$backend cat returns what was written" [ "$(cat "$tmp/cat")" = "hello $backend" ]
	check "$backend cat prints the bytes written, no more" [ "$("$tool" cat $opt "$name" | wc -c)" -eq "$(printf 'hello %s' $backend | wc -c)" ]
	check "$backend cat --all prints the whole data area" [ "$("$tool" cat --all $opt "$name" | wc -c)" -eq 100 ]
	head -c 101 /dev/zero | "$tool" write $opt "$name" 2>"$tmp/err"
	check "$backend write refuses more than fits" [ $? -eq 1 ]
	check "$backend refusal says so" grep -q "does not fit" "$tmp/err"
	"$tool" cat $opt "$name" | head -c 11 >"$tmp/cat"
	check "$backend refused write wrote nothing" [ "$(cat "$tmp/cat")" = "hello $backend" ]
	check "$backend rm" "$tool" rm $opt "$name"
	"$tool" stat $opt "$name" >/dev/null 2>&1
	check "$backend stat after rm fails" [ $? -eq 1 ]
	"$tool" rm $opt "$name" 2>/dev/null
	check "$backend rm of a missing segment fails" [ $? -eq 1 ]
done

# ---- System V interoperation: ipcs -m sees what shmkit made, ipcrm is seen by ls ----
if command -v ipcs >/dev/null 2>&1; then
	name="/tmp/$tag-s"
	"$tool" create --sysv "$name" 5000 >"$tmp/create"
	key=$(sed -n 's/.*key \(0x[0-9a-f]*\) id \([0-9]*\).*/\1/p' "$tmp/create")
	id=$(sed -n 's/.*key \(0x[0-9a-f]*\) id \([0-9]*\).*/\2/p' "$tmp/create")
	check "create --sysv prints key and id" [ -n "$key" ] && [ -n "$id" ]
	size=$("$tool" ls --json | python3 -c "
import json,sys
for e in json.load(sys.stdin):
    if e['backend']=='sysv' and e['id']==$id: print(e['size'], e['key'], e['name'])" 2>/dev/null)
	ipcs -m | awk -v id="$id" '$2 == id {print $1, $2, $5}' >"$tmp/ipcs"
	check "ipcs -m lists the segment with its key and id" [ "$(cut -d' ' -f1,2 "$tmp/ipcs")" = "$key $id" ]
	check "ipcs size matches shmkit ls" [ "$(cut -d' ' -f3 "$tmp/ipcs")" = "$(echo "$size" | cut -d' ' -f1)" ]
	check "shmkit ls --json has the same key and name" [ "$(echo "$size" | cut -d' ' -f2-)" = "$key $name" ]
	ipcrm -m "$id"
	"$tool" ls >"$tmp/ls"
	check "ipcrm removal is reflected by shmkit ls" sh -c "! awk '\$1==\"sysv\"{print \$4}' '$tmp/ls' | grep -qx '$id'"
	"$tool" create --sysv "$name" 5000 >"$tmp/create"
	id=$(sed -n 's/.*id \([0-9]*\).*/\1/p' "$tmp/create")
	check "shmkit rm id:ID" "$tool" rm "id:$id"
	check "shmkit rm makes it vanish from ipcs -m" sh -c "! ipcs -m | awk '{print \$2}' | grep -qx '$id'"
	# A raw System V segment, reached by key.
	"$tool" create --sysv --raw "/tmp/$tag-sraw" 4096 >"$tmp/create"
	key=$(sed -n 's/.*key \(0x[0-9a-f]*\).*/\1/p' "$tmp/create")
	printf 'raw sysv' | "$tool" write "$key"
	check "raw System V segment by key" [ "$("$tool" cat "$key" | head -c 8)" = "raw sysv" ]
	check "rm by key" "$tool" rm "$key"
else
	echo "ipcs not found: System V interoperation not checked"
fi

# ---- ls --json parses ----
if command -v python3 >/dev/null 2>&1; then
	"$tool" ls --json >"$tmp/json"
	check "ls --json parses with python3 -m json.tool" python3 -m json.tool "$tmp/json" >/dev/null
	"$tool" create "/$tag-blob" 10 && "$tool" stat --json "/$tag-blob" >"$tmp/json"
	check "stat --json parses" python3 -m json.tool "$tmp/json" >/dev/null
	"$tool" rm "/$tag-blob"
else
	echo "python3 not found: JSON not checked"
fi

# ---- Python's multiprocessing.shared_memory reads and writes a raw shmkit segment ----
if command -v python3 >/dev/null 2>&1 && python3 -c 'from multiprocessing import shared_memory' 2>/dev/null; then
	"$tool" create --raw "/$tag-raw" 64
	head -c 64 /dev/urandom >"$tmp/bytes"
	"$tool" write "/$tag-raw" <"$tmp/bytes"
	python3 - "$tag-raw" "$tmp/bytes" <<'PY'
import sys
from multiprocessing import shared_memory, resource_tracker
name, path = sys.argv[1], sys.argv[2]
shm = shared_memory.SharedMemory(name=name)
# Python's tracker would unlink segments it did not create at exit: not ours to remove.
resource_tracker.unregister(shm._name, "shared_memory")
want = open(path, "rb").read()
got = bytes(shm.buf[:len(want)])
shm.close()
sys.exit(0 if got == want else 1)
PY
	check "Python reads, byte for byte, what shmkit write stored" [ $? -eq 0 ]
	python3 - "$tag-py" <<'PY'
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=32)
resource_tracker.unregister(shm._name, "shared_memory")
shm.buf[:14] = b"from python\x00\x01\x02"
shm.close()
PY
	"$tool" cat "/$tag-py" | head -c 14 | od -An -tx1 | tr -d ' \n' >"$tmp/py"
	check "shmkit cat prints what Python wrote" [ "$(cat "$tmp/py")" = "66726f6d20707974686f6e000102" ]
	"$tool" rm "/$tag-raw" "/$tag-py"
else
	echo "python3 multiprocessing.shared_memory not found: Python interoperation not checked (skipped)"
fi

# ---- send piped into recv, across two processes ----
printf 'one\ntwo\n\nthree with spaces\n' | "$tool" send "/$tag-chan" &
send_pid=$!
"$tool" recv --create --timeout 10 "/$tag-chan" >"$tmp/recv"
st=$?
wait $send_pid
check "send exits 0" [ $? -eq 0 ]
check "recv exits 0 at end-of-stream" [ $st -eq 0 ]
check "recv prints each message on a line" [ "$(cat "$tmp/recv")" = "$(printf 'one\ntwo\nthree with spaces')" ]
# A fresh channel, so that the counters below are this stream's.
"$tool" rm "/$tag-chan"
seq 1 1000 | "$tool" send "/$tag-chan" &
send_pid=$!
"$tool" recv --create -n 10 --timeout 10 "/$tag-chan" >"$tmp/recv"
check "recv -n COUNT stops after COUNT" [ "$(wc -l <"$tmp/recv")" -eq 10 ]
"$tool" recv --timeout 10 "/$tag-chan" >"$tmp/recv"
wait $send_pid
check "the rest arrives to the next receiver, in order" [ "$(head -1 "$tmp/recv")" = "11" ] && [ "$(tail -1 "$tmp/recv")" = "1000" ]
"$tool" stat "/$tag-chan" >"$tmp/stat"
check "stat shows a channel's counters" grep -q "sent: *1000 messages" "$tmp/stat"
"$tool" recv --timeout 0.2 "/$tag-chan" >"$tmp/recv"
check "recv after an end-of-stream was received waits for the next sender (1)" [ $? -eq 1 ] && [ ! -s "$tmp/recv" ]
"$tool" rm "/$tag-chan"
"$tool" recv --create --timeout 0.2 "/$tag-chan" >/dev/null 2>"$tmp/err"
check "recv with no sender times out (1)" [ $? -eq 1 ]
check "the timeout is explained" grep -q "no message before the timeout" "$tmp/err"
"$tool" rm "/$tag-chan"

# ---- topics: pub piped into sub, reliable and lossy delivery, ls and stat ----
tt="/$tag-topic"
topic_holder=""
# Waits (at most 10 s) until 'stat NAME' prints a line matching PATTERN.
wait_stat() { # wait_stat NAME PATTERN
	i=0
	until "$tool" stat "$1" 2>/dev/null | grep -q "$2" || [ $i -gt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
# A new topic $tt, made with the options given, held open by a sleeping process so
# that no gc takes it for garbage between two commands once its creator is gone (where
# this test cannot have a /dev/shm of its own, other tests' gc runs see it).
fresh_topic() {
	if [ -n "$topic_holder" ]; then kill $topic_holder; wait $topic_holder 2>/dev/null; fi
	"$tool" rm "$tt" >/dev/null 2>&1
	"$tool" sub "$@" --timeout 0 "$tt" 2>/dev/null
	sleep 60 3<"/dev/shm/${tt#/}" &
	topic_holder=$!
}
seq 1000 >"$tmp/want"
seq 2000 >"$tmp/want2"
seq 1001 2000 >"$tmp/want1001"
# The subscriber starts first and from the oldest message the ring holds: whether it
# opens the topic before the publisher or after it has published, it gets every line
# (1000 short lines fit a 1 MiB ring many times over).
fresh_topic
"$tool" sub --from-oldest -n 1000 --timeout 10 "$tt" >"$tmp/sub" 2>"$tmp/suberr" &
sub_pid=$!
seq 1000 | "$tool" pub "$tt"
check "pub exits 0" [ $? -eq 0 ]
wait $sub_pid
check "sub -n 1000 exits 0" [ $? -eq 0 ]
check "sub prints the 1000 lines, in order" cmp -s "$tmp/sub" "$tmp/want"
check "sub reports no loss" [ ! -s "$tmp/suberr" ]
"$tool" sub --from-oldest --timeout 10 "$tt" >"$tmp/sub" 2>"$tmp/suberr"
check "a late subscriber from the oldest ends at end-of-stream (0)" [ $? -eq 0 ]
check "and gets everything the ring held" cmp -s "$tmp/sub" "$tmp/want"
"$tool" ls >"$tmp/ls"
check "ls shows the topic as kind topic" sh -c "grep -F '$tt ' '$tmp/ls' | grep -q ' topic '"
"$tool" stat "$tt" >"$tmp/stat"
check "stat shows a topic's delivery mode" grep -q "^delivery: *lossy$" "$tmp/stat"
check "stat shows a topic's counters" grep -q "^published: *1000 messages" "$tmp/stat"
check "stat shows no publisher after they closed" grep -q "^publishers: *0 " "$tmp/stat"
# A line longer than sub's first buffer (64 KiB): the buffer grows, the message stays.
head -c 100000 /dev/zero | tr '\0' a >"$tmp/long"
echo >>"$tmp/long"
"$tool" pub "$tt" <"$tmp/long"
"$tool" sub --from-oldest -n 1001 --timeout 10 "$tt" | tail -n 1 >"$tmp/sub"
check "a 100000-byte message arrives whole" cmp -s "$tmp/sub" "$tmp/long"
"$tool" cat "$tt" >/dev/null 2>"$tmp/err"
check "cat refuses a topic (1)" [ $? -eq 1 ]
check "and says to use sub" grep -q "is a topic, not a data segment (use pub and sub)" "$tmp/err"
printf 'x\n' | "$tool" pub --reliable "$tt" 2>"$tmp/err"
check "pub --reliable on a lossy topic fails (1)" [ $? -eq 1 ]
check "and says why" grep -q "exists and is lossy" "$tmp/err"
check "and publishes nothing" sh -c "'$tool' stat '$tt' | grep -q '^published: *1001 messages'"
"$tool" sub --reliable --timeout 5 "$tt" >/dev/null 2>"$tmp/err"
check "sub --reliable on a lossy topic fails (1), saying why" [ $? -eq 1 ] && grep -q "exists and is lossy" "$tmp/err"
"$tool" rm "$tt"

# Two publishers at once into one topic: every line of both arrives, each one's in
# its order. The first holds the topic open (its input is a FIFO) until the second
# is done: one that ended alone would end the stream for a subscriber that caught up.
mkfifo "$tmp/pin"
fresh_topic
"$tool" sub --from-oldest -n 2000 --timeout 10 "$tt" >"$tmp/sub" &
sub_pid=$!
"$tool" pub "$tt" <"$tmp/pin" &
pub_pid=$!
exec 9>"$tmp/pin"
wait_stat "$tt" "^publishers: *1 "
seq 1 1000 | "$tool" pub "$tt" &
pub2_pid=$!
(trap '' PIPE; seq 1001 2000 >&9) 2>/dev/null
wait $pub2_pid
st=$?
exec 9>&-
wait $pub_pid
check "two publishers at once both exit 0" [ $? -eq 0 ] && [ $st -eq 0 ]
wait $sub_pid
check "the subscriber gets both publishers' lines" sh -c "sort -n '$tmp/sub' | cmp -s - '$tmp/want2'"
check "each publisher's lines in its order" sh -c "awk '\$1 <= 1000' '$tmp/sub' | cmp -s - '$tmp/want' &&
	awk '\$1 > 1000' '$tmp/sub' | cmp -s - '$tmp/want1001'"
# A subscriber SIGKILLed: a lossy topic keeps its slot, shown dead. (A fresh topic:
# on the last one every publisher closed, which a new subscriber meets at once.)
fresh_topic
"$tool" sub "$tt" >/dev/null 2>&1 &
sub_pid=$!
wait_stat "$tt" "^subscribers: *1 "
kill -9 $sub_pid
wait $sub_pid 2>/dev/null
"$tool" stat "$tt" >"$tmp/stat"
check "stat shows a SIGKILLed subscriber as not alive" grep -qE "^  $sub_pid +no " "$tmp/stat"
"$tool" rm "$tt"

# Reliable: a 4 KiB ring and 1000 messages, many times what it holds. The subscriber
# is listed before the publisher starts, so the publisher must wait for it.
fresh_topic --reliable --capacity 4096
"$tool" sub --reliable -n 1000 --timeout 10 "$tt" >"$tmp/sub" 2>"$tmp/suberr" &
sub_pid=$!
wait_stat "$tt" "^subscribers: *1 "
seq 1000 | "$tool" pub "$tt"
check "pub into a reliable topic exits 0" [ $? -eq 0 ]
wait $sub_pid
check "reliable sub exits 0" [ $? -eq 0 ]
check "reliable: every message arrives, in order, through a small ring" cmp -s "$tmp/sub" "$tmp/want"
check "reliable: no loss reported" [ ! -s "$tmp/suberr" ]
"$tool" stat "$tt" >"$tmp/stat"
check "stat shows the reliable mode" grep -q "^delivery: *reliable$" "$tmp/stat"
check "through the 4 KiB ring the subscriber created" grep -q "^capacity: *4096 bytes$" "$tmp/stat"
"$tool" rm "$tt"

# Lossy: a subscriber stopped (SIGSTOP) while 1000 messages overrun its 4 KiB ring
# reports exactly what it lost and receives the rest, in order.
fresh_topic --capacity 4096
"$tool" sub --timeout 10 "$tt" >"$tmp/sub" 2>"$tmp/suberr" &
sub_pid=$!
holders="$holders $sub_pid"
wait_stat "$tt" "^subscribers: *1 "
kill -STOP $sub_pid
seq 1000 | "$tool" pub "$tt"
check "a lossy publisher does not wait for a stopped subscriber" [ $? -eq 0 ]
"$tool" stat "$tt" >"$tmp/stat"
"$tool" stat --json "$tt" >"$tmp/json"
check "stat lists the subscriber's pid" grep -qE "^  $sub_pid +yes " "$tmp/stat"
if command -v python3 >/dev/null 2>&1; then
	check "stat --json of a topic parses" python3 -m json.tool "$tmp/json" >/dev/null
	python3 - "$tmp/json" "$sub_pid" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
t = e["topic"]
subs = [s for s in t["subscriber_list"] if s["pid"] == int(sys.argv[2])]
ok = (e["kind"] == "topic" and t["delivery"] == "lossy" and t["published"] == 1000
      and t["subscribers"] == 1 and len(subs) == 1 and subs[0]["alive"] is True
      and subs[0]["received"] == 0 and subs[0]["lag"] > 0)
sys.exit(0 if ok else 1)
PY
	check "stat --json: kind, mode, counters, the stopped subscriber alive, lagging" [ $? -eq 0 ]
	"$tool" ls --json >"$tmp/json"
	check "ls --json parses with a topic listed" python3 -c '
import json, sys
sys.exit(0 if any(e["name"] == sys.argv[2] and e["kind"] == "topic" for e in json.load(open(sys.argv[1]))) else 1)' "$tmp/json" "$tt"
fi
kill -CONT $sub_pid
wait $sub_pid
check "the overrun subscriber exits 0 at end-of-stream" [ $? -eq 0 ]
lost=$(sed -n "s/^shmkit sub: .*: lost \([0-9]*\) messages\?$/\1/p" "$tmp/suberr" | awk '{s += $1} END {print s + 0}')
got=$(wc -l <"$tmp/sub")
check "it reports a loss on stderr" [ "$lost" -gt 0 ]
check "lost + printed = published (exact loss count)" [ $((lost + got)) -eq 1000 ]
check "what it printed is the newest messages, in order" sh -c "seq $((lost + 1)) 1000 | cmp -s - '$tmp/sub'"
"$tool" rm "$tt"

# Timeouts and a dead publisher: a publisher that holds the topic open without
# publishing (its input stays open), then is SIGKILLed.
mkfifo "$tmp/tin"
fresh_topic
"$tool" pub "$tt" <"$tmp/tin" &
pub_pid=$!
holders="$holders $pub_pid"
exec 8>"$tmp/tin"
wait_stat "$tt" "^publishers: *1 "
"$tool" sub --timeout 0.3 "$tt" >"$tmp/sub" 2>"$tmp/err"
check "sub --timeout exits 1 when nothing comes" [ $? -eq 1 ]
check "the timeout is explained" grep -q "no message before the timeout" "$tmp/err"
# In a subshell that ignores SIGPIPE: a publisher that failed must not end the test.
(trap '' PIPE; printf 'last words\n' >&8) 2>/dev/null
"$tool" sub --from-oldest -n 1 --timeout 10 "$tt" >/dev/null # published before the kill
kill -9 $pub_pid
wait $pub_pid 2>/dev/null
exec 8>&-
"$tool" sub --from-oldest --timeout 10 "$tt" >"$tmp/sub" 2>"$tmp/err"
check "sub after the last publisher died exits 1" [ $? -eq 1 ]
check "after printing what it committed" [ "$(cat "$tmp/sub")" = "last words" ]
check "and says the publisher died" grep -q "the last publisher died" "$tmp/err"
kill $topic_holder
wait $topic_holder 2>/dev/null
topic_holder=""
"$tool" rm "$tt"

# A reused topic name: a sub started before each pub prints exactly that pub's lines
# (the end of stream an earlier sub received is not the next one's).
tr="/$tag-reuse"
runs_ok=1
for i in 1 2 3 4 5; do
	"$tool" sub --timeout 10 "$tr" >"$tmp/reuse" & sp=$!
	sleep 0.3
	seq "$i" 20 | "$tool" pub "$tr"
	wait "$sp" || runs_ok=0
	[ "$(seq "$i" 20 | tr '\n' ' ')" = "$(tr '\n' ' ' <"$tmp/reuse")" ] || runs_ok=0
done
check "sub then pub on a reused topic name, five runs: each prints exactly its lines" [ $runs_ok -eq 1 ]
"$tool" rm "$tr"

# Names as for send/recv: System V with --sysv; a channel is not a topic.
seq 5 | "$tool" pub --sysv "/tmp/$tag-tsv"
check "pub --sysv" [ $? -eq 0 ]
check "sub --sysv from the oldest" [ "$("$tool" sub --sysv --from-oldest --timeout 10 "/tmp/$tag-tsv" | tr '\n' ' ')" = "1 2 3 4 5 " ]
"$tool" rm --sysv "/tmp/$tag-tsv"
: | "$tool" send "/$tag-chan"
"$tool" sub --timeout 0.1 "/$tag-chan" 2>"$tmp/err"
check "sub on a channel fails (1)" [ $? -eq 1 ]
said_first() { [ "$(head -n 1 "$1")" = "$2" ]; }
check "and says it is a channel" said_first "$tmp/err" "shmkit sub: /$tag-chan is a channel, not a topic (use send and recv)"
"$tool" create "/$tag-blob" 64 # a data segment
"$tool" pub "/$tag-blob" </dev/null 2>"$tmp/err"
check "pub on a data segment fails (1)" [ $? -eq 1 ]
check "and says what it is" said_first "$tmp/err" "shmkit pub: /$tag-blob is a data segment, not a topic"
"$tool" rm "/$tag-blob"
"$tool" rm "/$tag-chan"
"$tool" pub "id:$$" </dev/null 2>/dev/null
check "pub refuses a POSIX name of the form id:N (2)" [ $? -eq 2 ]
"$tool" sub -n x "$tt" 2>/dev/null
check "sub with a bad count exits 2" [ $? -eq 2 ]
holders="" # every one was waited for

# ---- gc: removes a segment whose creator was SIGKILLed, leaves a live one ----
# A temporary segment whose creator exited and that nobody uses: stale.
"$tool" create --temporary "/$tag-stale" 100
# A live creator: send, holding its channel while its input stays open.
mkfifo "$tmp/hold"
sh -c "exec '$tool' send '/$tag-live'" <"$tmp/hold" &
live_pid=$!
exec 7>"$tmp/hold"
i=0
until "$tool" stat "/$tag-live" >/dev/null 2>&1 || [ $i -gt 100 ]; do sleep 0.05; i=$((i + 1)); done
"$tool" gc --dry-run >"$tmp/gc"
check "gc --dry-run names the stale segment" grep -q "would remove.*$tag-stale" "$tmp/gc"
check "gc --dry-run removes nothing" "$tool" stat "/$tag-stale" >/dev/null
check "stat agrees that it is stale" sh -c "'$tool' stat '/$tag-stale' | grep -q '^stale: *yes'"
check "and that the live one is not" sh -c "'$tool' stat '/$tag-live' | grep -q '^stale: *no'"
check "gc --dry-run spares the live one" grep -q "^keep posix segment /$tag-live: creator alive" "$tmp/gc"
"$tool" gc >"$tmp/gc"
check "gc says what it removed" grep -q "removed.*$tag-stale" "$tmp/gc"
"$tool" stat "/$tag-stale" >/dev/null 2>&1
check "gc removed the stale segment" [ $? -eq 1 ]
check "gc left the live segment" "$tool" stat "/$tag-live" >/dev/null
kill -9 "$live_pid"
wait "$live_pid" 2>/dev/null
exec 7>&-
live_pid=
"$tool" gc >"$tmp/gc"
check "after SIGKILL of its creator, gc removes it" grep -q "removed.*$tag-live" "$tmp/gc"

# ==== issue 8: trust ====

# A temporary shmkit segment whose creator has exited: a channel that send creates and
# closes at once (made the same way by every version of the tool).
mk_dead() { : | "$tool" send "$1" 2>/dev/null; }
# The id and key that create --sysv printed.
created_id() { sed -n 's/.*id \([0-9]*\).*/\1/p' "$tmp/create"; }
created_key() { sed -n 's/.*key \(0x[0-9a-f]*\).*/\1/p' "$tmp/create"; }
has_id() { ipcs -m | awk '{print $2}' | grep -qx "$1"; }

# ---- names that cannot be confused: a bare token is a name, ids only as id:N ----
if command -v ipcs >/dev/null 2>&1 && command -v ipcrm >/dev/null 2>&1; then
	"$tool" create --sysv "/tmp/$tag-other" 100 >"$tmp/create"
	other=$(created_id)
	sysv_ids="$sysv_ids $other"
	printf 'other' | "$tool" write "$(created_key)"
	# A System V segment whose name is the decimal id of the unrelated one.
	"$tool" create --sysv "$other" 100 >"$tmp/create"
	named=$(created_id)
	sysv_ids="$sysv_ids $named"
	printf 'named' | "$tool" write "$(created_key)"
	check "cat DIGITS prints the segment of that name, not the one with that id" \
		[ "$("$tool" cat "$other" 2>/dev/null | head -c 5)" = named ]
	check "cat id:N prints the segment with that id" \
		[ "$("$tool" cat "id:$other" 2>/dev/null | head -c 5)" = other ]
	"$tool" stat "$other" >"$tmp/stat" 2>/dev/null
	check "stat DIGITS describes the segment of that name" grep -q "^id: *$named\$" "$tmp/stat"
	"$tool" rm "$other" 2>/dev/null
	check "rm DIGITS removes the segment of that name" sh -c "! ipcs -m | awk '{print \$2}' | grep -qx '$named'"
	check "rm DIGITS leaves the segment whose id it is" has_id "$other"
	check "rm id:N removes by id" "$tool" rm "id:$other"
	check "rm id:N removed it" sh -c "! ipcs -m | awk '{print \$2}' | grep -qx '$other'"

	# A System V segment named 0.
	"$tool" create --sysv 0 100 >"$tmp/create"
	zero=$(created_id)
	sysv_ids="$sysv_ids $zero"
	printf 'zero' | "$tool" write "$(created_key)"
	check "cat 0 prints the System V segment named 0" [ "$("$tool" cat 0 2>/dev/null | head -c 4)" = zero ]
	check "rm 0 removes the System V segment named 0" "$tool" rm 0
	check "rm 0 removed that one" sh -c "! ipcs -m | awk '{print \$2}' | grep -qx '$zero'"

	# A System V name, as ls shows it, needs no --sysv.
	"$tool" create --sysv "/tmp/$tag-shown" 100 >"$tmp/create"
	sysv_ids="$sysv_ids $(created_id)"
	check "rm NAME finds a System V segment" "$tool" rm "/tmp/$tag-shown"

	# One name in both namespaces: the user must say which.
	"$tool" create "/$tag-both" 100
	"$tool" create --sysv "/$tag-both" 100 >"$tmp/create"
	both=$(created_id)
	sysv_ids="$sysv_ids $both"
	"$tool" rm "/$tag-both" 2>"$tmp/err"
	check "rm of a name in both namespaces exits 2" [ $? -eq 2 ]
	check "and asks for --posix or --sysv" grep -q -- "--posix or --sysv" "$tmp/err"
	check "and removes neither (POSIX)" [ -f "/dev/shm/$tag-both" ]
	check "and removes neither (System V)" has_id "$both"
	"$tool" rm "/$tag-both" "/$tag-p-none" 2>/dev/null
	check "rm stops before removing anything when one name is ambiguous" [ -f "/dev/shm/$tag-both" ]
	"$tool" cat "/$tag-both" >/dev/null 2>&1
	check "cat of a name in both namespaces exits 2" [ $? -eq 2 ]
	"$tool" stat "/$tag-both" >/dev/null 2>&1
	check "stat of a name in both namespaces exits 2" [ $? -eq 2 ]
	check "stat --sysv picks the System V one" sh -c "'$tool' stat --sysv '/$tag-both' | grep -q '^id: *$both\$'"
	check "rm --posix removes the POSIX one" "$tool" rm --posix "/$tag-both"
	check "rm --posix left the System V one" has_id "$both"
	check "then rm NAME finds the System V one" "$tool" rm "/$tag-both"
	check "and it is gone" sh -c "! ipcs -m | awk '{print \$2}' | grep -qx '$both'"
else
	echo "ipcs/ipcrm not found: System V naming not checked"
fi

# ---- listing that does not lie ----
"$tool" create --raw "/$tag-café" 16
"$tool" create --raw "$(printf '/%s-bad\377' "$tag")" 16
"$tool" create --raw "/.$tag-dot" 16
"$tool" create --raw "/$tag-nl
forged row" 16
"$tool" create --raw "/$tag-back\\x41" 16
# Overlong, surrogate and out-of-range forms are not UTF-8; an emoji is; C1 and ESC
# are control characters.
"$tool" create --raw "$(printf '/%s-mix\300\200\355\240\200\364\220\200\200\360\237\230\200\302\205\033[31m' "$tag")" 16
# 255 bytes after the slash, the most a file name holds (one more than shmkit makes).
long="$tag-$(head -c 255 /dev/zero | tr '\0' L)"
long=$(printf '%s' "$long" | head -c 255)
: >"/dev/shm/$long"
: >"/dev/shm/$token"
: >"/dev/shm/.shmkit-live-$tag"
"$tool" ls >"$tmp/ls"
"$tool" ls --json >"$tmp/json"
check "ls --json keeps valid UTF-8 (café)" grep -qF "\"/$tag-café\"" "$tmp/json"
check "ls --json escapes an invalid byte as \\udcff" grep -qF "\"/$tag-bad\\udcff\"" "$tmp/json"
check "ls --json escapes a newline" grep -qF "\"/$tag-nl\\nforged row\"" "$tmp/json"
check "ls lists names that begin with a dot" grep -qF "/.$tag-dot " "$tmp/ls"
check "ls lists 255-byte names" grep -qF "/$long " "$tmp/ls"
check "ls --json lists 255-byte names" grep -qF "\"/$long\"" "$tmp/json"
check "ls does not list the library's liveness tokens" sh -c "! grep -qF '$token' '$tmp/ls' '$tmp/json'"
check "ls lists a dot file that only looks like a token" grep -qF "/.shmkit-live-$tag " "$tmp/ls"
check "a newline in a name cannot forge a row" sh -c "! grep -q '^forged row' '$tmp/ls'"
check "text output shows the newline escaped" grep -qF "/$tag-nl\\nforged row " "$tmp/ls"
check "text output escapes a backslash" grep -qF "/$tag-back\\\\x41 " "$tmp/ls"
check "text output escapes an invalid byte" grep -qF "/$tag-bad\\xff " "$tmp/ls"
check "text output escapes every byte that is not UTF-8, and control characters" \
	grep -qF "/$tag-mix\\xc0\\x80\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80😀\\xc2\\x85\\x1b[31m " "$tmp/ls"
check "ls --json escapes them as \\udcXX and \\u00XX" \
	grep -qF "\"/$tag-mix\\udcc0\\udc80\\udced\\udca0\\udc80\\udcf4\\udc90\\udc80\\udc80😀\\u0085\\u001b[31m\"" "$tmp/json"
if command -v python3 >/dev/null 2>&1; then
	python3 - "$tmp/json" "$tag" <<'PY'
import json, os, sys
names = [e["name"] for e in json.load(open(sys.argv[1])) if e["backend"] == "posix"]
# surrogateescape turns \udcXX back into the byte: every name must be the file's name.
files = {b"/" + f for f in os.listdir(b"/dev/shm") if sys.argv[2].encode() in f}
got = {n.encode("utf-8", "surrogateescape") for n in names if sys.argv[2] in n}
sys.exit(0 if got == files and len(files) >= 7 else 1)
PY
	check "ls --json names decode (surrogateescape) to the exact file names" [ $? -eq 0 ]
fi
"$tool" stat "/$tag-nl
forged row" >"$tmp/stat" 2>&1
check "stat escapes the name too" sh -c "grep -qF 'name:         /$tag-nl\\nforged row' '$tmp/stat' && ! grep -q '^forged row' '$tmp/stat'"
"$tool" stat "/$long" >"$tmp/stat" 2>&1
check "stat describes a 255-byte name" grep -qF "name:         /$long" "$tmp/stat"
check "rm removes a 255-byte name" "$tool" rm "/$long"
check "it is gone" [ ! -e "/dev/shm/$long" ]

# ---- gc removes only provable garbage ----
# Temporary segments whose creator is dead, in use by live processes under names that
# fooled the name matching of /proc: a space, a newline, "(deleted)".
for n in "/$tag-sp ace" "/$tag-nl
ine" "/$tag (deleted)" "/$tag-map (deleted)" "/$tag-dead"; do
	mk_dead "$n"
done
sleep 60 3<"/dev/shm/$tag-sp ace" 4<"/dev/shm/$tag-nl
ine" 5<"/dev/shm/$tag (deleted)" &
holders="$holders $!"
mapped=0
if command -v python3 >/dev/null 2>&1; then
	# A process that only maps it: its descriptor is closed.
	python3 -c '
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096)
os.close(fd)
print("ready", flush=True)
time.sleep(60)' "/dev/shm/$tag-map (deleted)" >"$tmp/mapped" &
	holders="$holders $!"
	i=0
	until [ -s "$tmp/mapped" ] || [ $i -gt 200 ]; do sleep 0.05; i=$((i + 1)); done
	mapped=1
fi
# A persistent segment (what create makes), and another user's temporary one.
"$tool" create "/$tag-keep" 100
other_user=0
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	setpriv --reuid 65534 --regid 65534 --clear-groups "$tool" send "/$tag-nobody" </dev/null
	[ -f "/dev/shm/$tag-nobody" ] && other_user=1
fi
# A peer that may write the segment clears the header's persistent flag (byte 52): the
# mark gc trusts is the sticky mode bit, which only the owner can change.
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(52); f.write(bytes(4))' "/dev/shm/$tag-keep"
"$tool" gc --dry-run >"$tmp/gc"
check "gc --dry-run would remove the unused one" grep -qF "would remove posix segment /$tag-dead:" "$tmp/gc"
check "gc --dry-run says the persistent one stays, and why" grep -qF "keep posix segment /$tag-keep: persistent" "$tmp/gc"
check "gc --dry-run says the one in use stays, and why" grep -qF "keep posix segment /$tag-sp ace: 1 process attached" "$tmp/gc"
[ $other_user -eq 1 ] &&
	check "gc --dry-run says another user's stays without --all-users" grep -qF "keep posix segment /$tag-nobody: owned by uid 65534 (--all-users)" "$tmp/gc"
"$tool" gc >"$tmp/gc"
check "gc removed the unused one" [ ! -e "/dev/shm/$tag-dead" ]
check "gc left the one held under a name with a space" [ -e "/dev/shm/$tag-sp ace" ]
check "gc left the one held under a name with a newline" [ -e "/dev/shm/$tag-nl
ine" ]
check "gc left the one held under a name with (deleted)" [ -e "/dev/shm/$tag (deleted)" ]
[ $mapped -eq 1 ] && check "gc left the one only mapped" [ -e "/dev/shm/$tag-map (deleted)" ]
check "gc left the persistent segment" [ -e "/dev/shm/$tag-keep" ]
if [ $other_user -eq 1 ]; then
	check "gc left another user's segment" [ -e "/dev/shm/$tag-nobody" ]
	"$tool" gc --all-users >/dev/null
	check "gc --all-users removes another user's garbage" [ ! -e "/dev/shm/$tag-nobody" ]
else
	echo "setpriv or root missing: another user's segment not checked"
fi
# gc in a pid namespace of its own: its /proc shows no process but itself, so only
# the kernel (the lease) can tell that the segment is held.
if unshare -p -f --mount-proc true 2>/dev/null; then
	mk_dead "/$tag-unseen"
	mk_dead "/$tag-unseen-free"
	sleep 60 3<"/dev/shm/$tag-unseen" &
	holders="$holders $!"
	unshare -p -f --mount-proc "$tool" gc >"$tmp/gc"
	check "gc that cannot see the holder's process still leaves the segment" [ -e "/dev/shm/$tag-unseen" ]
	check "that gc still removes the unheld one" [ ! -e "/dev/shm/$tag-unseen-free" ]
else
	echo "unshare -p not permitted: gc across pid namespaces not checked"
fi
for p in $holders; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
holders=""
: >"/dev/shm/$token" # a token whose process died: not locked
"$tool" gc >"$tmp/gc"
check "gc removes the liveness token of a dead process" [ ! -e "/dev/shm/$token" ]
check "once its users are gone, gc removes it" [ ! -e "/dev/shm/$tag (deleted)" ]
check "gc still leaves the persistent segment" [ -e "/dev/shm/$tag-keep" ]
# A POSIX name in the System V forms would be taken for another segment by every
# other command: create refuses it (the /-prefixed name stays possible).
"$tool" create "id:$$" 4k 2>/dev/null
check "create refuses a POSIX name of the form id:N" [ $? -eq 2 ] && [ ! -e "/dev/shm/id:$$" ]
"$tool" create "0x$$" 4k 2>/dev/null
check "create refuses a POSIX name of the form 0x..." [ $? -eq 2 ] && [ ! -e "/dev/shm/0x$$" ]
"$tool" create --temporary "/$tag-temp" 100
"$tool" gc >"$tmp/gc"
check "create --temporary makes a segment gc removes" [ ! -e "/dev/shm/$tag-temp" ]

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
