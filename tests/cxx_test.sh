#!/bin/sh
# cxx_test.sh SRC_DIR BUILD_DIR LIBFILE: the public headers as C++ programs use them.
# Each header compiles alone (it includes what it needs) and all together with
# g++ -Wall -Wextra -pedantic -Wwrite-strings -Werror, as C++11, C++17 and C++20; a
# program passing string literals to shmem_open() and shmem_write() (const since 0.2)
# links against the shared library (extern "C": no mangled name) and runs. The same
# program as C11 with -Wwrite-strings -pedantic -Werror. Exit 0 pass, 1 fail, 77 skip
# (no C++ compiler). Environment: CXX (default g++), CC (default cc).
set -u
src=${1:?usage: cxx_test.sh SRC_DIR BUILD_DIR LIBFILE}
build=${2:?usage: cxx_test.sh SRC_DIR BUILD_DIR LIBFILE}
lib=${3:?usage: cxx_test.sh SRC_DIR BUILD_DIR LIBFILE}
CXX=${CXX:-g++}
CC=${CC:-cc}

if ! command -v "$CXX" >/dev/null 2>&1; then
	echo "cxx_test: $CXX not found (apt-get install g++): skipped"
	exit 77
fi
# A sanitizer build's library needs its runtime: compile only, run nothing.
run=1
if grep -Eq '^SHMKIT_SANITIZE:STRING=(address|thread)$' "$build/CMakeCache.txt" 2>/dev/null; then
	run=0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-cxx-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

fail=0
bad() {
	echo "cxx_test: FAIL: $*" >&2
	fail=1
}
flags="-Wall -Wextra -pedantic -Wwrite-strings -Werror -I$src/include -I$build/include"

# The standards this compiler knows, from C++11 up.
stds=
for s in c++11 c++17 c++20; do
	echo 'int main() { return 0; }' >"$tmp/probe.cpp"
	"$CXX" -std=$s -c -o "$tmp/probe.o" "$tmp/probe.cpp" 2>/dev/null && stds="$stds $s"
done
[ -n "$stds" ] || bad "$CXX compiles none of C++11, C++17, C++20"

headers=$(cd "$src/include/shmkit" && ls ./*.h | sed 's,^\./,,')
for std in $stds; do
	# Each header alone.
	for h in $headers; do
		printf '#include <shmkit/%s>\nint shmkit_cxx_test_%s;\n' "$h" "${h%.h}" >"$tmp/one.cpp"
		# shellcheck disable=SC2086 # flags is a word list
		"$CXX" -std="$std" $flags -c -o "$tmp/one.o" "$tmp/one.cpp" 2>"$tmp/err" ||
			bad "$std: <shmkit/$h> alone: $(head -n 5 "$tmp/err")"
	done
done

# Every header together, and a program that uses literals where the API takes const.
{
	for h in $headers; do
		echo "#include <shmkit/$h>"
	done
	cat <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	if (shmkit_version() != SHMKIT_VERSION || !SHMKIT_CHECK_VERSION(0, 2, 0))
		return 10;
	if (strcmp(shmkit_strerror(-EPROTO), shmkit_strerror(EPROTO)) != 0)
		return 11;
	if (shmkit_seg_layout(SHMKIT_KIND_CHAN) == 0)
		return 12;
	/* String literals: const char * and const void * parameters. */
	shmem_t *h = shmem_open("/tmp/shmkit-cxx-test.key", 64);
	if (!h)
		return 13;
	char out[64];
	if (shmem_write(&h, "from a literal", 15) != 0 || shmem_read(&h, out, sizeof out) != 0 ||
	    strcmp(out, "from a literal") != 0)
		return 14;
	if (shmem_delete(&h) != 0)
		return 15;
	unlink("/tmp/shmkit-cxx-test.key");
	printf("ok %s\n", shmkit_version_string());
	return 0;
}
EOF
} >"$tmp/all.cpp"
sed 's,/tmp/shmkit-cxx-test.key,/tmp/shmkit-cxx-test-c.key,g' "$tmp/all.cpp" >"$tmp/all.c"

libdir=$(dirname "$lib")
for std in $stds; do
	# shellcheck disable=SC2086
	if ! "$CXX" -std="$std" $flags -c -o "$tmp/all.o" "$tmp/all.cpp" 2>"$tmp/err"; then
		bad "$std: every header with the program: $(head -n 8 "$tmp/err")"
		continue
	fi
	[ "$run" = 1 ] || continue
	if ! "$CXX" -o "$tmp/prog" "$tmp/all.o" -L"$libdir" -lshmkit 2>"$tmp/err"; then
		bad "$std: link with -lshmkit: $(head -n 5 "$tmp/err")"
		continue
	fi
	out=$(LD_LIBRARY_PATH=$libdir "$tmp/prog" 2>&1)
	rc=$?
	[ "$rc" = 0 ] || bad "$std: the program exited $rc: $out"
done

# C, with the warnings that made the seed's char * a nuisance.
# shellcheck disable=SC2086
if "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L $flags -c -o "$tmp/all_c.o" "$tmp/all.c" 2>"$tmp/err"; then
	if [ "$run" = 1 ]; then
		if "$CC" -o "$tmp/prog_c" "$tmp/all_c.o" -L"$libdir" -lshmkit 2>"$tmp/err"; then
			out=$(LD_LIBRARY_PATH=$libdir "$tmp/prog_c" 2>&1) || bad "C program: $out"
		else
			bad "C: link with -lshmkit: $(head -n 5 "$tmp/err")"
		fi
	fi
else
	bad "C11 -Wwrite-strings -pedantic: $(head -n 8 "$tmp/err")"
fi

[ "$fail" -eq 0 ] || exit 1
if [ "$run" = 1 ]; then
	echo "cxx_test: $CXX ($stds ) and $CC: every header alone and together, no warning; the programs ran"
else
	echo "cxx_test: $CXX ($stds ) and $CC: every header alone and together, no warning (sanitizer build: not run)"
fi
exit 0
