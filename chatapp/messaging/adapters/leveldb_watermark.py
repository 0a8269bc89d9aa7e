"""The watermark: where the message store's last write batch ended, kept beside its tables.

LevelDB drops a torn tail of its log without a word, even with
`paranoid_checks`: it takes it for a write cut short by a crash. A log cut in
half therefore opens as an older database that is whole in itself, and the
ids of the lost messages would be handed out again. So after each batch the
writer notes here the key of the batch's last message and how many messages
the store holds; at start-up that message must be there.

The note is a 33-byte overwrite in place, not fsync'ed: it is written only
after its batch is on disk, so a crash or a power cut can leave it behind the
database (which is checked as usual), never ahead of it. The file is
fsync'ed when it is created, when the store opens (marked as in use) and when
it closes (marked as closed cleanly): a store that was closed cleanly needs
only the quick check at the next start (see `leveldb_survey`).

    b"CWM1" channel_id message_id messages_stored closed_cleanly crc32
    (big-endian, 4+8+8+8+1+4 bytes)

`messages_stored` is `UNKNOWN` for a store that was written before it had a
watermark, until a repair counts them.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import struct
import zlib
from dataclasses import dataclass
from typing import Final

from chatapp.messaging.adapters.leveldb_layout import (
    DamagedStore,
    OutOfResources,
    out_of_resources,
)

FILE_NAME: Final = "chatapp-watermark"
UNKNOWN: Final = 2**64 - 1
_MAGIC: Final = b"CWM1"
_BODY: Final = struct.Struct(">4sQQQ?")
_CRC: Final = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Watermark:
    """The last message of the last batch noted, and the messages stored by then."""

    channel_id: int = 0
    message_id: int = 0
    """0 when no message was ever noted."""
    messages_stored: int = 0
    closed_cleanly: bool = False
    """True when the store that wrote it was closed, not killed, and nothing wrote since."""


def watermark_path(folder: pathlib.Path) -> pathlib.Path:
    return folder / FILE_NAME


def read_watermark(folder: pathlib.Path) -> Watermark | None:
    """The watermark in `folder`; None when there is none; `DamagedStore` when unreadable."""
    path = watermark_path(folder)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if out_of_resources(exc):
            raise OutOfResources(f"{path} cannot be read now: {exc.strerror}") from None
        raise DamagedStore(f"{path} cannot be read: {exc}") from None
    if len(data) != _BODY.size + _CRC.size:
        raise DamagedStore(f"{path} is damaged: {len(data)} bytes, not {_BODY.size + _CRC.size}")
    body, (crc,) = data[: _BODY.size], _CRC.unpack(data[_BODY.size :])
    magic, channel_id, message_id, stored, closed_cleanly = _BODY.unpack(body)
    if magic != _MAGIC or zlib.crc32(body) != crc:
        raise DamagedStore(f"{path} is damaged: its checksum does not match")
    return Watermark(channel_id, message_id, stored, closed_cleanly)


def write_watermark(folder: pathlib.Path, mark: Watermark) -> None:
    """Replace the watermark whole and fsync it (for creation and for repairs)."""
    path = watermark_path(folder)
    partial = path.with_name(FILE_NAME + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, _encode(mark))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    partial.replace(path)
    _sync_folder(folder)


class WatermarkFile:
    """The open watermark of a running store; only the writer's thread notes in it."""

    def __init__(self, folder: pathlib.Path, start: Watermark) -> None:
        """Open the watermark in `folder` (made from `start` when missing), marked in use."""
        self.mark = dataclasses.replace(start, closed_cleanly=False)
        if not watermark_path(folder).exists():
            write_watermark(folder, self.mark)
        self._descriptor = os.open(watermark_path(folder), os.O_WRONLY)
        # Durable before the first write, so that a kill from here on is
        # never taken for a clean close.
        os.pwrite(self._descriptor, _encode(self.mark), 0)
        os.fsync(self._descriptor)

    def note(self, channel_id: int, message_id: int, added: int) -> None:
        """Record a batch that is on disk: its last message, and `added` new messages."""
        stored = self.mark.messages_stored
        if stored != UNKNOWN:
            stored += added
        self.mark = Watermark(channel_id, message_id, stored)
        os.pwrite(self._descriptor, _encode(self.mark), 0)

    def close(self, *, cleanly: bool) -> None:
        """Note whether the store closed `cleanly`, durably, and release the file."""
        try:
            self.mark = dataclasses.replace(self.mark, closed_cleanly=cleanly)
            os.pwrite(self._descriptor, _encode(self.mark), 0)
            os.fsync(self._descriptor)
        finally:
            os.close(self._descriptor)


def _encode(mark: Watermark) -> bytes:
    body = _BODY.pack(
        _MAGIC, mark.channel_id, mark.message_id, mark.messages_stored, mark.closed_cleanly
    )
    return body + _CRC.pack(zlib.crc32(body))


def _sync_folder(folder: pathlib.Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
