"""Runs on executors: what an event file holds, told by its first bytes, and its text decompressed.

Never by the name: gzip, bzip2 and zstd are read whatever the file is called, and a `.gz` that
holds bzip2 is bzip2. Each may hold several streams one after the other, as `cat a.gz b.gz`, pbzip2
and `zstd` of concatenated inputs write them (gzip members, bzip2 streams, zstd frames, zstd's
skippable frames included); only another stream of the same codec may follow a complete one
(gzip alone also accepts zero bytes of padding after its last member, as gzip(1) does).

`decompress` reads a file to its very end and checks what its codec checks: every gzip member's
CRC-32 and length, every bzip2 block's and stream's CRC, each zstd frame's end and its content
checksum when the writer put one (the `zstd` tool does by default). So a file cut short, with
a flipped byte or with garbage after its data raises `Unreadable` and no line of it is read.
gzip and bzip2 go through Python's zlib and bz2, zstd through pyarrow's codec (the nodes have
pyarrow; Python 3.9 has no zstd of its own). Any other binary format is unreadable as it is.
"""

from __future__ import annotations

import bz2
import io
import zlib
from typing import Callable, Dict, Tuple

from spark_app.events.files import Unreadable

COMPRESSED = ("gzip", "bzip2", "zstd")
_MAGIC: Tuple[Tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    # neither compressed text nor text: such a file is unreadable, never lines
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PAR1", "Parquet"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\xff\x06\x00\x00sNaPpY", "snappy"),
)
_CHUNK = 1 << 20
# Streaming decompressors with Python's shared interface: decompress(), eof, unused_data.
_STREAMS: Dict[str, Callable[[], object]] = {
    "gzip": lambda: zlib.decompressobj(31),
    "bzip2": bz2.BZ2Decompressor,
}


def content_kind(head: bytes) -> str:
    """`gzip`, `bzip2`, `zstd`, `text`, or the name of another binary format, from a file's first bytes."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18":
        return "zstd"  # a zstd skippable frame (metadata) before the data frames
    return "binary" if b"\x00" in head else "text"


def decompress(kind: str, head: bytes, raw, out) -> None:
    """All of a compressed file's text into `out` (a binary file): `head` is what was read of `raw`.

    Raises `Unreadable` naming the codec and the problem when the file does not decompress to its
    end; whatever was written to `out` by then is not to be read.
    """
    try:
        if kind == "zstd":
            _zstd(head, raw, out)
        else:
            _streams(kind, head, raw, out)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise Unreadable(f"{kind}: {problem}") from exc


def _streams(kind: str, head: bytes, raw, out) -> None:
    """gzip members or bzip2 streams, one after the other, each checked to its end."""
    new = _STREAMS[kind]
    magic = next(m for m, k in _MAGIC if k == kind)
    decoder = new()
    pending = head
    while True:
        if not pending:
            pending = raw.read(_CHUNK)
            if not pending:
                break
        if decoder.eof:  # another stream (or gzip's zero padding) after a complete one
            if kind == "gzip":
                pending = pending.lstrip(b"\x00")
                if not pending:
                    continue
            while len(pending) < len(magic):
                more = raw.read(_CHUNK)
                if not more:
                    break
                pending += more
            if not pending.startswith(magic):
                raise OSError(f"data after the end of the last {kind} stream is not {kind}")
            decoder = new()
        out.write(decoder.decompress(pending))
        pending = decoder.unused_data if decoder.eof else b""
    if not decoder.eof:
        raise EOFError("the file ends before the end of its compressed stream (cut short?)")


def _zstd(head: bytes, raw, out) -> None:
    import pyarrow as pa

    stream = pa.CompressedInputStream(_Rest(head, raw), "zstd")  # frames one after the other
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        out.write(chunk)


class _Rest(io.RawIOBase):
    """`raw` read from its start again: the bytes already read (`head`), then the rest of it."""

    def __init__(self, head: bytes, raw) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
