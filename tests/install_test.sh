#!/bin/sh
# install_test.sh BUILD_DIR SRC_DIR: install the build into a fresh prefix, check the
# installed files, then build and run a consumer program three ways: with
# `pkg-config --cflags --libs shmkit` (shared), with `pkg-config --static` against
# libshmkit.a, and as a CMake project using find_package(shmkit). Then the uninstall
# target removes every file the manifest lists, and the directories of shmkit's own;
# last, an install staged with DESTDIR puts everything under DESTDIR, names only the
# prefix in shmkit.pc, and uninstalls with the same DESTDIR.
# Exit 0 pass, 1 fail, 77 skip (sanitizer build: the installed library would need the
# sanitizer runtime). Environment: CMAKE (default cmake), CC (default cc).
set -u
build=${1:?usage: install_test.sh BUILD_DIR SRC_DIR}
src=${2:?usage: install_test.sh BUILD_DIR SRC_DIR}
CMAKE=${CMAKE:-cmake}
CC=${CC:-cc}

if grep -Eq '^SHMKIT_SANITIZE:STRING=(address|thread)$' "$build/CMakeCache.txt" 2>/dev/null; then
	echo "install_test: sanitizer build: skipped"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-install-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
prefix=$tmp/prefix
fail=0
bad() {
	echo "install_test: FAIL: $*" >&2
	fail=1
}
die() {
	echo "install_test: FAIL: $*" >&2
	exit 1
}
# Run a command quietly; on failure show its output.
quiet() {
	log=$tmp/log
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		return 1
	fi
}

quiet "$CMAKE" --install "$build" --prefix "$prefix" || die "cmake --install $build --prefix $prefix"

# GNUInstallDirs picks lib, lib64 or lib/<multiarch>.
libdir=
for d in lib lib64 "lib/$($CC -print-multiarch 2>/dev/null)"; do
	if [ -f "$prefix/$d/libshmkit.so" ]; then
		libdir=$prefix/$d
		break
	fi
done
[ -n "$libdir" ] || die "no libshmkit.so under $prefix/lib*: $(cd "$prefix" && find . -name 'libshmkit*')"

for f in "$libdir/libshmkit.so" "$libdir/libshmkit.so.0" "$libdir/libshmkit.a" \
	"$prefix/include/shmkit/shmem.h" "$prefix/include/shmkit/shmfile.h" \
	"$prefix/include/shmkit/shmkit.h" "$prefix/include/shmkit/version.h" \
	"$libdir/pkgconfig/shmkit.pc" "$libdir/cmake/shmkit/shmkitConfig.cmake" \
	"$libdir/cmake/shmkit/shmkitConfigVersion.cmake"; do
	[ -f "$f" ] || bad "not installed: ${f#"$prefix"/}"
done
# Every public header of the source tree is installed; internal ones stay private.
for h in "$src"/include/shmkit/*.h; do
	# bridge.h comes with libshmkit_bridge, built only where libnats was found.
	case ${h##*/} in bridge.h) [ -f "$libdir/libshmkit_bridge.a" ] || continue ;; esac
	[ -f "$prefix/include/shmkit/${h##*/}" ] || bad "public header not installed: ${h##*/}"
done
if [ -e "$prefix/include/shmkit/internal.h" ] || [ -e "$prefix/include/internal.h" ]; then
	bad "internal.h was installed"
fi
# Alias man pages are links to their family's page, and stay so once installed.
alias_page=$prefix/share/man/man3/shmkit_seg_close.3
if [ ! -L "$alias_page" ] || [ ! -f "$alias_page" ]; then
	bad "share/man/man3/shmkit_seg_close.3 is not a link to an installed page"
fi
# The .pc names this prefix, absolute (pkg-config can then drop system directories).
pcprefix=$(sed -n 's/^prefix=//p' "$libdir/pkgconfig/shmkit.pc")
[ "$pcprefix" = "$prefix" ] || bad "shmkit.pc: prefix=$pcprefix, want $prefix"

# The consumer: both seed APIs, and the header and library versions agree.
cat >"$tmp/prog.c" <<'EOF'
#include <shmkit/shmem.h>
#include <shmkit/shmfile.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char path[64], name[64], buf[32] = "installed", out[32];
	snprintf(path, sizeof path, "/tmp/shmkit-install-test-%d", (int)getpid());
	snprintf(name, sizeof name, "/shmkit-install-test-%d/stream", (int)getpid());
	if (shmkit_version() != SHMKIT_VERSION)
		return 10;
	shmem_t *h = shmem_open(path, sizeof buf);
	if (!h)
		return 11;
	if (shmem_write(&h, buf, sizeof buf) != 0 || shmem_read(&h, out, sizeof out) != 0 ||
	    memcmp(buf, out, sizeof buf) != 0)
		return 12;
	if (shmem_delete(&h) != 0 || h != NULL)
		return 13;
	unlink(path);
	FILE *f = fshm_open(name, 0600, FSHM_OWNER);
	if (!f)
		return 14;
	FILE *g = fshm_open(name, 0, FSHM_GUEST);
	if (!g || fputs("hello", f) < 0 || fclose(g) != 0)
		return 15;
	if (fshm_force_destroy(name) != 0)
		return 16;
	errno = 0;
	if (fshm_open(name, 0, FSHM_GUEST) != NULL || errno != ENOENT)
		return 17;
	fclose(f);
	printf("ok %s\n", shmkit_version_string());
	return 0;
}
EOF

