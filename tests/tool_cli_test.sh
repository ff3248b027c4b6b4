#!/bin/sh
# The shmkit tool behaving as people expect (issue 11):
# - send and recv on a reused name behave like a named FIFO: the README pipeline,
#   100 runs in a row in both start orders, every run prints exactly its lines; recv
#   --once reports an end-of-stream already received; recv never creates a channel
#   unless --create; --progress prints counts and rates;
# - errors name the real cause, each message asserted verbatim;
# - cat prints the bytes written (a used length that write records; --all prints the
#   whole area; a hostile length in the header is clamped), write replaces the
#   content or writes at --offset.
# Usage: tool_cli_test.sh PATH/TO/shmkit   (SHMKIT_TEST_SCALE=N: N x 100 runs)
set -u
tool="$1"
tag="shmkit-clitest-$$"
tmp=$(mktemp -d)
. "$(dirname "$0")/tool_lib.sh"

cleanup() {
	for n in ch ch2 ch3 ch4 prog cfg raw nope; do
		"$tool" rm "/$tag-$n" >/dev/null 2>&1
	done
	find /dev/shm -maxdepth 1 -name "*$tag*" -exec rm -f {} + 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# said DESCRIPTION FILE EXPECTED: the first line of FILE is EXPECTED, exactly.
said() {
	got=$(head -n 1 "$2")
	if [ "$got" = "$3" ]; then ok; else fail "$1: got '$got', want '$3'"; fi
}

# ---- send | recv on one name, again and again ----
ch="/$tag-ch"
seq 1000 >"$tmp/want"
# The first run makes the channel: the receiver may start first, so it asks --create.
seq 1000 | "$tool" send "$ch" & pid=$!
"$tool" recv --create "$ch" >"$tmp/got"
wait $pid
check "first run, recv --create: exactly its lines" cmp -s "$tmp/got" "$tmp/want"
runs=$((100 * ${SHMKIT_TEST_SCALE:-1}))
bad=0
i=0
while [ $i -lt $runs ]; do
	case $((i % 3)) in
	0) # as the README writes it: both at once
		seq 1000 | "$tool" send "$ch" & pid=$!
		"$tool" recv "$ch" >"$tmp/got"
		wait $pid ;;
	1) # the sender has finished before the receiver starts
		seq 1000 | "$tool" send "$ch"
		"$tool" recv "$ch" >"$tmp/got" ;;
	2) # the receiver waits before the sender comes
		(sleep 0.02; seq 1000 | "$tool" send "$ch") & pid=$!
		"$tool" recv "$ch" >"$tmp/got"
		wait $pid ;;
	esac
	if ! cmp -s "$tmp/got" "$tmp/want"; then
		bad=$((bad + 1))
		echo "run $i (order $((i % 3))): $(wc -l <"$tmp/got") lines" >&2
	fi
	i=$((i + 1))
done
check "$runs runs on one name, each delivering exactly its 1000 lines ($bad did not)" [ $bad -eq 0 ]

# The last end-of-stream was received: --once says so, at once.
"$tool" recv --once "$ch" >"$tmp/got" 2>"$tmp/err"
check "recv --once after a received end-of-stream exits 1" [ $? -eq 1 ] && [ ! -s "$tmp/got" ]
said "recv --once explains" "$tmp/err" \
	"shmkit recv: $ch: the last sender's end-of-stream was already received, and no sender came since (without --once, recv waits for one)"
# Without --once it waits (here until its timeout)...
"$tool" recv --timeout 0.2 "$ch" >"$tmp/got" 2>"$tmp/err"
check "recv after a received end-of-stream waits for a sender (timeout: 1)" [ $? -eq 1 ] && [ ! -s "$tmp/got" ]
said "the timeout is explained" "$tmp/err" "shmkit recv: $ch: no message before the timeout"
# ...while a stream that ended unreceived is delivered whole, --once or not.
printf 'a\nb\n' | "$tool" send "$ch"
check "recv --once gets a stream that ended before it came" \
	[ "$("$tool" recv --once "$ch" | tr '\n' ' ')" = "a b " ]
# A sender that fills the ring before its receiver comes waits for it (the last
# receiver left long ago): nothing is lost and send succeeds.
seq 200000 >"$tmp/big"
"$tool" send --capacity 4096 "/$tag-ch4" <"$tmp/big" & pid=$!
sleep 0.3
"$tool" recv "/$tag-ch4" >"$tmp/got"
wait $pid
check "a sender on a full ring waits for a late receiver (exit 0)" [ $? -eq 0 ]
check "and the late receiver gets every line" cmp -s "$tmp/got" "$tmp/big"
"$tool" send --capacity 4096 "/$tag-ch4" <"$tmp/big" & pid=$!
sleep 0.3
"$tool" recv "/$tag-ch4" >"$tmp/got"
wait $pid
check "again on the reused name (receiver left before the sender came)" cmp -s "$tmp/got" "$tmp/big"

