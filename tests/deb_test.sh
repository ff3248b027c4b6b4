#!/bin/sh
# deb_test.sh BUILD_DIR: the Debian package as a user installs it. cpack builds the .deb
# from the build tree (as `make package` does from its own), `dpkg -i` installs it under
# /usr, a program built with `pkg-config --cflags --libs shmkit` alone (no path given:
# pkg-config must drop /usr/include and the system libdir) links the shared library
# and runs without LD_LIBRARY_PATH, a CMake project finds the package with no prefix
# given, /usr/bin/shmkit runs; then `dpkg -r` removes it and no file of the package is
# left. Exit 0 pass, 1 fail, 77 skip: not root, dpkg, dpkg-deb, cpack or pkg-config
# missing, a sanitizer build, a shmkit package already installed, or files of the
# package already on the system (never overwritten). Environment: CMAKE, CPACK, CC.
# install_test shares the build tree's manifest: ctest never runs both at once.
set -u
build=${1:?usage: deb_test.sh BUILD_DIR}
CMAKE=${CMAKE:-cmake}
CPACK=${CPACK:-cpack}
CC=${CC:-cc}

skip() {
	echo "deb_test: $*: skipped"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "not root (dpkg -i needs root)"
for t in dpkg dpkg-deb "$CPACK" pkg-config flock; do
	command -v "$t" >/dev/null 2>&1 || skip "$t not found"
done
if grep -Eq '^SHMKIT_SANITIZE:STRING=(address|thread)$' "$build/CMakeCache.txt" 2>/dev/null; then
	skip "sanitizer build (the installed library would need its runtime)"
fi

# One package test on the machine at a time (other clones' suites run too).
exec 9>/tmp/shmkit-deb-test.lock
flock -w 300 9 || skip "another deb_test held /tmp/shmkit-deb-test.lock for 5 minutes"
if dpkg-query -W -f='${Status}' shmkit 2>/dev/null | grep -q ' installed$'; then
	skip "a shmkit package is already installed (not this test's to replace)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-deb-test.XXXXXX") || exit 1
installed=0
cleanup() {
	if [ "$installed" = 1 ]; then
		dpkg -P shmkit >/dev/null 2>&1 || echo "deb_test: could not remove the package" >&2
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail=0
bad() {
	echo "deb_test: FAIL: $*" >&2
	fail=1
}
die() {
	echo "deb_test: FAIL: $*" >&2
	exit 1
}
quiet() {
	if ! "$@" >"$tmp/log" 2>&1; then
		cat "$tmp/log" >&2
		return 1
	fi
}
# dpkg refuses at once while apt or another dpkg holds its lock: wait a minute for it.
dpkg_retry() {
	for _ in $(seq 60); do
		if dpkg "$@" >"$tmp/dpkg.log" 2>&1; then
			return 0
		fi
		grep -q 'lock' "$tmp/dpkg.log" || break
		sleep 1
	done
	cat "$tmp/dpkg.log" >&2
	return 1
}

(cd "$build" && quiet "$CPACK" -G DEB -B "$tmp/pkg") || die "cpack -G DEB in $build"
deb=$(ls "$tmp"/pkg/shmkit_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || die "cpack made no shmkit_*.deb in $tmp/pkg"
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/ -> .*/, ""); print substr($0, index($0, "./") + 1) }' \
	>"$tmp/files"
[ -s "$tmp/files" ] || die "dpkg-deb -c lists no file in $deb"
for f in /usr/include/shmkit/shmkit.h /usr/bin/shmkit; do
	grep -qx "$f" "$tmp/files" || bad "the package has no $f"
done
while read -r f; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		skip "$f is already on this system (from no package): not overwritten"
	fi
done <"$tmp/files"

dpkg_retry -i "$deb" || die "dpkg -i $deb"
installed=1
n=$(wc -l <"$tmp/files")
echo "deb_test: installed ${deb##*/} ($n files)"

