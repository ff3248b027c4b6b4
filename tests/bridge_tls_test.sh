#!/bin/sh
# bridge_tls_test.sh SHMKIT: `shmkit bridge` with TLS and credentials, on loopback.
# A throwaway CA, server and client certificates made with openssl in a temp dir; a
# nats-server that requires TLS and a client certificate (verify: true), one that
# requires a token, one a user and password, one an NKey, each on a port it picks
# itself (read back from its log). Shows: the right CA and certificate carry a topic
# end to end; without the CA, or with the wrong host name, the bridge keeps running
# and says why in --status and on stderr; a token or a password works from a file or
# the environment, and so does an NKey, and a wrong one ends the bridge with exit 1
# and the server's reason; a missing, unreadable or bad file is exit 2 naming it.
# Skips (77) without nats-server, openssl, or a bridge built with libnats.
set -u
S=${1:?usage: bridge_tls_test.sh SHMKIT}
. "$(dirname "$0")/tool_lib.sh"

if ! command -v nats-server >/dev/null 2>&1; then
	echo "SKIP: nats-server is not installed (apt-get install nats-server)"
	exit 77
fi
if ! command -v openssl >/dev/null 2>&1; then
	echo "SKIP: openssl is not installed, so no test certificates (apt-get install openssl)"
	exit 77
fi
if ! "$S" bridge --help >/dev/null 2>&1; then
	echo "SKIP: shmkit was built without libnats: no bridge (apt-get install libnats-dev)"
	exit 77
fi

T=$(mktemp -d)
P=$$
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	# (a usage error found after the bridge opened its topic leaves the topic: /tx, /ty)
	for n in /ta$P /tb$P /tk$P /tl$P /tn$P /tu$P /tx$P /ty$P; do "$S" rm "$n" >/dev/null 2>&1; done
	for h in ta tb tc td tk tl tn tu tx ty; do "$S" rm "/shmkit-bridge-$h$P" >/dev/null 2>&1; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "$0")/bridge_lib.sh" # wait_for, connected
# status_error HOST PATTERN: the bridge runs, is not connected, and its status's
# error line matches PATTERN.
status_error() {
	"$S" bridge --status --host-id "$1" >"$T/st" 2>/dev/null &&
		awk 'NR == 1 && $4 == 0 { ok = 1 } END { exit !ok }' "$T/st" &&
		grep '^error ' "$T/st" | grep -q -- "$2"
}
# forwarded HOST: the in mapping's forwarded count from the bridge's status.
forwarded() {
	"$S" bridge --status --host-id "$1" 2>/dev/null |
		awk '$1 == "in" { for (i = 4; i < NF; i += 2) if ($i == "forwarded") print $(i + 1) }'
}
# start_server NAME CONF: runs nats-server -c CONF in the background and sets NAME_PORT
# to the client port it picked (listen 127.0.0.1:-1), read from its log.
start_server() {
	nats-server -c "$2" >"$T/$1.log" 2>&1 &
	pids="$pids $!"
	s_i=0
	while [ "$s_i" -lt 100 ]; do
		s_port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/$1.log")
		if [ -n "$s_port" ]; then
			eval "${1}_PORT=$s_port"
			return 0
		fi
		sleep 0.1
		s_i=$((s_i + 1))
	done
	cat "$T/$1.log" >&2
	return 1
}
# exits_with CODE SECONDS FILE ARGS...: shmkit bridge ARGS exits by itself within
# SECONDS, with CODE; its stderr in FILE.
exits_with() {
	e_code=$1 e_secs=$2 e_err=$3; shift 3
	timeout "$e_secs" "$S" bridge "$@" >/dev/null 2>"$e_err"
	[ $? = "$e_code" ]
}

# --- a throwaway CA, a server certificate for localhost, a client certificate ------
(
	cd "$T" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj "/CN=shmkit test CA $P" -keyout ca.key -out ca.pem &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=localhost" -keyout server.key -out server.csr &&
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext &&
	openssl x509 -req -days 1 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-extfile server.ext -out server.pem &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=bridge $P" -keyout client.key -out client.csr &&
	openssl x509 -req -days 1 -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out client.pem
) >"$T/openssl.log" 2>&1
if [ ! -s "$T/client.pem" ]; then
	cat "$T/openssl.log" >&2
	fail "openssl did not make the test certificates"
	echo "$passes passed, $fails failed"
	exit 1
fi