# A receiver that leaves in the middle: send fails and says how many lines wait for the
# next receiver, which then prints exactly those, from the first it had not received.
"$tool" recv --create --capacity 4096 -n 3 "/$tag-ch5" >"$tmp/first" & pid=$!
sleep 0.3
seq 100000 | "$tool" send "/$tag-ch5" 2>"$tmp/err"
check "send fails when its receiver leaves (1)" [ $? -eq 1 ]
wait $pid
n=$(sed -n 's/^shmkit send: .*: the receiver left (closed or died); \([0-9]*\) lines\{0,1\} sent and not received wait for the next receiver$/\1/p' "$tmp/err")
check "and says how many lines wait ($(head -n 1 "$tmp/err"))" [ -n "$n" ]
"$tool" recv --timeout 5 "/$tag-ch5" >"$tmp/rest"
check "the next receiver prints those $n lines" [ "$(wc -l <"$tmp/rest")" -eq "${n:-0}" ]
check "from the first the other had not received" [ "$(head -n 1 "$tmp/rest")" = 4 ]

# ---- recv never creates a channel unless asked ----
nope="/$tag-nope"
"$tool" recv "$nope" >/dev/null 2>"$tmp/err"
check "recv on a missing name exits 1" [ $? -eq 1 ]
said "recv on a missing name names it" "$tmp/err" \
	"shmkit recv: $nope: no such channel (recv --create makes one, as send does)"
check "and creates nothing" [ ! -e "/dev/shm/$tag-nope" ]
"$tool" recv --create --timeout 0.1 "$nope" 2>/dev/null
check "recv --create makes the channel" [ -e "/dev/shm/$tag-nope" ]
check "which is a channel" sh -c "'$tool' stat '$nope' | grep -q 'kind: *chan'"

# ---- --progress ----
prog="/$tag-prog"
(seq 100; sleep 1.1; seq 100) | "$tool" send --progress "$prog" 2>"$tmp/sprog" & pid=$!
"$tool" recv --create --progress "$prog" >/dev/null 2>"$tmp/rprog"
wait $pid
# 129 lines (192 + 49 bytes without newlines) once a second passed; 200 at the end.
check "send --progress: a line each second with counts and the rate" \
	grep -Eq "^shmkit send: $prog: 129 messages, 241 bytes; now [0-9]+ msg/s, [0-9.]+ MB/s$" "$tmp/sprog"
check "recv --progress: the same on the receiving side" \
	grep -Eq "^shmkit recv: $prog: 129 messages, 241 bytes; now [0-9]+ msg/s, [0-9.]+ MB/s$" "$tmp/rprog"
check "send --progress: the totals and mean rates at the end" \
	grep -Eq "^shmkit send: $prog: 200 messages, 384 bytes in [0-9.]+ s \([0-9]+ msg/s, [0-9.]+ MB/s\)$" "$tmp/sprog"
check "recv --progress: the totals at the end" \
	grep -Eq "^shmkit recv: $prog: 200 messages, 384 bytes in [0-9.]+ s \([0-9]+ msg/s, [0-9.]+ MB/s\)$" "$tmp/rprog"
check "progress goes to stderr only" [ "$(seq 3 | "$tool" send --progress "$prog" 2>/dev/null | wc -c)" -eq 0 ]

# ---- errors that name the real cause ----
cfg="/$tag-cfg"
"$tool" create "$cfg" 4096
"$tool" cat "$ch" >/dev/null 2>"$tmp/err"
check "cat on a channel exits 1" [ $? -eq 1 ]
said "cat on a channel" "$tmp/err" "shmkit cat: $ch is a channel, not a data segment (use send and recv)"
"$tool" write "$ch" </dev/null 2>"$tmp/err"
said "write on a channel" "$tmp/err" "shmkit write: $ch is a channel, not a data segment (use send and recv)"
"$tool" recv "$cfg" 2>"$tmp/err"
check "recv on a data segment exits 1" [ $? -eq 1 ]
said "recv on a data segment" "$tmp/err" "shmkit recv: $cfg is a data segment, not a channel"
: | "$tool" send "$cfg" 2>"$tmp/err"
said "send on a data segment" "$tmp/err" "shmkit send: $cfg is a data segment, not a channel"
ch3="/$tag-ch3"
"$tool" recv --create --timeout 3 "$ch3" 2>/dev/null & pid=$!
i=0
while [ $i -lt 100 ] && ! "$tool" stat "$ch3" 2>/dev/null | grep -q "consumer: *pid [1-9]"; do
	sleep 0.05; i=$((i + 1))
