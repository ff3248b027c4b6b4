# Sourced by the tool's shell tests (tool_test.sh, tool_cli_test.sh,
# tool_live_test.sh): their counters and checks, and the private namespace they run in.

fails=0
passes=0
ok() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# check DESCRIPTION COMMAND...: counts a pass if COMMAND succeeds, else reports a
# failure. Its variable has a name of its own: callers keep theirs.
check() {
	tool_lib_what="$1"; shift
	if "$@"; then ok; else fail "$tool_lib_what"; fi
}

# tool_private SCRIPT ARGS... (call it as: tool_private "$0" "$@"): run the script
# again in a private IPC and mount namespace, with a /dev/shm of its own, where it
# may (root with unshare), so that segments other tests make and remove meanwhile
# never appear in what it lists or collects; otherwise return and run as is.
tool_private() {
	if [ -z "${SHMKIT_TOOL_TEST_PRIVATE:-}" ] && command -v unshare >/dev/null 2>&1 &&
		unshare -m -i true 2>/dev/null; then
		SHMKIT_TOOL_TEST_PRIVATE=1 exec unshare -m -i --propagation private sh -c \
			'mount -t tmpfs -o mode=1777 shmkit-tool-test /dev/shm && exec sh "$0" "$@"' "$@"
	fi
}