cat >"$T/tls.conf" <<EOF
listen: 127.0.0.1:-1
tls {
	cert_file: "$T/server.pem"
	key_file: "$T/server.key"
	ca_file: "$T/ca.pem"
	verify: true
	timeout: 2
}
EOF
echo "tok-$P-right" >"$T/token"
echo "tok-$P-wrong" >"$T/token.bad"
cat >"$T/token.conf" <<EOF
listen: 127.0.0.1:-1
authorization { token: "tok-$P-right" }
EOF
printf 'pw-%s\n' "$P" >"$T/password"
cat >"$T/user.conf" <<EOF
listen: 127.0.0.1:-1
authorization { users: [ { user: "bridge", password: "pw-$P" } ] }
EOF
check "the TLS server starts" start_server TLS "$T/tls.conf"
check "the token server starts" start_server TOK "$T/token.conf"
check "the user server starts" start_server USR "$T/user.conf"
TLS_URL=nats://127.0.0.1:${TLS_PORT:-1}
TOK_URL=nats://127.0.0.1:${TOK_PORT:-1}
USR_URL=nats://127.0.0.1:${USR_PORT:-1}

# --- TLS with the right CA and client certificate: a topic end to end ------------
# Host A from a config file (the TLS keys as config lines), host B from options.
cat >"$T/a.conf" <<EOF
server $TLS_URL
host-id ta$P
tls-ca $T/ca.pem
tls-cert $T/client.pem
tls-key $T/client.key
tls-hostname localhost
topic-out /ta$P=shmkit.tls.t$P
EOF
"$S" bridge --config "$T/a.conf" 2>"$T/ba.err" &
ba=$!
pids="$pids $ba"
"$S" bridge --server "$TLS_URL" --host-id "tb$P" --tls-ca "$T/ca.pem" --tls-cert "$T/client.pem" \
	--tls-key "$T/client.key" --tls-hostname localhost --topic-in "shmkit.tls.t$P=/tb$P" \
	2>"$T/bb.err" &
pids="$pids $!"
check "TLS: bridge A connects with the CA and its certificate" wait_for 15 connected "ta$P"
check "TLS: bridge B connects with the CA and its certificate" wait_for 15 connected "tb$P"
# Publish "warm" lines until B has published one: the server knows B's interest.
w_i=0
while [ "$w_i" -lt 100 ] && [ "$(forwarded "tb$P")" = 0 ]; do
	echo "warm $w_i" | "$S" pub "/ta$P" >/dev/null 2>&1
	sleep 0.1
	w_i=$((w_i + 1))
done
"$S" sub --timeout 2 "/tb$P" >"$T/got.raw" 2>/dev/null &
sub=$!
pids="$pids $sub"
sleep 0.3
seq 1 500 | sed "s/^/tls $P /" >"$T/sent"
"$S" pub "/ta$P" <"$T/sent"
wait "$sub"
grep -v '^warm ' "$T/got.raw" >"$T/got"
check "TLS: 500 messages A → B over TLS, in order and intact" cmp -s "$T/sent" "$T/got"
check "TLS: no error in A's status" sh -c "! '$S' bridge --status --host-id ta$P | grep -q '^error '"

# --- TLS refused: the bridge keeps running and says why ---------------------------
# No CA: the server's certificate cannot be verified (the system's CAs do not know it).
"$S" bridge --server "$TLS_URL" --host-id "tc$P" --tls-cert "$T/client.pem" \
	--tls-key "$T/client.key" --topic-out "/ta$P=shmkit.tls.c$P" 2>"$T/bc.err" &
bc=$!
pids="$pids $bc"
check "no CA: --status says the handshake failed, and why" \
	wait_for 10 status_error "tc$P" "SSL handshake error.*unable to get local issuer certificate"
check "no CA: stderr says why" wait_for 5 grep -q "not connected: SSL handshake error.*local issuer" "$T/bc.err"
sleep 2.5 # past one retry (every 2 s)
check "no CA: the bridge is still running, retrying" kill -0 "$bc"
check "no CA: still not connected, same reason" status_error "tc$P" "unable to get local issuer"
# The right CA, but the certificate is for localhost, not for this name.
"$S" bridge --server "$TLS_URL" --host-id "td$P" --tls-ca "$T/ca.pem" --tls-cert "$T/client.pem" \
	--tls-key "$T/client.key" --tls-hostname "wrong.example" --topic-out "/ta$P=shmkit.tls.d$P" \
	2>"$T/bd.err" &
pids="$pids $!"
check "wrong host name: --status says the certificate does not match" \
	wait_for 10 status_error "td$P" "hostname mismatch.*expected=wrong.example"

# --- a token ----------------------------------------------------------------------
"$S" bridge --server "$TOK_URL" --host-id "tk$P" --token-file "$T/token" \
	--topic-out "/tk$P=shmkit.tok.t$P" 2>"$T/bk.err" &
