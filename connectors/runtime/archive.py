"""The raw record archive: every RawRecord published to raw.orders, also kept on disk, compressed.

The local broker keeps its topics in memory; this archive is what a lost broker is rebuilt from
(`tonglu replay`). It is append-only segment files under `<data dir>/archive/`:

    segment  = frame*                      named `<first write, epoch ms, 13 digits>-<pid>.seg`
    frame    = b"TLA1" kind:u8 length:u32 crc32:u32 payload[length]      (little-endian)
    kind R   = zstd( entry* ),  entry = fetched_at:i64 key_len:u32 key value_len:u32 value
    kind A   = frame_no:u32 count:u32 (partition:i32 offset:i64)*count

An R frame is one publish batch, written and fsynced *before* the batch is produced (write-ahead),
so nothing the broker acknowledged can be missing here. Its A frame follows once the broker has
acknowledged the batch, with the partition and offset each record got (from the delivery reports;
-1 when unknown). A record without an A frame may or may not have reached the broker; replay
publishes it either way (deterministic event ids make a repeat harmless).

A writer never appends to an existing file (every process start opens a new segment), so a frame
cut short by a crash is only ever at the tail of a segment: readers detect it (length, CRC) and skip
the rest of that segment with a log line. Retention drops whole segments.
"""
from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import cramjam

log = logging.getLogger(__name__)

MAGIC = b"TLA1"
RECORDS, ACKS = ord("R"), ord("A")
_HEAD = struct.Struct("<4sBII")
_ENTRY_HEAD = struct.Struct("<qI")
_LEN = struct.Struct("<I")
_ACK_HEAD = struct.Struct("<II")
_POSITION = struct.Struct("<iq")
SEGMENT_MAX_BYTES = 64 * 1024 * 1024
SEGMENT_MAX_AGE_MS = 3600_000  # retention drops whole segments, so it is exact to within an hour
DAY_MS = 86_400_000


@dataclass(frozen=True)
class ArchivedRecord:
    key: bytes  # the raw.orders key, `platform:shop_id`
    value: bytes  # the encoded RawRecord exactly as produced
    fetched_at: int  # epoch ms, the RawRecord's own fetched_at
    partition: int | None = None  # where the broker stored it, when its acknowledgement was archived
    offset: int | None = None

    @property
    def platform(self) -> str:
        return self.key.decode(errors="replace").split(":", 1)[0]

    @property
    def shop_id(self) -> str:
        return self.key.decode(errors="replace").split(":", 1)[-1]


def matches(record: ArchivedRecord, platform: str | None = None, shop: str | None = None,
            since_ms: int | None = None) -> bool:
    """The replay filters: platform, shop id, fetched at or after `since_ms`."""
    return ((platform is None or record.platform == platform) and (shop is None or record.shop_id == shop)
            and (since_ms is None or record.fetched_at >= since_ms))


def encode_frame(kind: int, payload: bytes) -> bytes:
    return _HEAD.pack(MAGIC, kind, len(payload), zlib.crc32(payload)) + payload


def records_frame(entries: list[tuple[bytes, bytes, int]]) -> bytes:
    """An R frame of (key, value, fetched_at) entries."""
    parts = []
    for key, value, fetched_at in entries:
        parts += [_ENTRY_HEAD.pack(fetched_at, len(key)), key, _LEN.pack(len(value)), value]
    return encode_frame(RECORDS, bytes(cramjam.zstd.compress(b"".join(parts), level=3)))


def acks_frame(frame_no: int, positions: list[tuple[int, int]]) -> bytes:
    """An A frame: the (partition, offset) of each record of R frame `frame_no`, in order."""
    return encode_frame(ACKS, _ACK_HEAD.pack(frame_no, len(positions))
                        + b"".join(_POSITION.pack(p, o) for p, o in positions))