# Run a built consumer and check it printed "ok VERSION".
check_run() { # check_run WHAT PROGRAM [LD_LIBRARY_PATH]
	out=$(LD_LIBRARY_PATH=${3:-} "$2" 2>&1)
	rc=$?
	case $rc:$out in
	0:ok\ *) echo "install_test: $1: $out" ;;
	*) bad "$1: exit $rc, output: $out" ;;
	esac
}

pcdir=$libdir/pkgconfig
if command -v pkg-config >/dev/null 2>&1; then
	pc() { PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR=$pcdir pkg-config "$@" shmkit; }
	pc --exists || die "pkg-config does not find shmkit in $pcdir"
	# The .pc must describe this prefix, not the one configured at build time.
	pcprefix=$(pc --variable=prefix)
	inc=$(pc --variable=includedir)
	lib=$(pc --variable=libdir)
	[ -f "$inc/shmkit/shmem.h" ] ||
		bad "shmkit.pc: includedir '$inc' (prefix '$pcprefix') does not hold the installed headers (installed under $prefix)"
	[ -f "$lib/libshmkit.so" ] ||
		bad "shmkit.pc: libdir '$lib' (prefix '$pcprefix') does not hold the installed library (installed under $prefix)"
	cflags=$(pc --cflags)
	libs=$(pc --libs)
	slibs=$(pc --static --libs)
	via=pkg-config
else
	# No pkg-config: read the flags from the .pc file ourselves.
	echo "install_test: pkg-config not found: reading Cflags/Libs from shmkit.pc with sed"
	# pcvar NAME: the variable's value with the variables it may use expanded.
	pcvar() {
		v=$(sed -n "s/^$1=//p" "$pcdir/shmkit.pc")
		for _ in 1 2 3; do
			v=$(printf '%s' "$v" | sed "s|\${pcfiledir}|$pcdir|g; s|\${prefix}|$p|g;
				s|\${exec_prefix}|$p|g")
		done
		printf '%s' "$v"
	}
	p=
	p=$(pcvar prefix)
	inc=$(pcvar includedir)
	lib=$(pcvar libdir)
	[ -f "$inc/shmkit/shmem.h" ] || bad "shmkit.pc: includedir '$inc' does not hold the installed headers"
	[ -f "$lib/libshmkit.so" ] || bad "shmkit.pc: libdir '$lib' does not hold the installed library"
	cflags="-I$inc"
	libs="-L$lib -lshmkit"
	slibs="-L$lib -lshmkit $(sed -n 's/^Libs.private: *//p' "$pcdir/shmkit.pc")"
	via="shmkit.pc (sed)"
fi

# Shared: links libshmkit.so.0 and runs with it.
# shellcheck disable=SC2086 # the flags are word lists
if quiet "$CC" -o "$tmp/prog" "$tmp/prog.c" $cflags $libs; then
	readelf -d "$tmp/prog" 2>/dev/null | grep -q 'NEEDED.*\[libshmkit\.so\.0\]' ||
		bad "$via shared build does not need libshmkit.so.0"
	check_run "$via, shared" "$tmp/prog" "$libdir"
else
	bad "$via shared build failed: $CC prog.c $cflags $libs"
fi

# Static: the same flags with --static, libshmkit.a named explicitly (a bare -lshmkit
# would pick the .so next to it); runs without the shared library.
sflags=
for f in $slibs; do
	[ "$f" = -lshmkit ] && f=-l:libshmkit.a
	sflags="$sflags $f"
done
# shellcheck disable=SC2086
if quiet "$CC" -o "$tmp/prog_static" "$tmp/prog.c" $cflags $sflags; then
	if readelf -d "$tmp/prog_static" 2>/dev/null | grep -q 'NEEDED.*libshmkit'; then
		bad "$via static build still needs the shared library"
	fi
	check_run "$via, static" "$tmp/prog_static"
else
	bad "$via static build failed: $CC prog.c $cflags $sflags"
fi

# The bridge (built where libnats is): a program linked with
# `pkg-config --libs shmkit-bridge` (the static libshmkit_bridge.a, then libshmkit and
# libnats) checks a subject and refuses bad options.
if [ -f "$libdir/libshmkit_bridge.a" ]; then
	if [ ! -f "$pcdir/shmkit-bridge.pc" ]; then
		bad "libshmkit_bridge.a installed without shmkit-bridge.pc"
	elif ! command -v pkg-config >/dev/null 2>&1; then
		echo "install_test: pkg-config not found: the bridge consumer is not built"
	else
		cat >"$tmp/bprog.c" <<'EOF2'
#include <errno.h>
#include <stdio.h>
#include <shmkit/bridge.h>
#include <shmkit/shmkit.h>
int main(void)
{
	struct shmkit_bridge_opts o = {0};
	shmkit_bridge *b = NULL;
	if (!shmkit_bridge_valid_subject("a.b.>", 1) || shmkit_bridge_valid_subject("a..b", 0))
		return 1;
	if (shmkit_bridge_open(&o, &b) != -EINVAL || b != NULL)
		return 2;
	printf("ok %s\n", shmkit_version_string());
	return 0;
}
EOF2
		# PKG_CONFIG_PATH comes before the system's directories, where libnats.pc is.
		bflags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs shmkit-bridge) ||
			bad "pkg-config does not resolve shmkit-bridge"
		# shellcheck disable=SC2086 # the flags are word lists
		if quiet "$CC" -o "$tmp/bprog" "$tmp/bprog.c" $bflags; then
			check_run "pkg-config shmkit-bridge" "$tmp/bprog" "$libdir"
		else
			bad "bridge consumer build failed: $CC bprog.c $bflags"
		fi
	fi