bk=$!
pids="$pids $bk"
SHMKIT_NATS_TOKEN="tok-$P-right" "$S" bridge --server "$TOK_URL" --host-id "tl$P" \
	--topic-in "shmkit.tok.t$P=/tl$P" 2>"$T/bl.err" &
bl=$!
pids="$pids $bl"
check "token: --token-file connects" wait_for 15 connected "tk$P"
check "token: SHMKIT_NATS_TOKEN connects" wait_for 15 connected "tl$P"
w_i=0
while [ "$w_i" -lt 100 ] && [ "$(forwarded "tl$P")" = 0 ]; do
	echo "warm $w_i" | "$S" pub "/tk$P" >/dev/null 2>&1
	sleep 0.1
	w_i=$((w_i + 1))
done
check "token: a message goes through" test "$(forwarded "tl$P")" -gt 0
check "token: a wrong token is refused: exit 1" exits_with 1 10 "$T/wrong.err" \
	--server "$TOK_URL" --host-id "tx$P" --token-file "$T/token.bad" --topic-out "/tk$P=x.y"
check "token: ... with the server's reason" \
	grep -q "refused the credentials: Authorization Violation" "$T/wrong.err"
check "token: none given is refused: exit 1" exits_with 1 10 "$T/none.err" \
	--server "$TOK_URL" --host-id "tx$P" --topic-out "/tk$P=x.y"
check "token: ... with the server's reason" grep -q "Authorization Violation" "$T/none.err"

# --- a user and password ----------------------------------------------------------
"$S" bridge --server "$USR_URL" --host-id "tu$P" --user bridge --password-file "$T/password" \
	--topic-out "/tu$P=shmkit.usr.t$P" 2>"$T/bu.err" &
pids="$pids $!"
check "user: --user with --password-file connects" wait_for 15 connected "tu$P"
check "user: a wrong SHMKIT_NATS_PASSWORD is refused: exit 1" sh -c \
	"SHMKIT_NATS_PASSWORD=nope timeout 10 '$S' bridge --server '$USR_URL' --host-id tx$P \
		--user bridge --topic-out /tu$P=x.y >/dev/null 2>'$T/pw.err'; test \$? = 1"
check "user: ... with the server's reason" grep -q "Authorization Violation" "$T/pw.err"

# --- an NKey -----------------------------------------------------------------------
# An Ed25519 key from openssl, encoded as NATS writes NKeys: base32 (no padding) of a
# prefix, the 32 key bytes and a CRC-16 (polynomial 0x1021, little-endian); the user's
# public key starts with U, its seed with SU.
if command -v python3 >/dev/null 2>&1 &&
	openssl genpkey -algorithm ed25519 -out "$T/nk.pem" 2>/dev/null &&
	openssl pkey -in "$T/nk.pem" -outform DER -out "$T/nk.der" 2>/dev/null &&
	openssl pkey -in "$T/nk.pem" -pubout -outform DER -out "$T/nk.pub.der" 2>/dev/null; then
	NKEY=$(python3 - "$T/nk.der" "$T/nk.pub.der" "$T/nk.seed" <<'PY'
import base64, sys
def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc
def encode(raw):
    c = crc16(raw)
    return base64.b32encode(raw + bytes([c & 0xFF, c >> 8])).decode().rstrip("=")
seed = open(sys.argv[1], "rb").read()[-32:]  # DER ends with the raw key
pub = open(sys.argv[2], "rb").read()[-32:]
user = 20 << 3
with open(sys.argv[3], "w") as f:
    f.write(encode(bytes([(18 << 3) | (user >> 5), (user & 31) << 3]) + seed) + "\n")
print(encode(bytes([user]) + pub))
PY
)
	printf 'listen: 127.0.0.1:-1\nauthorization { users: [ { nkey: "%s" } ] }\n' "$NKEY" >"$T/nkey.conf"
	check "nkey: the server starts" start_server NK "$T/nkey.conf"
	"$S" bridge --server "nats://127.0.0.1:${NK_PORT:-1}" --host-id "tn$P" --nkey "$NKEY" \
		--nkey-seed "$T/nk.seed" --topic-out "/tn$P=shmkit.nk.t$P" 2>"$T/bn.err" &
	pids="$pids $!"
	check "nkey: --nkey with --nkey-seed connects" wait_for 15 connected "tn$P"
	check "nkey: without it, refused: exit 1" exits_with 1 10 "$T/nonk.err" \
		--server "nats://127.0.0.1:${NK_PORT:-1}" --host-id "tx$P" --topic-out "/tn$P=x.y"