def parse_frames(data: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
    """The (kind, payload) frames of a segment, and why reading stopped early (None: clean end)."""
    frames, pos = [], 0
    while pos < len(data):
        if len(data) - pos < _HEAD.size:
            return frames, f"truncated frame header at byte {pos}"
        magic, kind, length, crc = _HEAD.unpack_from(data, pos)
        if magic != MAGIC or kind not in (RECORDS, ACKS):
            return frames, f"no frame at byte {pos}"
        payload = data[pos + _HEAD.size: pos + _HEAD.size + length]
        if len(payload) < length:
            return frames, f"frame at byte {pos} cut short ({len(payload)} of {length} bytes)"
        if zlib.crc32(payload) != crc:
            return frames, f"frame at byte {pos} fails its checksum"
        frames.append((kind, payload))
        pos += _HEAD.size + length
    return frames, None


def decode_records(payload: bytes) -> list[tuple[bytes, bytes, int]]:
    data, out, pos = bytes(cramjam.zstd.decompress(payload)), [], 0
    while pos < len(data):
        fetched_at, key_len = _ENTRY_HEAD.unpack_from(data, pos)
        pos += _ENTRY_HEAD.size
        key = data[pos:pos + key_len]
        pos += key_len
        (value_len,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        out.append((key, data[pos:pos + value_len], fetched_at))
        pos += value_len
    return out


def decode_acks(payload: bytes) -> tuple[int, list[tuple[int, int]]]:
    frame_no, count = _ACK_HEAD.unpack_from(payload, 0)
    return frame_no, [_POSITION.unpack_from(payload, _ACK_HEAD.size + i * _POSITION.size) for i in range(count)]


def segment_records(data: bytes, name: str = "segment") -> Iterator[ArchivedRecord]:
    """The records of one segment's bytes, in write order, with their broker positions when archived."""
    frames, problem = parse_frames(data)
    if problem:
        log.warning("归档段尾部损坏，已跳过其余部分 archive %s: %s; the rest of it is skipped", name, problem)
    positions = dict(decode_acks(payload) for kind, payload in frames if kind == ACKS)
    record_frames = [payload for kind, payload in frames if kind == RECORDS]
    for frame_no, payload in enumerate(record_frames):
        try:
            entries = decode_records(payload)
        except (cramjam.DecompressionError, struct.error) as exc:  # checksum matched but content is not ours
            log.warning("归档帧无法解码，已跳过 archive %s frame %d unreadable (%s); skipped", name, frame_no, exc)
            continue
        acked = positions.get(frame_no)
        for i, (key, value, fetched_at) in enumerate(entries):
            partition, offset = acked[i] if acked and i < len(acked) and acked[i][1] >= 0 else (None, None)
            yield ArchivedRecord(key, value, fetched_at, partition, offset)


def segments(directory: Path) -> list[Path]:
    """Segment files in write order (their names start with the time of their first write)."""
    return sorted(Path(directory).glob("*.seg")) if Path(directory).is_dir() else []


def _segment_start(path: Path) -> int:
    return int(path.name.split("-", 1)[0])


def read_archive(directory: Path, platform: str | None = None, shop: str | None = None,
                 since_ms: int | None = None) -> Iterator[ArchivedRecord]:
    """Every archived record matching the filters, in archive order; damaged tails are skipped."""
    for path in segments(directory):
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("归档段无法读取 archive %s unreadable: %s; skipped", path.name, exc)
            continue
        for record in segment_records(data, path.name):
            if matches(record, platform, shop, since_ms):
                yield record


def expired_segments(paths: list[Path], retention_days: float, now_ms: int) -> list[Path]:
    """Segments holding only records older than the retention (pure: judged by the next segment's start).

    Retention 0 keeps everything.
    """
    if retention_days <= 0:
        return []
    cutoff = now_ms - int(retention_days * DAY_MS)
    ordered = sorted(paths)
    return [path for path, following in pairwise(ordered) if _segment_start(following) <= cutoff]


def retention_cutoff(retention_days: float, now_ms: int) -> int | None:
    """The oldest fetched_at a retention keeps (None: keep everything)."""
    return now_ms - int(retention_days * DAY_MS) if retention_days > 0 else None


def prune(directory: Path, retention_days: float, now_ms: int | None = None) -> list[Path]:
    """Delete the expired segments; returns them."""
    gone = expired_segments(segments(directory), retention_days, now_ms or int(time.time() * 1000))
    for path in gone:
        path.unlink(missing_ok=True)
    if gone:
        log.info("归档保留期 %s 天，删除 %d 个旧段 archive retention: removed %d segments", retention_days, len(gone),
                 len(gone))
    return gone


class ArchiveWriter:
    """Appends publish batches to the newest segment of its own; thread-safe (pollers publish concurrently)."""

    def __init__(self, directory: Path, retention_days: float = 30.0, max_bytes: int = SEGMENT_MAX_BYTES,
                 max_age_ms: int = SEGMENT_MAX_AGE_MS):
        self.directory = Path(directory)
        self.retention_days, self.max_bytes, self.max_age_ms = retention_days, max_bytes, max_age_ms
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = self._frames = self._opened_ms = 0

    def append(self, entries: list[tuple[bytes, bytes, int]]) -> tuple[Path, int]:
        """Write one batch of (key, value, fetched_at) and fsync it; returns its reference for `acknowledge`."""
        frame = records_frame(entries)
        with self._lock:
            self._roll_if_due(len(frame))
            os.write(self._fd, frame)
            os.fsync(self._fd)
            self._size += len(frame)
            ref = (self._path, self._frames)
            self._frames += 1
            return ref

    def acknowledge(self, ref: tuple[Path, int], positions: list[tuple[int, int]]) -> None:
        """Record where the broker stored batch `ref` (not fsynced: the next batch's fsync carries it)."""
        path, frame_no = ref
        frame = acks_frame(frame_no, positions)
        with self._lock:
            if path != self._path:  # the segment rolled meanwhile; the positions are only informative
                return
            os.write(self._fd, frame)
            self._size += len(frame)

    def _roll_if_due(self, incoming: int) -> None:
        now = int(time.time() * 1000)
        if self._fd is not None and self._size + incoming <= self.max_bytes and now - self._opened_ms < self.max_age_ms:
            return
        self._close_segment()
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:  # a segment of its own, never an existing file
            self._path = self.directory / f"{now:013d}-{os.getpid()}.seg"
            try:
                self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                break
            except FileExistsError:
                now += 1
        self._size = self._frames = 0
        self._opened_ms = now
        dir_fd = os.open(self.directory, os.O_RDONLY)  # make the new file's name durable too
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        prune(self.directory, self.retention_days, now)

    def _close_segment(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.fsync(fd)
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._close_segment()
