#!/usr/bin/env python3
"""The channel's descriptor in an event loop, as a Python user would use it.

usage: asyncio_chan.py LIBSHMKIT PRODUCER [SANITIZER] [COUNT]

Loads LIBSHMKIT (libshmkit.so) with ctypes, creates a channel and opens its consumer,
then starts PRODUCER (test_waiting --produce NAME COUNT), a C process that sends COUNT
messages of random sizes, each carrying its number, its length and a CRC-32 of the
rest, with pauses, and closes. asyncio's loop.add_reader() watches shmkit_chan_fd();
each callback receives ONE message with timeout 0, so the loop comes back only if the
descriptor stays readable while messages wait (level-triggered), as asyncio's
selector expects. Checks every message, in order, then end-of-stream.

Exit 0 pass, 1 fail, 77 skip (a ThreadSanitizer build, whose runtime cannot be
loaded into python).
"""
import asyncio
import ctypes
import errno
import os
import struct
import subprocess
import sys
import zlib

CONSUMER = 2
SEG_CREATE = 1
TIMEOUT_S = 60


def fail(msg):
    print("asyncio_chan: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    lib = ctypes.CDLL(path)
    vp = ctypes.c_void_p
    lib.shmkit_chan_open.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_size_t,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(vp)]
    lib.shmkit_chan_open.restype = ctypes.c_int
    lib.shmkit_chan_fd.argtypes = [vp]
    lib.shmkit_chan_fd.restype = ctypes.c_int
    lib.shmkit_chan_recv.argtypes = [vp, vp, ctypes.c_size_t, ctypes.c_int64]
    lib.shmkit_chan_recv.restype = ctypes.c_ssize_t
    lib.shmkit_chan_close.argtypes = [vp]
    lib.shmkit_chan_close.restype = ctypes.c_int
    lib.shmkit_seg_unlink.argtypes = [ctypes.c_char_p, ctypes.c_uint]
    lib.shmkit_seg_unlink.restype = ctypes.c_int
    lib.shmkit_strerror.argtypes = [ctypes.c_int]
    lib.shmkit_strerror.restype = ctypes.c_char_p
    return lib


async def receive(lib, ch, fd, count, proc):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    buf = ctypes.create_string_buffer(4096)
    st = {"next": 0, "callbacks": 0, "empty": 0}

    def finish(exc=None):
        loop.remove_reader(fd)
        if not done.done():
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)

    def on_readable():
        st["callbacks"] += 1
        n = lib.shmkit_chan_recv(ch, buf, len(buf), 0)
        if n == -errno.EAGAIN:
            st["empty"] += 1  # a wake-up that found nothing: allowed, not required
            return
        if n == 0:
            finish()
            return
        if n < 0:
            finish(RuntimeError("recv: " + lib.shmkit_strerror(int(n)).decode()))
            return
        m = buf.raw[:n]
        seq, length = struct.unpack_from("<QI", m)
        (crc,) = struct.unpack_from("<I", m, n - 4)
        if seq != st["next"] or length != n or zlib.crc32(m[:n - 4]) != crc:
            finish(RuntimeError("message %d: seq %d, length %d of %d, crc %08x of %08x"
                                % (st["next"], seq, length, n, crc, zlib.crc32(m[:n - 4]))))
            return
        st["next"] += 1

    def watch_producer():
        # A producer that failed sends nothing: say so rather than time out.
        rc = proc.poll()
        if rc is not None and rc != 0:
            finish(RuntimeError("the producer exited with %d" % rc))
        elif not done.done():
            loop.call_later(0.2, watch_producer)

    loop.add_reader(fd, on_readable)
    watch_producer()
    try:
        await asyncio.wait_for(done, TIMEOUT_S)
    except asyncio.TimeoutError:
        loop.remove_reader(fd)
        fail("no callback for %d s at message %d of %d: the descriptor went quiet"
             % (TIMEOUT_S, st["next"], count))
    if st["next"] != count:
        fail("end-of-stream after %d of %d messages" % (st["next"], count))
    return st


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 1
    libpath, producer = sys.argv[1], sys.argv[2]
    sanitizer = sys.argv[3] if len(sys.argv) > 3 else ""
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
    if sanitizer == "thread":
        print("asyncio_chan: skipped: a ThreadSanitizer library cannot be loaded into python")
        return 77
    lib = load(libpath)
    name = ("/shmkit-test-%d-asyncio" % os.getpid()).encode()
    ch = ctypes.c_void_p()
    r = lib.shmkit_chan_open(name, CONSUMER, 1 << 16, 0, SEG_CREATE, ctypes.byref(ch))
    if r != 0:
        fail("shmkit_chan_open: " + lib.shmkit_strerror(r).decode())
    proc = None
    try:
        fd = lib.shmkit_chan_fd(ch)
        if fd < 0:
            fail("shmkit_chan_fd: " + lib.shmkit_strerror(fd).decode())
        proc = subprocess.Popen([producer, "--produce", name.decode(), str(count)])
        try:
            st = asyncio.run(receive(lib, ch, fd, count, proc))
        except RuntimeError as e:
            fail(str(e))
        rc = proc.wait(timeout=TIMEOUT_S)
        proc = None
        if rc != 0:
            fail("the producer exited with %d" % rc)
        print("asyncio_chan: %d messages checked, %d callbacks (%d found nothing)"
              % (count, st["callbacks"], st["empty"]))
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        lib.shmkit_chan_close(ch)
        lib.shmkit_seg_unlink(name, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