done
"$tool" recv "$ch3" 2>"$tmp/err"
said "a second receiver" "$tmp/err" "shmkit recv: $ch3: another process is the channel's receiver (a channel has one of each)"
kill $pid 2>/dev/null; wait $pid 2>/dev/null
"$tool" cat "$nope-x" 2>"$tmp/err"
said "cat on a missing name" "$tmp/err" "shmkit cat: $nope-x: no such segment"

# Name rules.
name_err() { # name_err DESCRIPTION EXPECTED-RULE ARGS...
	d="$1"; rule="$2"; shift 2
	"$tool" create "$@" 4096 2>"$tmp/err"
	st=$?
	for last; do :; done
	check "$d exits 2" [ $st -eq 2 ]
	said "$d" "$tmp/err" "shmkit create: $last: $rule"
}
name_err "a name with a second '/'" "a POSIX name is one component: a '/' at its start, no other" "/$tag/name"
name_err "a lone '/'" "a POSIX name needs a character after its '/'" "/"
name_err "'..'" "'.' and '..' are not names" "/.."
long=$(printf '%0255d' 0)
name_err "a 255-byte POSIX name" "a POSIX name has at most 254 bytes after its '/'" "/$long"
name_err "a System V key of zeros" "0x... needs a System V key: 1 to 8 hex digits, not all zero" --sysv 0x0
name_err "a System V key for a shmkit segment" "a shmkit segment is found again by its name, so it is created with a name, not a key (a key only with --raw)" --sysv 0x1234abcd
name_err "a System V id" "id:N names a segment that exists; it cannot be created" --sysv id:5
"$tool" recv "/$tag/x" 2>"$tmp/err"
said "recv names the broken rule" "$tmp/err" "shmkit recv: /$tag/x: a POSIX name is one component: a '/' at its start, no other"
"$tool" create "$cfg" 4096 2>"$tmp/err"
said "create on a taken name" "$tmp/err" "shmkit create: $cfg: a segment of this name exists"

# Arguments: which one, and why; then the usage line.
arg_err() { # arg_err DESCRIPTION EXPECTED COMMAND ARGS...
	d="$1"; want="$2"; shift 2
	"$tool" "$@" </dev/null >/dev/null 2>"$tmp/err"
	st=$?
	check "$d exits 2" [ $st -eq 2 ]
	said "$d" "$tmp/err" "$want"
	check "$d: then the usage line" sh -c "sed -n 2p '$tmp/err' | grep -q '^usage: shmkit $1 '"
}
arg_err "a SIZE with a bad suffix" "shmkit create: SIZE '12q': not a size in bytes (digits, then k, M or G for KiB, MiB, GiB)" create "/$tag-x" 12q
arg_err "a SIZE of 0" "shmkit create: SIZE '0': a size must be at least 1 byte" create "/$tag-x" 0
arg_err "a negative SIZE" "shmkit create: SIZE '-5': not a size in bytes (digits, then k, M or G for KiB, MiB, GiB)" create "/$tag-x" -- -5
arg_err "a SIZE too large" "shmkit create: SIZE '65537G': larger than the most, 70368744177664 bytes" create "/$tag-x" 65537G
arg_err "--mode 999" "shmkit create: --mode '999': not a permission mode: octal digits, 1 to 0777" create --mode 999 "/$tag-x" 4k
arg_err "--mode without a value" "shmkit create: --mode: needs a value" create "/$tag-x" 4k --mode
arg_err "a missing SIZE" "shmkit create: SIZE: missing" create "/$tag-x"
arg_err "an unknown option" "shmkit create: '--big': no such option" create --big "/$tag-x" 4k
arg_err "recv -n that is not a number" "shmkit recv: -n 'ten': not a whole number (decimal digits)" recv -n ten "$ch"
arg_err "recv --timeout that is not a number" "shmkit recv: --timeout 'soon': not a number of seconds (0 or more, such as 2.5)" recv --timeout soon "$ch"
arg_err "send --capacity too large" "shmkit send: --capacity '2G': larger than the most, 1073741824 bytes" send --capacity 2G "$ch"
arg_err "recv without a name" "shmkit recv: NAME: missing" recv
arg_err "write --offset that is not a number" "shmkit write: --offset 'x': not a whole number (decimal digits)" write --offset x "$cfg"
check "nothing was created by the refused commands" [ ! -e "/dev/shm/$tag-x" ]

