"""python -m shmkit.bench: shmkit channels against what Python ships for moving data
between processes, in one run.

Two workloads, each a stream from a child process to this one:
  - 64-byte messages, as many per second as each mechanism moves;
  - 1 MiB numpy arrays (float64), received into an array.
Four mechanisms, each used the fastest way it offers:
  - shmkit.Channel: send(); recv() (64 B) or recv_into(array) (1 MiB); and at 1 MiB
    also peek(), the array read in place (a numpy view of the message, no copy out),
    and the copying calls in sleep mode (set_spin(0): no spinning before a wait);
  - multiprocessing.Pipe: send_bytes(); recv_bytes() or recv_bytes_into(array);
  - multiprocessing.Queue: put(); get() (pickled, as Queue always does);
  - multiprocessing.shared_memory + Lock: one slot with a full/empty flag, both guarded
    by a multiprocessing.Lock, each side polling the flag (yielding the CPU) - the
    textbook use of those two.
Rounds are interleaved (every case once per round, in turn), so a machine that gets
busier part-way slows every case alike; each case's figure is its median over the
rounds. A case's count is calibrated once, from a short first run, to last about
--seconds. The clock runs from the first message received to the last, so process
start-up is not counted. Each message is checked (its sequence number, and for arrays
one element of each page) so that nothing is skipped.

Targets (issue 11): shmkit >= 10x Pipe's messages/s at 64 B, >= 5x at 1 MiB, judged on
the copying calls (send/recv, send/recv_into); printed as PASS or MISS lines. Figures depend on the machine and its load: a ratio from one run.
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import struct
import sys
import time

import shmkit

SMALL = 64
BIG = 1 << 20
TARGETS = {SMALL: 10.0, BIG: 5.0}


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# 64 B: 1024 distinct messages, sent in turn and compared whole on arrival, so that
# making and checking a message costs every mechanism the same, and little.
_MASK = 1023
_SMALL_MSGS = [struct.pack("<Q", i) + bytes([i & 0xff]) * (SMALL - 8) for i in range(_MASK + 1)]


def _small(i):
    return _SMALL_MSGS[i & _MASK]


def _big_payload():
    import numpy as np
    return np.zeros(BIG // 8, dtype=np.float64)


def _stamp(a, seq):
    a[::512] = seq  # one element per 4 KiB page carries the sequence number
    return a


def _check_big(a, seq):
    if a.shape != (BIG // 8,) or a[0] != seq or a[-512] != seq:
        raise RuntimeError("array %d arrived wrong" % seq)


def _bad(seq):
    raise RuntimeError("message %d arrived wrong" % seq)


def _out_array():
    import numpy as np
    return np.empty(BIG // 8, dtype=np.float64)


def _first(recv, size, takes_buffer=True):
    """Receives message 0 (the clock starts then: process start-up is not timed)."""
    if size == SMALL:
        if recv() != _small(0):
            _bad(0)
    elif takes_buffer:
        out = _out_array()
        recv(out)
        _check_big(out, 0)
    else:
        _check_big(recv(), 0)
    return time.perf_counter()


# ---- shmkit ----

def _shmkit_child(name, size, n, spin=None):
    ch = shmkit.Channel(name, "producer")
    if spin is not None:
        ch.set_spin(spin)
    send = ch.send
    if size == SMALL:
        for i in range(n):
            send(_small(i))
    else:
        a = _big_payload()
        for i in range(n):
            send(_stamp(a, i))
    ch.close()


def run_shmkit(size, n, spin=None):
    name = "/shmkit-pybench-%d" % os.getpid()
    cap = 1 << 20 if size == SMALL else 4 << 20  # room for several messages either way
    ch = shmkit.Channel(name, "consumer", cap, create=True)
    if spin is not None:
        ch.set_spin(spin)
    try:
        p = mp.get_context("fork").Process(target=_shmkit_child, args=(name, size, n, spin))
        p.start()
        t0 = _first(ch.recv if size == SMALL else ch.recv_into, size)
        if size == SMALL:
            recv = ch.recv
            for i in range(1, n):
                if recv() != _small(i):
                    _bad(i)
        else:
            out = _out_array()
            for i in range(1, n):
                ch.recv_into(out)
                _check_big(out, i)
        t1 = time.perf_counter()
        p.join()
    finally:
        ch.close()
        shmkit.unlink(name)
    return (n - 1) / (t1 - t0)


def run_shmkit_sleep(size, n):
    """Sleep mode (set_spin(0) on both ends): waits sleep at once instead of spinning,
    which a machine with fewer free CPUs than spinning processes may prefer."""
    return run_shmkit(size, n, spin=0)


def run_shmkit_peek(size, n):
    """1 MiB, received in place: a numpy view of the message, no copy out."""
    import numpy as np
    name = "/shmkit-pybench-%d" % os.getpid()
    ch = shmkit.Channel(name, "consumer", 4 << 20, create=True)
    try:
        p = mp.get_context("fork").Process(target=_shmkit_child, args=(name, size, n))
        p.start()
        for i in range(n):
            with ch.peek() as view:
                a = np.frombuffer(view, dtype=np.float64)
                _check_big(a, i)
                del a
            if i == 0:
                t0 = time.perf_counter()
        t1 = time.perf_counter()
        p.join()
    finally:
        ch.close()
        shmkit.unlink(name)
    return (n - 1) / (t1 - t0)


# ---- multiprocessing.Pipe ----

def _pipe_child(conn, size, n):
    send = conn.send_bytes
    if size == SMALL:
        for i in range(n):
            send(_small(i))
    else:
        a = _big_payload()
        for i in range(n):
            send(_stamp(a, i))
    conn.close()


def run_pipe(size, n):
    ctx = mp.get_context("fork")
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_pipe_child, args=(w, size, n))
    p.start()
    w.close()
    t0 = _first(r.recv_bytes if size == SMALL else r.recv_bytes_into, size)
    if size == SMALL:
        recv = r.recv_bytes
        for i in range(1, n):
            if recv() != _small(i):
                _bad(i)
    else:
        out = _out_array()
        for i in range(1, n):
            r.recv_bytes_into(out)
            _check_big(out, i)
    t1 = time.perf_counter()
    p.join()
    r.close()
    return (n - 1) / (t1 - t0)


# ---- multiprocessing.Queue ----

def _queue_child(q, size, n):
    if size == SMALL:
        for i in range(n):
            q.put(_small(i))
    else:
        a = _big_payload()
        for i in range(n):
            # put() pickles later, in a feeder thread: each array must be its own.
            q.put(_stamp(a, i).copy())
    q.close()
    q.join_thread()


def run_queue(size, n):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_queue_child, args=(q, size, n))
    p.start()
    t0 = _first(q.get, size, takes_buffer=False)
    get = q.get
    for i in range(1, n):
        if size == SMALL:
            if get() != _small(i):
                _bad(i)
        else:
            _check_big(get(), i)
    t1 = time.perf_counter()
    p.join()
    return (n - 1) / (t1 - t0)


# ---- multiprocessing.shared_memory + Lock ----

def _shm_child(shm_name, lock, size, n):
    from multiprocessing import shared_memory
    import numpy as np
    shm = shared_memory.SharedMemory(name=shm_name)
    flag = shm.buf[:1]
    data = shm.buf[8:8 + size]
    dst = None if size == SMALL else np.frombuffer(data, dtype=np.float64)
    a = None if size == SMALL else _big_payload()
    try:
        for i in range(n):
            msg = _small(i) if size == SMALL else _stamp(a, i)
            while True:
                with lock:
                    if flag[0] == 0:
                        if size == SMALL:
                            data[:] = msg
                        else:
                            np.copyto(dst, msg)
                        flag[0] = 1
                        break
                os.sched_yield()
    finally:
        del flag, data, dst
        shm.close()


def run_shm_lock(size, n):
    from multiprocessing import shared_memory
    import numpy as np
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    shm = shared_memory.SharedMemory(create=True, size=8 + size)
    try:
        flag = shm.buf[:1]
        data = shm.buf[8:8 + size]
        flag[0] = 0
        p = ctx.Process(target=_shm_child, args=(shm.name, lock, size, n))
        p.start()
        src = None if size == SMALL else np.frombuffer(data, dtype=np.float64)
        out = None if size == SMALL else _out_array()
        for i in range(n):
            while True:
                with lock:
                    if flag[0] == 1:
                        if size == SMALL:
                            got = bytes(data)
                        else:
                            np.copyto(out, src)
                            got = out
                        flag[0] = 0
                        break
                os.sched_yield()
            if size == SMALL:
                if got != _small(i):
                    _bad(i)
            else:
                _check_big(got, i)
            if i == 0:
                t0 = time.perf_counter()
        t1 = time.perf_counter()
        p.join()
        del flag, data, src
    finally:
        shm.close()
        shm.unlink()
    return (n - 1) / (t1 - t0)


# (label, function, sizes). The targets are judged on shmkit.Channel, the copying
# calls; "peek" shows the zero-copy receive beside them.
CASES = [
    ("shmkit.Channel", run_shmkit, (SMALL, BIG)),
    ("shmkit.Channel peek", run_shmkit_peek, (BIG,)),
    ("shmkit.Channel spin 0", run_shmkit_sleep, (BIG,)),
    ("multiprocessing.Pipe", run_pipe, (SMALL, BIG)),
    ("multiprocessing.Queue", run_queue, (SMALL, BIG)),
    ("shared_memory + Lock", run_shm_lock, (SMALL, BIG)),
]


def _fmt_size(size):
    return "64 B" if size == SMALL else "1 MiB"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m shmkit.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--seconds", type=float, default=0.3,
                    help="about how long each case runs per round (default 0.3)")
    ap.add_argument("--quick", action="store_true",
                    help="one short round: checks that everything runs; figures are rough")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 0.05
    try:
        import numpy  # noqa: F401
    except ImportError:
        print("python -m shmkit.bench: numpy is needed for the 1 MiB case", file=sys.stderr)
        return 2

    sizes = (SMALL, BIG)
    # Calibration: a short run of each case gives the count for about --seconds.
    count = {}
    for size in sizes:
        for label, fn, only in CASES:
            if size not in only:
                continue
            probe = 2000 if size == SMALL else 50
            rate = fn(size, probe)
            count[(size, label)] = max(int(rate * args.seconds), probe)
    rates = {k: [] for k in count}
    for _ in range(args.rounds):
        for size in sizes:
            for label, fn, only in CASES:
                if size not in only:
                    continue
                rates[(size, label)].append(fn(size, count[(size, label)]))
    med = {k: statistics.median(v) for k, v in rates.items()}

    verdicts = []
    for size in sizes:
        ratio = med[(size, "shmkit.Channel")] / med[(size, "multiprocessing.Pipe")]
        verdicts.append((size, ratio, ratio >= TARGETS[size]))

    info = {"cpu": _cpu(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "shmkit": shmkit.library_version, "rounds": args.rounds}
    if args.json:
        print(json.dumps({
            "machine": info,
            "cases": [{"size": size, "mechanism": label, "msgs_per_s": med[(size, label)],
                       "mb_per_s": med[(size, label)] * size / 1e6,
                       "rounds": rates[(size, label)]} for size in sizes for label, _, only in CASES
                      if size in only],
            "acceptance": [{"what": "shmkit vs Pipe, %s messages/s" % _fmt_size(s),
                            "ratio": r, "target": TARGETS[s], "pass": ok}
                           for s, r, ok in verdicts],
        }, indent=1))
        return 0
    print("shmkit.bench: %s (%d CPUs), Python %s, shmkit %s; median of %d interleaved rounds"
          % (info["cpu"], info["cpus"], info["python"], info["shmkit"], args.rounds))
    print("%-6s %-24s %14s %12s %9s" % ("size", "mechanism", "messages/s", "MB/s", "x Pipe"))
    for size in sizes:
        pipe = med[(size, "multiprocessing.Pipe")]
        for label, _, only in CASES:
            if size not in only:
                continue
            r = med[(size, label)]
            print("%-6s %-24s %14.0f %12.1f %8.2fx" % (_fmt_size(size), label, r, r * size / 1e6,
                                                       r / pipe))
    for size, ratio, ok in verdicts:
        print("%s shmkit.Channel %s messages/s: %.1fx multiprocessing.Pipe (target >= %gx)"
              % ("PASS" if ok else "MISS", _fmt_size(size), ratio, TARGETS[size]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
