"""Segments through the buffer protocol: numpy arrays over shared memory with no copy,
checked by the C side."""
import zlib

import numpy as np
import pytest

import shmkit
from conftest import finish, run_peer


def c_sum(peer, name, *mode):
    mode = mode or ("seg-sum",)
    rc, out, err = finish(run_peer(peer, mode[0], name, *mode[1:]))
    assert rc == 0, err
    size, crc = out.split()
    return int(size), int(crc)


def test_numpy_writes_c_reads(peer, name):
    n = 1 << 20
    with shmkit.Segment(name, n, create=True) as seg:
        a = np.frombuffer(seg, dtype=np.float64)
        assert a.size == n // 8 and a.flags.writeable and not a.flags.owndata
        a[:] = np.arange(a.size) * 0.5
        # The C program reads the same memory: the bytes numpy wrote.
        assert c_sum(peer, name) == (n, zlib.crc32(a.tobytes()))
        del a


def test_c_writes_numpy_view_sees_it(peer, name):
    n = 65536
    with shmkit.Segment(name, n, create=True) as seg:
        view = np.frombuffer(seg, dtype=np.uint8)  # made before the C write
        assert not view.any()
        size, crc = c_sum(peer, name, "seg-fill", 3)
        expect = (np.arange(n, dtype=np.uint64) * 31 + 3).astype(np.uint8)
        # No copy was taken: the view shows what another process wrote since.
        assert np.array_equal(view, expect)
        assert crc == zlib.crc32(view.tobytes())
        # The segment cannot be unmapped under the array.
        with pytest.raises(BufferError):
            seg.close()
        del view


def test_readonly_segment(name):
    with shmkit.Segment(name, 4096, create=True) as w:
        w_arr = np.frombuffer(w, dtype=np.uint32)
        w_arr[0] = 0xdeadbeef
        with shmkit.Segment(name, readonly=True) as r:
            a = np.frombuffer(r, dtype=np.uint32)
            assert not a.flags.writeable and a[0] == 0xdeadbeef
            with pytest.raises(ValueError):
                a[0] = 1
            assert memoryview(r).readonly
            del a
        del w_arr


def test_raw_segment_with_multiprocessing_shared_memory(name):
    from multiprocessing import shared_memory
    sm = shared_memory.SharedMemory(name=name.lstrip("/"), create=True, size=4096)
    try:
        sm.buf[:5] = b"hello"
        with shmkit.Segment(name, raw=True) as seg:
            assert len(seg) >= 4096 and bytes(memoryview(seg)[:5]) == b"hello"
            assert seg.stat()["kind"] == shmkit.KIND_RAW
    finally:
        sm.close()
        sm.unlink()