else
	echo "nkey: skipped (needs python3 and an openssl with Ed25519)"
fi

# --- files: a usage error naming the file -----------------------------------------
# (What the library refuses, each file and option, test_bridge_api checks; here, that
# each option reaches it and the tool says so with exit 2. Few: under a sanitizer each
# start costs a second.)
usage2() { # usage2 WHAT PATTERN ARGS...
	u_what=$1; u_pat=$2; shift 2
	"$S" bridge "$@" >"$T/u.out" 2>"$T/u.err"
	u_rc=$?
	if [ "$u_rc" = 2 ] && grep -q -- "$u_pat" "$T/u.err"; then ok; else
		fail "$u_what: exit $u_rc, stderr: $(cat "$T/u.err")"; fi
}
M="--server $TLS_URL --host-id tx$P --topic-out /tx$P=x.y"
usage2 "missing CA file" "CA certificate file $T/none.pem: No such file" $M --tls-ca "$T/none.pem"
usage2 "missing key" "key file $T/none.key: No such file" $M --tls-cert "$T/client.pem" \
	--tls-key "$T/none.key"
usage2 "not a certificate" "CA certificate file $T/token: .*no certificate" $M --tls-ca "$T/token"
usage2 "missing credentials file" "credentials file $T/none.creds: No such file" $M \
	--creds "$T/none.creds"
usage2 "missing NKey seed file" "NKey seed file $T/none.nk: No such file" $M \
	--nkey UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 --nkey-seed "$T/none.nk"
usage2 "missing token file" "token file $T/none.tok: No such file" $M --token-file "$T/none.tok"
: >"$T/empty"
usage2 "empty token file" "token file $T/empty is empty" $M --token-file "$T/empty"
usage2 "password file without user" "needs --user" $M --password-file "$T/password"
printf 'server %s\ntls-ca %s/none.pem\ntopic-out /tx%s=x.y\n' "$TLS_URL" "$T" "$P" >"$T/bad.conf"
usage2 "missing CA file from a config file" "CA certificate file $T/none.pem" --config "$T/bad.conf"
printf 'tls maybe\n' >"$T/bad2.conf"
usage2 "tls neither yes nor no" "bad2.conf:1: tls: expected yes or no" --config "$T/bad2.conf"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
	chmod 600 "$T/client.key"
	chmod 755 "$T"
	# A topic and host id of its own: nobody may not open what root created above.
	setpriv --reuid=65534 --regid=65534 --clear-groups "$S" bridge --server "$TLS_URL" \
		--host-id "ty$P" --topic-out "/ty$P=x.y" --tls-cert "$T/client.pem" \
		--tls-key "$T/client.key" >/dev/null 2>"$T/perm.err"
	check "unreadable key file: exit 2" test $? = 2
	check "unreadable key file: named, with the reason" \
		grep -q "key file $T/client.key: Permission denied" "$T/perm.err"
fi

# Bridges stop cleanly on SIGTERM: exit 0 (under a sanitizer: with nothing to report),
# their status removed; one connected over TLS, one with a token, one that has been
# retrying a refused handshake.
for h in "a $ba" "k $bk" "c $bc"; do
	set -- $h
	kill "$2"
	wait "$2"
	check "SIGTERM: bridge t$1 exits 0" test $? = 0
	check "SIGTERM: bridge t$1's status is gone" sh -c "! '$S' bridge --status --host-id t$1$P 2>/dev/null"
done

# The token server restarts, on the same port, with another token: nats.c gives up
# after two refusals, and the connected bridge ends with exit 1 and the reason.
for p in $pids; do
	if grep -q token.conf "/proc/$p/cmdline" 2>/dev/null; then kill "$p"; wait "$p"; fi
done
sed "s/tok-$P-right/tok-$P-rotated/; s/127.0.0.1:-1/127.0.0.1:$TOK_PORT/" "$T/token.conf" >"$T/token2.conf"
check "rotated token: the server restarts" start_server TOK2 "$T/token2.conf"
ended() { ! kill -0 "$bl" 2>/dev/null; }
check "rotated token: the bridge ends by itself" wait_for 15 ended
wait "$bl"
check "rotated token: exit 1" test $? = 1
check "rotated token: stderr says the server refused the credentials" \
	grep -q "refused the credentials: Authorization Violation" "$T/bl.err"

if [ "$fails" -ne 0 ]; then
	for f in ba.err bb.err bc.err bd.err bk.err bl.err bn.err bu.err TOK2.log; do
		echo "== $f"; cat "$T/$f"
	done >&2
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
