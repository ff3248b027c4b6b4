"""Fixtures of the shmkit package's tests.

peer: the C program tests/peer.c, which uses the library directly (SHMKIT_PY_PEER
names one that ctest built; otherwise it is compiled here from the library's sources).
name: a fresh segment name (holding the pid), removed after the test whatever happened.
tool: the shmkit tool (SHMKIT_TOOL), for comparisons; tests needing it skip without.
"""
import itertools
import os
import re
import shutil
import subprocess
import sys
import zlib

import pytest

import shmkit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
_count = itertools.count()


@pytest.fixture(scope="session")
def peer(tmp_path_factory):
    path = os.environ.get("SHMKIT_PY_PEER")
    if path:
        return path
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not cc:
        pytest.skip("no C compiler to build the C peer (set SHMKIT_PY_PEER)")
    d = tmp_path_factory.mktemp("peer")
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        ver = re.search(r"project\(\s*shmkit\s+VERSION\s+(\d+)\.(\d+)\.(\d+)", f.read()).groups()
    with open(os.path.join(ROOT, "include", "shmkit", "version.h.in")) as f:
        text = f.read()
    for key, val in (("PROJECT_VERSION_MAJOR", ver[0]), ("PROJECT_VERSION_MINOR", ver[1]),
                     ("PROJECT_VERSION_PATCH", ver[2]), ("PROJECT_VERSION", ".".join(ver))):
        text = text.replace("@%s@" % key, val)
    os.makedirs(str(d / "inc" / "shmkit"))
    (d / "inc" / "shmkit" / "version.h").write_text(text)
    src = sorted(os.path.join(ROOT, "src", f) for f in os.listdir(os.path.join(ROOT, "src"))
                 if f.endswith(".c"))
    out = str(d / "peer")
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-O1", "-I" + os.path.join(ROOT, "include"),
                    "-I" + str(d / "inc"), os.path.join(HERE, "peer.c")] + src +
                   ["-o", out, "-lpthread", "-lrt"], check=True)
    return out


@pytest.fixture
def name():
    n = "/shmkit-py-%d-%d" % (os.getpid(), next(_count))
    yield n
    for sysv in (False, True):
        try:
            shmkit.unlink(n, sysv=sysv)
        except OSError:
            pass


@pytest.fixture
def tool():
    path = os.environ.get("SHMKIT_TOOL")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("SHMKIT_TOOL is not set to the shmkit tool")
    return path


# The message format of peer.c: u32 seq, u32 length, u32 CRC-32 of the rest, bytes.
def make_msg(seq, rng):
    n = rng.randint(12, 3000)
    body = bytes(rng.getrandbits(8) for _ in range(n - 12))
    return seq.to_bytes(4, "little") + n.to_bytes(4, "little") + \
        zlib.crc32(body).to_bytes(4, "little") + body


def check_msg(msg, seq):
    msg = bytes(msg)
    assert len(msg) >= 12, "message %d: %d bytes" % (seq, len(msg))
    assert int.from_bytes(msg[0:4], "little") == seq, "message %d out of order" % seq
    assert int.from_bytes(msg[4:8], "little") == len(msg), "message %d: length" % seq
    assert int.from_bytes(msg[8:12], "little") == zlib.crc32(msg[12:]), \
        "message %d: checksum" % seq


def run_peer(peer, *args, **kw):
    return subprocess.Popen([peer] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def scale(n):
    return int(n * float(os.environ.get("SHMKIT_TEST_SCALE", "1")))


