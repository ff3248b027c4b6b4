#!/bin/sh
# Drives the real shmkit tool: create/ls/stat/cat/write/rm on both backends, send piped
# into recv, gc after a SIGKILLed creator, and interoperation with ipcs/ipcrm and
# Python's multiprocessing.shared_memory.
# Usage: tool_test.sh PATH/TO/shmkit
set -u
tool="$1"
tag="shmkit-tooltest-$$"
fails=0
passes=0
tmp=$(mktemp -d)

cleanup() {
	for n in "/$tag-p" "/$tag-raw" "/$tag-py" "/$tag-chan" "/$tag-stale" "/$tag-live" "/$tag-blob"; do
		"$tool" rm "$n" >/dev/null 2>&1
	done
	for n in "/tmp/$tag-s" "/tmp/$tag-sraw"; do
		"$tool" rm --sysv "$n" >/dev/null 2>&1
	done
	[ -n "${live_pid:-}" ] && kill "$live_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	d="$1"; shift
	if "$@"; then ok; else fail "$d"; fi
}

# ---- usage and help ----
"$tool" >/dev/null 2>&1; check "no command exits 2" [ $? -eq 2 ]
"$tool" nosuch >/dev/null 2>&1; check "unknown command exits 2" [ $? -eq 2 ]
for c in ls stat rm gc create cat write send recv bench; do
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
	check "$backend cat prints the whole data area" [ "$("$tool" cat $opt "$name" | wc -c)" -eq 100 ]
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
	check "shmkit rm ID" "$tool" rm "$id"
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
"$tool" recv --timeout 10 "/$tag-chan" >"$tmp/recv"
st=$?
wait $send_pid
check "send exits 0" [ $? -eq 0 ]
check "recv exits 0 at end-of-stream" [ $st -eq 0 ]
check "recv prints each message on a line" [ "$(cat "$tmp/recv")" = "$(printf 'one\ntwo\nthree with spaces')" ]
# A fresh channel: on the first one, end-of-stream from the first sender stands until
# a new sender attaches, so a receiver could see it before the second sender starts.
"$tool" rm "/$tag-chan"
seq 1 1000 | "$tool" send "/$tag-chan" &
send_pid=$!
"$tool" recv -n 10 --timeout 10 "/$tag-chan" >"$tmp/recv"
check "recv -n COUNT stops after COUNT" [ "$(wc -l <"$tmp/recv")" -eq 10 ]
"$tool" recv --timeout 10 "/$tag-chan" >"$tmp/recv"
wait $send_pid
check "the rest arrives to the next receiver, in order" [ "$(head -1 "$tmp/recv")" = "11" ] && [ "$(tail -1 "$tmp/recv")" = "1000" ]
"$tool" stat "/$tag-chan" >"$tmp/stat"
check "stat shows a channel's counters" grep -q "sent: *1000 messages" "$tmp/stat"
"$tool" recv --timeout 0.2 "/$tag-chan" >"$tmp/recv"
check "recv after the sender closed is end-of-stream (0)" [ $? -eq 0 ] && [ ! -s "$tmp/recv" ]
"$tool" rm "/$tag-chan"
"$tool" recv --timeout 0.2 "/$tag-chan" >/dev/null 2>"$tmp/err"
check "recv with no sender times out (1)" [ $? -eq 1 ]
check "the timeout is explained" grep -q "no message before the timeout" "$tmp/err"
"$tool" rm "/$tag-chan"

# ---- gc: removes a segment whose creator was SIGKILLed, leaves a live one ----
# A segment whose creator exited and that nobody uses: stale.
"$tool" create "/$tag-stale" 100
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
check "gc --dry-run spares the live one" sh -c "! grep -q '$tag-live' '$tmp/gc'"
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

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