# pkg-config finds it with no path given, and drops the system directories.
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
cflags=$(pkg-config --cflags shmkit) || die "pkg-config --cflags shmkit: not found after dpkg -i"
libs=$(pkg-config --libs shmkit)
[ -z "$(echo "$cflags" | tr -d ' ')" ] || bad "pkg-config --cflags shmkit gives '$cflags', want nothing (includedir /usr/include)"
[ "$(echo "$libs" | tr -s ' ' | sed 's/ $//')" = "-lshmkit" ] ||
	bad "pkg-config --libs shmkit gives '$libs', want '-lshmkit' (system libdir dropped)"

cat >"$tmp/prog.c" <<'EOF'
#include <shmkit/shmkit.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char name[64], out[16];
	snprintf(name, sizeof name, "/shmkit-deb-test-%d", (int)getpid());
	if (shmkit_version() != SHMKIT_VERSION)
		return 10;
	shmkit_blob *b;
	if (shmkit_blob_open(name, 16, 0600, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &b) < 0)
		return 11;
	int ok = shmkit_blob_write(b, "packaged", 9) == 0 &&
		 shmkit_blob_read(b, out, sizeof out, NULL) >= 9 && strcmp(out, "packaged") == 0;
	shmkit_blob_delete(b);
	shmkit_blob_close(b);
	if (!ok)
		return 12;
	printf("ok %s\n", shmkit_version_string());
	return 0;
}
EOF
# shellcheck disable=SC2086 # word lists
if quiet "$CC" -o "$tmp/prog" "$tmp/prog.c" $cflags $libs; then
	out=$("$tmp/prog" 2>&1)
	rc=$?
	case $rc:$out in
	0:ok\ *) echo "deb_test: pkg-config program against /usr: $out" ;;
	*) bad "the pkg-config program exited $rc: $out" ;;
	esac
	# The loader may name it through /lib, a link to /usr/lib on merged-/usr systems.
	so=$(ldd "$tmp/prog" 2>/dev/null | sed -n 's/.*libshmkit\.so\.0 => \([^ ]*\) .*/\1/p')
	case $(readlink -f "${so:-/nonexistent}") in
	/usr/lib/*) ;;
	*) bad "the program does not load libshmkit.so.0 from /usr/lib: '$so'" ;;
	esac
else
	bad "$CC prog.c $cflags $libs failed"
fi

# CMake finds the package under /usr with no prefix given.
mkdir -p "$tmp/consumer"
cp "$tmp/prog.c" "$tmp/consumer/prog.c"
cat >"$tmp/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(shmkit_deb_consumer C)
find_package(shmkit 0.2 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog PRIVATE shmkit::shmkit)
EOF
if quiet "$CMAKE" -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_C_COMPILER="$CC" &&
	quiet "$CMAKE" --build "$tmp/consumer/build"; then
	out=$("$tmp/consumer/build/prog" 2>&1) || bad "the find_package program failed: $out"
else
	bad "a CMake project did not find the installed package (find_package(shmkit 0.2))"
fi
/usr/bin/shmkit --help >/dev/null 2>&1 || bad "/usr/bin/shmkit --help failed"

dpkg_retry -r shmkit || die "dpkg -r shmkit"
installed=0
left=0
while read -r f; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		bad "left after dpkg -r: $f"
		left=$((left + 1))
	fi
done <"$tmp/files"
for d in /usr/include/shmkit /usr/share/doc/shmkit; do
	[ ! -e "$d" ] || bad "left after dpkg -r: $d"
done
if dpkg-query -W -f='${Status}' shmkit 2>/dev/null | grep -q ' installed$'; then
	bad "dpkg still lists shmkit after dpkg -r"
fi
dpkg -P shmkit >/dev/null 2>&1
[ "$left" -eq 0 ] && echo "deb_test: dpkg -r removed all $n files"

[ "$fail" -eq 0 ] || exit 1
echo "deb_test: ok"
exit 0