fi

# CMake: find_package(shmkit) from the prefix, both exported targets.
mkdir -p "$tmp/consumer"
cp "$tmp/prog.c" "$tmp/consumer/prog.c"
cat >"$tmp/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(shmkit_consumer C)
find_package(shmkit 0.2 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog PRIVATE shmkit::shmkit)
add_executable(prog_static prog.c)
target_link_libraries(prog_static PRIVATE shmkit::shmkit_static)
EOF
if quiet "$CMAKE" -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Release &&
	quiet "$CMAKE" --build "$tmp/consumer/build"; then
	check_run "find_package, shmkit::shmkit" "$tmp/consumer/build/prog" "$libdir"
	check_run "find_package, shmkit::shmkit_static" "$tmp/consumer/build/prog_static"
else
	bad "CMake consumer (find_package(shmkit), CMAKE_PREFIX_PATH=$prefix) did not build"
fi

# Uninstall: every file of the manifest gone, links included, and shmkit's own
# directories; nothing else of the prefix is touched.
manifest=$build/install_manifest.txt
[ -s "$manifest" ] || die "no $manifest after the install"
cp "$manifest" "$tmp/manifest"
mkdir -p "$prefix/share/keep" && : >"$prefix/share/keep/file"
quiet "$CMAKE" --build "$build" --target uninstall || bad "the uninstall target failed"
left=0
while read -r f; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		bad "left after uninstall: $f"
		left=$((left + 1))
	fi
done <"$tmp/manifest"
for d in include/shmkit "${libdir#"$prefix"/}/cmake/shmkit" share/doc/shmkit; do
	[ ! -e "$prefix/$d" ] || bad "directory left after uninstall: $d"
done
[ -f "$prefix/share/keep/file" ] || bad "uninstall removed a file it had not installed"
n=$(wc -l <"$tmp/manifest")
[ "$left" -eq 0 ] && echo "install_test: uninstall removed all $n files of the manifest"

# DESTDIR: staged under $tmp/stage with the prefix /opt/shmkit-install-test-PID.
stage=$tmp/stage
dprefix=/opt/shmkit-install-test-$$
if [ -e "$dprefix" ]; then
	bad "$dprefix exists before the staged install"
elif quiet env DESTDIR="$stage" "$CMAKE" --install "$build" --prefix "$dprefix"; then
	[ ! -e "$dprefix" ] || bad "DESTDIR install wrote outside DESTDIR: $dprefix exists"
	while read -r f; do
		case $f in
		"$dprefix"/*) [ -e "$stage$f" ] || [ -L "$stage$f" ] || bad "DESTDIR: $stage$f missing" ;;
		*) bad "DESTDIR: the manifest lists $f, outside the prefix $dprefix" ;;
		esac
	done <"$build/install_manifest.txt"
	spc=$(find "$stage" -name shmkit.pc | head -n 1)
	if [ -z "$spc" ]; then
		bad "DESTDIR: no shmkit.pc under $stage"
	else
		grep -qx "prefix=$dprefix" "$spc" || bad "DESTDIR: shmkit.pc says $(grep '^prefix=' "$spc"), want prefix=$dprefix"
		! grep -q "$stage" "$spc" || bad "DESTDIR: shmkit.pc names the staging directory"
	fi
	cp "$build/install_manifest.txt" "$tmp/manifest"
	quiet env DESTDIR="$stage" "$CMAKE" --build "$build" --target uninstall || bad "DESTDIR uninstall failed"
	left=$(find "$stage" ! -type d | wc -l)
	if [ "$left" -eq 0 ]; then
		echo "install_test: DESTDIR: staged under DESTDIR only, shmkit.pc names $dprefix, uninstalled"
	else
		bad "DESTDIR uninstall left $left files: $(find "$stage" ! -type d | head -n 5)"
	fi
else
	bad "DESTDIR=$stage cmake --install --prefix $dprefix failed"
fi

[ "$fail" -eq 0 ] || exit 1
echo "install_test: ok (prefix layout: ${libdir#"$prefix"/})"
exit 0
