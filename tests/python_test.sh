#!/bin/sh
# python_test.sh BUILD_DIR SOURCE_DIR TOOL PEER [SANITIZER]: the Python package's pytest
# suite (python/tests), with Debian's python3 as the reference interpreter.
#  - Installs what it needs when missing (root with apt-get): python3-dev,
#    python3-pytest, python3-numpy, python3-setuptools, python3-wheel, python3-venv;
#    otherwise skips, saying what is missing.
#  - Builds the extension with setuptools into BUILD_DIR/python (nothing is written
#    into the sources), then runs pytest on that build, with PEER (the C side of the
#    interoperation tests, python/tests/peer.c) and TOOL (for `ls`).
#  - Skipped in sanitizer builds: a library built with ASan or TSan cannot be loaded
#    into a python that is not, and setuptools would build the extension without the
#    sanitizer anyway, so the release build's run is the one that counts.
# SHMKIT_PYTHON chooses another interpreter. Exit 0 pass, 1 fail, 77 skip.
set -u
build=${1:?usage: python_test.sh BUILD_DIR SOURCE_DIR TOOL PEER [SANITIZER]}
src=${2:?}
tool=${3:?}
peer=${4:?}
sanitizer=${5:-}

if [ -n "$sanitizer" ]; then
	echo "python_test: skipped: sanitizer build (SHMKIT_SANITIZE=$sanitizer): a sanitized library cannot be loaded into python, which is not built with the sanitizer (the release build runs this suite)"
	exit 77
fi
if [ -n "${SHMKIT_PYTHON:-}" ]; then
	py=$SHMKIT_PYTHON
elif [ -x /usr/bin/python3 ] || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }; then
	py=/usr/bin/python3 # Debian's, not one a version manager puts first on PATH
else
	py=python3
fi

# What is missing, as Debian package names.
missing() {
	"$py" -c 'import sys' 2>/dev/null || { echo "python3 python3-dev python3-pytest python3-numpy python3-setuptools python3-wheel python3-venv"; return; }
	m=""
	"$py" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || m="$m python3-dev"
	"$py" -c 'import pytest' 2>/dev/null || m="$m python3-pytest"
	"$py" -c 'import numpy' 2>/dev/null || m="$m python3-numpy"
	"$py" -c 'import setuptools' 2>/dev/null || m="$m python3-setuptools"
	"$py" -c 'import wheel' 2>/dev/null || m="$m python3-wheel"
	"$py" -c 'import ensurepip, venv' 2>/dev/null || m="$m python3-venv"
	echo $m
}

need=$(missing)
if [ -n "$need" ] && [ "$py" = /usr/bin/python3 ] && [ "$(id -u)" = 0 ] &&
	command -v apt-get >/dev/null 2>&1; then
	echo "python_test: installing $need"
	mkdir -p "$build/python"
	log="$build/python/apt.log"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 $need >"$log" 2>&1 ||
		{ apt-get update -q >>"$log" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
				$need >>"$log" 2>&1; } || { tail -5 "$log"; }
	need=$(missing)
fi
if [ -n "$need" ]; then
	echo "python_test: skipped: $py lacks what these Debian packages bring: $need (run as root with apt-get, or install them)"
	exit 77
fi

out="$build/python"
mkdir -p "$out"
echo "python_test: building the extension with $py ($("$py" -c 'import platform; print(platform.python_version())'))"
if ! (cd "$src/python" && PYTHONDONTWRITEBYTECODE=1 "$py" setup.py -q build \
	--build-base "$out/build" --build-lib "$out/lib" >"$out/build.log" 2>&1); then
	tail -40 "$out/build.log"
	echo "python_test: FAIL: the extension did not build (log: $out/build.log)"
	exit 1
fi
cd "$out" || exit 1
PYTHONPATH="$out/lib" PYTHONDONTWRITEBYTECODE=1 SHMKIT_PY_PEER="$peer" SHMKIT_TOOL="$tool" \
	"$py" -m pytest -q -p no:cacheprovider "$src/python/tests"
rc=$?
[ $rc = 0 ] && echo "python_test: ok"
[ $rc = 0 ] || echo "python_test: FAIL: pytest exited $rc"
[ $rc = 0 ] || exit 1
