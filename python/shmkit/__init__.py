"""shmkit: shared-memory IPC for Python, a C extension over libshmkit.

- Segment: a named shared-memory segment; numpy.frombuffer(seg, dtype) maps it.
- Blob: a whole-buffer snapshot many processes read and write (never torn).
- Channel: a single-producer single-consumer message channel (send/recv, recv_into,
  zero-copy peek, a level-triggered fileno() and async arecv/asend for asyncio).
- Topic: publish-subscribe, lossy or reliable (publish/receive, fileno, lost counts).

Timeouts are seconds: None waits forever, 0 never blocks (BlockingIOError). Errors
are OSError subclasses with the library's errno and text: TimeoutError,
BrokenPipeError (a closed or dead peer), FileNotFoundError (no such name), ...
Blocking calls release the GIL. Every handle is a context manager.
"""
import asyncio as _asyncio

from . import _shmkit
from ._shmkit import (  # noqa: F401
    HEADER_VERSION_NUM,
    KIND_ANY,
    KIND_BLOB,
    KIND_CHAN,
    KIND_DATA,
    KIND_RAW,
    KIND_TOPIC,
    LIBRARY_VERSION_NUM,
    NAME_MAX,
    STATE_DELETED,
    STATE_INIT,
    STATE_READY,
    Blob,
    Message,
    MessagesLost,
    Segment,
    guard_sigbus,
    inspect,
    library_version,
    live_sweep,
    strerror,
    unlink,
)

__version__ = library_version

__all__ = [
    "Segment", "Blob", "Channel", "Topic", "Message", "MessagesLost", "unlink",
    "inspect", "strerror", "live_sweep", "guard_sigbus", "library_version",
    "KIND_ANY", "KIND_DATA", "KIND_BLOB", "KIND_CHAN", "KIND_TOPIC", "KIND_RAW",
    "STATE_INIT", "STATE_READY", "STATE_DELETED", "NAME_MAX",
]


async def _readable(fd):
    """Wait until fd polls readable, on the running loop."""
    loop = _asyncio.get_running_loop()
    fut = loop.create_future()

    def ready():
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def _until_ready(handle, call):
    # The descriptor is level-triggered and re-armed by a call that finds nothing
    # (BlockingIOError), so: try, and only after a refusal wait for it.
    while True:
        try:
            return call()
        except BlockingIOError:
            pass
        await _readable(handle.fileno())


class Channel(_shmkit.Channel):
    __doc__ = _shmkit.Channel.__doc__
    __slots__ = ()

    async def arecv(self):
        """await arecv() -> bytes: recv() for asyncio, through fileno()."""
        return await _until_ready(self, lambda: self.recv(0))

    async def arecv_into(self, buffer):
        """await arecv_into(buffer) -> int: recv_into() for asyncio."""
        return await _until_ready(self, lambda: self.recv_into(buffer, 0))

    async def asend(self, data):
        """await asend(data): send() for asyncio (the producer's descriptor is
        readable when there is room)."""
        return await _until_ready(self, lambda: self.send(data, 0))


class Topic(_shmkit.Topic):
    __doc__ = _shmkit.Topic.__doc__
    __slots__ = ()

    async def areceive(self):
        """await areceive() -> bytes: receive() for asyncio, through fileno()."""
        return await _until_ready(self, lambda: self.receive(0))