# A message too long: the limit is named.
ch2="/$tag-ch2"
head -c 3000 /dev/zero | tr '\0' x >"$tmp/long"
(echo short; cat "$tmp/long"; echo) | "$tool" send --capacity 4096 "$ch2" 2>"$tmp/err"
check "a line longer than the largest message fails (1)" [ $? -eq 1 ]
said "and names its length and the limit" "$tmp/err" \
	"shmkit send: $ch2: line 2 is 3000 bytes, longer than the largest message (2048 bytes)"
check "the lines before it were sent" [ "$("$tool" recv "$ch2")" = short ]

# ---- cat prints what was written; write replaces, or writes at --offset ----
printf 'hello config' | "$tool" write "$cfg"
printf 'hello config' >"$tmp/want"
"$tool" cat "$cfg" >"$tmp/got"
check "cat prints exactly the bytes written" cmp -s "$tmp/got" "$tmp/want"
echo hi | "$tool" write "$cfg"
echo hi >"$tmp/want"
"$tool" cat "$cfg" >"$tmp/got"
check "write replaces the content: 'hi' after 'hello config' reads back 'hi'" cmp -s "$tmp/got" "$tmp/want"
check "cat --all prints the whole data area" [ "$("$tool" cat --all "$cfg" | wc -c)" -eq 4096 ]
check "and the old tail was cleared" [ "$("$tool" cat --all "$cfg" | tail -c +4 | tr -d '\000' | wc -c)" -eq 0 ]
printf 'there' | "$tool" write --offset 3 "$cfg"
check "write --offset N at the end appends" [ "$("$tool" cat "$cfg" | od -An -c | tr -s ' ' | tr -d '\n')" = " h i \n t h e r e" ]
printf 'X' | "$tool" write --offset 1 "$cfg"
check "write --offset N inside keeps the rest (and the length)" [ "$("$tool" cat "$cfg" | od -An -c | tr -s ' ' | tr -d '\n')" = " h X \n t h e r e" ]
printf 'Z' | "$tool" write --offset 20 "$cfg"
check "write --offset N past the end extends the length" [ "$("$tool" cat "$cfg" | wc -c)" -eq 21 ]
check "stat shows the bytes in use" sh -c "'$tool' stat '$cfg' | grep -q '^used: *21 bytes'"
check "stat --json too" sh -c "'$tool' stat --json '$cfg' | grep -q '\"used\": 21'"
check "over zeros in between" [ "$("$tool" cat "$cfg" | tail -c 13 | head -c 12 | tr -d '\000' | wc -c)" -eq 0 ]
printf '0123456789' | "$tool" write --offset 4090 "$cfg" 2>"$tmp/err"
check "a write past the area fails (1)" [ $? -eq 1 ]
said "and says where" "$tmp/err" "shmkit write: $cfg: input does not fit in the 6 bytes after offset 4090; nothing written"
check "and wrote nothing" [ "$("$tool" cat "$cfg" | wc -c)" -eq 21 ]
: | "$tool" write --offset 5000 "$cfg" 2>"$tmp/err"
said "an offset past the end" "$tmp/err" "shmkit write: --offset 5000: past the end of $cfg's 4096-byte data area"
: | "$tool" write "$cfg"
check "an empty write leaves an empty segment" [ "$("$tool" cat "$cfg" | wc -c)" -eq 0 ]
# The length lives in the header (byte 328), where any peer may write: a value larger
# than the area is clamped to it, never trusted.
if [ -w "/dev/shm/$tag-cfg" ]; then
	printf '\377\377\377\377\377\377\377\377' |
		dd of="/dev/shm/$tag-cfg" bs=1 seek=328 conv=notrunc 2>/dev/null
	check "a hostile used length is clamped to the area" [ "$("$tool" cat "$cfg" | wc -c)" -eq 4096 ]
	printf '\005\000\000\000\000\000\000\000' |
		dd of="/dev/shm/$tag-cfg" bs=1 seek=328 conv=notrunc 2>/dev/null
	check "a word without the 'recorded' bit means the whole area" [ "$("$tool" cat "$cfg" | wc -c)" -eq 4096 ]
fi
# A raw segment has no header to keep a length in: cat prints it all.
"$tool" create --raw "/$tag-raw" 4096
printf 'raw' | "$tool" write "/$tag-raw"
check "cat of a raw segment prints all of it" [ "$("$tool" cat "/$tag-raw" | wc -c)" -eq 4096 ]
check "starting with what was written" [ "$("$tool" cat "/$tag-raw" | head -c 3)" = raw ]

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
