"""The error mapping: each library error reaches Python as the OSError subclass for
its errno, with the library's text and the name; misuse is a Python error."""
import errno
import os
import signal
import threading
import time

import pytest

import shmkit
from conftest import finish, run_peer


def test_missing_name(name):
    for make in (lambda: shmkit.Segment(name), lambda: shmkit.Blob(name),
                 lambda: shmkit.Channel(name, "consumer"),
                 lambda: shmkit.Topic(name, "subscriber"), lambda: shmkit.unlink(name)):
        with pytest.raises(FileNotFoundError) as e:
            make()
        assert e.value.errno == errno.ENOENT and e.value.filename == name
        assert e.value.strerror == shmkit.strerror(-errno.ENOENT)


def test_exists_and_wrong_kind(name):
    with shmkit.Segment(name, 4096, create=True):
        with pytest.raises(FileExistsError):
            shmkit.Segment(name, 4096, create=True, excl=True)
        # A data segment is no channel: -EPROTO, a plain OSError with its errno.
        with pytest.raises(OSError) as e:
            shmkit.Channel(name, "consumer")
        assert e.value.errno == errno.EPROTO
        assert str(e.value).startswith("[Errno %d] %s" % (errno.EPROTO,
                                                         shmkit.strerror(errno.EPROTO)))


def test_timeout_and_nonblocking(name):
    with shmkit.Channel(name, "consumer", 4096, create=True) as ch:
        with pytest.raises(BlockingIOError):
            ch.recv(0)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            ch.recv(timeout=0.2)
        assert e.value.errno == errno.ETIMEDOUT
        assert time.monotonic() - t0 >= 0.19
        with pytest.raises(TimeoutError):
            ch.peek(timeout=0.01)
        with pytest.raises(ValueError):
            ch.recv(timeout=-1)
    with shmkit.Blob(name + "b", 8, create=True) as b:
        try:
            with pytest.raises(TimeoutError):
                b.wait(timeout=0.05)
        finally:
            b.delete()


def test_dead_producer_is_broken_pipe(peer, name):
    with shmkit.Channel(name, "consumer", 65536, create=True) as ch:
        p = run_peer(peer, "chan-die", name, 3)
        p.wait(30)
        assert p.returncode == -signal.SIGKILL
        for _ in range(3):  # everything it committed is still received
            assert len(ch.recv(timeout=5)) >= 12
        with pytest.raises(BrokenPipeError) as e:
            ch.recv(timeout=10)
        assert e.value.errno == errno.EPIPE
        assert e.value.strerror == shmkit.strerror(-errno.EPIPE)


def test_closed_consumer_is_broken_pipe(name):
    with shmkit.Channel(name, "producer", 4096, create=True) as prod:
        shmkit.Channel(name, "consumer").close()
        with pytest.raises(BrokenPipeError):
            for _ in range(1000):  # the ring fills, then the closed consumer shows
                prod.send(b"x" * 512, timeout=5)


def test_message_too_big_and_busy_role(name):
    with shmkit.Channel(name, "producer", 4096, create=True) as prod, \
            shmkit.Channel(name, "consumer") as cons:
        max_msg = prod.stats()["max_msg"]
        with pytest.raises(OSError) as e:
            prod.send(b"x" * (max_msg + 1))
        assert e.value.errno == errno.EMSGSIZE
        prod.send(b"y" * 100)
        with pytest.raises(OSError) as e:
            cons.recv_into(bytearray(10))
        assert e.value.errno == errno.EMSGSIZE
        assert cons.recv(0) == b"y" * 100  # it stayed queued
        with pytest.raises(OSError) as e:  # a live process holds the role
            shmkit.Channel(name, "consumer")
        assert e.value.errno == errno.EBUSY
        with pytest.raises(ValueError):
            shmkit.Channel(name, "reader")


def test_deleted_is_eidrm(name):
    with shmkit.Blob(name, 16, create=True) as a, shmkit.Blob(name) as b:
        a.delete()
        with pytest.raises(OSError) as e:
            b.read()
        assert e.value.errno == errno.EIDRM


def test_permission_denied(name):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    with shmkit.Segment(name, 4096, create=True, mode=0o600):
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                os.setgid(65534)
                os.setuid(65534)
                shmkit.Segment(name)
            except PermissionError as e:
                code = 0 if e.errno == errno.EACCES else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_lost_messages(name):
    # A lossy topic: the subscriber falls more than the ring behind.
    with shmkit.Topic(name, "subscriber", 4096, create=True) as sub, \
            shmkit.Topic(name, "publisher") as pub:
        for i in range(200):
            pub.publish(i.to_bytes(4, "little") * 16)
        with pytest.raises(shmkit.MessagesLost) as e:
            sub.receive(0)
        assert e.value.errno == errno.EOVERFLOW and e.value.lost > 0
        assert sub.lost == e.value.lost
        first = int.from_bytes(sub.receive(0)[:4], "little")
        assert first == e.value.lost  # the oldest intact message follows the gap
        assert sub.stats()["lost"] == e.value.lost


def test_closed_handle_and_exports(name):
    with shmkit.Channel(name, "consumer", 4096, create=True) as cons, \
            shmkit.Channel(name, "producer") as prod:
        prod.send(b"abc")
        m = cons.peek(0)
        keep = memoryview(m)
        with pytest.raises(BufferError):  # a view of the message is alive
            cons.recv(0)
        with pytest.raises(BufferError):
            m.release()
        assert cons.peek(0) is m  # peeking again gives the same message
        keep.release()
        assert bytes(m) == b"abc"
        m.release()
        with pytest.raises(BlockingIOError):
            cons.recv(0)
    assert cons.closed and prod.closed  # the with block closed both
    with pytest.raises(ValueError):
        cons.recv(0)
    cons.close()  # closing twice is fine


def wait_until_busy(handle):
    """Until another thread is inside a blocking call on handle: this thread ran a
    call meanwhile, so that call released the GIL."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            handle.recv(0)
        except RuntimeError:
            return
        except BlockingIOError:
            time.sleep(0.005)
    raise AssertionError("the other thread never blocked in recv()")


def test_busy_handle_from_another_thread(name):
    with shmkit.Channel(name, "consumer", 4096, create=True) as cons:
        got = []
        t = threading.Thread(target=lambda: got.append(cons.recv(timeout=20)))
        t.start()
        wait_until_busy(cons)
        with pytest.raises(RuntimeError):
            cons.close()  # never unmapped under a running call
        with shmkit.Channel(name, "producer") as prod:
            prod.send(b"go")
        t.join(30)
        assert got == [b"go"]


def test_blocking_call_releases_gil_and_signals_interrupt(name):
    with shmkit.Channel(name, "consumer", 4096, create=True) as cons, \
            shmkit.Channel(name, "producer") as prod:
        got = []
        t = threading.Thread(target=lambda: got.append(cons.recv(timeout=30)))
        t.start()
        wait_until_busy(cons)  # this thread runs while the other waits: GIL released
        prod.send(b"ping")
        t.join(30)
        assert got == [b"ping"]

        class Interrupted(Exception):
            pass

        def on_alarm(signum, frame):
            raise Interrupted()

        old = signal.signal(signal.SIGALRM, on_alarm)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            t0 = time.monotonic()
            with pytest.raises(Interrupted):
                cons.recv()  # forever, but a signal's handler still runs
            assert time.monotonic() - t0 < 5
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
