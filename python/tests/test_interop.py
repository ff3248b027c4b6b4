"""C producer -> Python consumer and back, for channels, topics, blobs: every message
checked (order, length, CRC-32) by the other side."""
import random

import numpy as np

import shmkit
from conftest import check_msg, finish, make_msg, run_peer, scale


def test_c_producer_python_consumer(peer, name):
    count = scale(3000)
    # A small ring, so that the producer waits for room and the consumer for data.
    with shmkit.Channel(name, "consumer", 16384, create=True) as ch:
        p = run_peer(peer, "chan-send", name, count, 7)
        buf = bytearray(8192)
        for i in range(count):
            # Every receive path: copy out, copy into a buffer, in place.
            if i % 3 == 0:
                check_msg(ch.recv(timeout=30), i)
            elif i % 3 == 1:
                n = ch.recv_into(buf, timeout=30)
                check_msg(memoryview(buf)[:n], i)
            else:
                with ch.peek(timeout=30) as view:
                    assert isinstance(view, memoryview) and view.readonly
                    check_msg(view, i)
        assert ch.recv(timeout=30) == b""  # end-of-stream once the producer closed
        st = ch.stats()
        assert st["msgs_recv"] == count and st["producer_closed"]
        assert finish(p)[0] == 0


def test_python_producer_c_consumer(peer, name):
    count = scale(3000)
    rng = random.Random(11)
    with shmkit.Channel(name, "producer", 16384, create=True) as ch:
        p = run_peer(peer, "chan-recv", name, count)
        for i in range(count):
            m = make_msg(i, rng)
            # bytes, bytearray and a numpy array all go through the buffer protocol.
            ch.send(m if i % 3 == 0 else bytearray(m) if i % 3 == 1
                    else np.frombuffer(m, np.uint8), timeout=30)
    # Closing the producer was the end-of-stream the consumer checks for.
    rc, out, err = finish(p)
    assert rc == 0, err
    assert out.strip() == "peer: ok %d" % count


def test_topic_both_ways(peer, name):
    count = scale(1000)
    with shmkit.Topic(name, "subscriber", create=True, reliable=True) as sub:
        p = run_peer(peer, "topic-pub", name, count, 5)
        for i in range(count):
            if i % 2:
                check_msg(sub.receive(timeout=30), i)
            else:
                with sub.peek(timeout=30) as view:
                    check_msg(view, i)
        assert sub.receive(timeout=30) == b""  # the last publisher closed
        assert sub.stats()["received"] == count
        assert finish(p)[0] == 0
    rng = random.Random(3)
    with shmkit.Topic(name, "publisher") as pub:
        p = run_peer(peer, "topic-sub", name, count)
        assert p.stdout.readline() == b"ready\n"
        for i in range(count):
            pub.publish(make_msg(i, rng), timeout=30)
    rc, out, err = finish(p)
    assert rc == 0, err
    assert out.strip() == "peer: ok %d" % count


def test_blob_python_writes_c_reads(peer, name):
    with shmkit.Blob(name, 64, create=True) as b:
        assert b.version == 0 and b.read() == bytes(64)
        b.write(b"first")
        b.write(b"hello")
        assert b.version == 2
        rc, out, err = finish(run_peer(peer, "blob-read", name))
        assert rc == 0, err
        assert out == "2 hello\n"
        assert b.read()[:6] == b"hello\0" and b.last_version == 2
