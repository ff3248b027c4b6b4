"""Type stubs of the shmkit package."""
from typing import Any

from . import _shmkit
from ._shmkit import (
    HEADER_VERSION_NUM as HEADER_VERSION_NUM,
    KIND_ANY as KIND_ANY,
    KIND_BLOB as KIND_BLOB,
    KIND_CHAN as KIND_CHAN,
    KIND_DATA as KIND_DATA,
    KIND_RAW as KIND_RAW,
    KIND_TOPIC as KIND_TOPIC,
    LIBRARY_VERSION_NUM as LIBRARY_VERSION_NUM,
    NAME_MAX as NAME_MAX,
    STATE_DELETED as STATE_DELETED,
    STATE_INIT as STATE_INIT,
    STATE_READY as STATE_READY,
    Blob as Blob,
    ChanStats as ChanStats,
    Message as Message,
    MessagesLost as MessagesLost,
    SegInfo as SegInfo,
    Segment as Segment,
    SubscriberInfo as SubscriberInfo,
    TopicStats as TopicStats,
    guard_sigbus as guard_sigbus,
    inspect as inspect,
    library_version as library_version,
    live_sweep as live_sweep,
    strerror as strerror,
    unlink as unlink,
)

__version__: str

class Channel(_shmkit.Channel):
    async def arecv(self) -> bytes: ...
    async def arecv_into(self, buffer: Any) -> int: ...
    async def asend(self, data: Any) -> None: ...

class Topic(_shmkit.Topic):
    async def areceive(self) -> bytes: ...
