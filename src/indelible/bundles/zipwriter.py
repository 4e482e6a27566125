"""A minimal, deterministic zip writer for stored (uncompressed) members, streaming.

`zipfile` spends most of a bundle export's time in per-member bookkeeping (a header written,
then sought back to and rewritten). Every member of a bundle is known in full before it is
written, so its CRC and sizes go into the local header at once: one write per member, no
seeking, which also lets the bundle stream to a pipe or an HTTP response.

Format: PKWARE APPNOTE 6.3.x. Stored members, fixed time (1980-01-01 00:00), Unix mode 0644,
ASCII names; ZIP64 end records when there are more than 65,535 members (a 100,000-entry
bundle has 200,000). Members and offsets stay below 4 GiB (a larger bundle is refused,
naming the limit); any zip reader (Python's `zipfile`, Info-ZIP `unzip`) reads the result.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header, without the name
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory header, without the name
_END64 = struct.Struct("<IQHHIIQQQQ")  # ZIP64 end of central directory record
_LOCATOR64 = struct.Struct("<IIQI")  # ZIP64 end of central directory locator
_END = struct.Struct("<IHHHHIIH")  # end of central directory record

_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01: the earliest a zip can say; no export time
_DOS_TIME = 0
_VERSION = 20  # 2.0: stored members, directories
_VERSION64 = 45  # 4.5: ZIP64
_MADE_BY = (3 << 8) | _VERSION64  # Unix, so the mode below is read the same everywhere
_MODE = 0o100644 << 16  # regular file, rw-r--r--
_LIMIT = 0xFFFFFFFF  # 4 GiB: offsets and sizes this writer supports
_MAX_MEMBERS_16 = 0xFFFF


class ZipLimitError(ValueError):
    """The bundle would need ZIP64 sizes or offsets (over 4 GiB), which this writer omits."""


class StoredZipWriter:
    """Write members in the order given, then `close()` writes the central directory."""

    def __init__(self, out: BinaryIO):
        self._out, self._offset, self._central, self._count = out, 0, [], 0
        self._names: set[str] = set()

    def add(self, name: str, data: bytes) -> None:
        raw = name.encode("ascii")
        if name in self._names:
            raise ValueError(f"zip member {name!r} written twice")
        if len(data) > _LIMIT or self._offset > _LIMIT:
            raise ZipLimitError(f"bundles are limited to 4 GiB; {name} goes past it")
        self._names.add(name)
        crc = zlib.crc32(data)
        header = _LOCAL.pack(0x04034B50, _VERSION, 0, 0, _DOS_TIME, _DOS_DATE, crc, len(data),
                             len(data), len(raw), 0)
        self._out.write(header + raw)
        self._out.write(data)
        self._central.append(_CENTRAL.pack(
            0x02014B50, _MADE_BY, _VERSION, 0, 0, _DOS_TIME, _DOS_DATE, crc, len(data),
            len(data), len(raw), 0, 0, 0, 0, _MODE, self._offset) + raw)
        self._offset += len(header) + len(raw) + len(data)
        self._count += 1

    def close(self) -> None:
        start = self._offset
        for record in self._central:
            self._out.write(record)
        size = sum(map(len, self._central))
        if start + size > _LIMIT:
            raise ZipLimitError("bundles are limited to 4 GiB")
        count = self._count
        if count > _MAX_MEMBERS_16:
            end64 = start + size
            self._out.write(_END64.pack(0x06064B50, _END64.size - 12, _MADE_BY, _VERSION64, 0, 0,
                                        count, count, size, start))
            self._out.write(_LOCATOR64.pack(0x07064B50, 0, end64, 1))
            count = _MAX_MEMBERS_16
        self._out.write(_END.pack(0x06054B50, 0, 0, count, count, size, start, 0))
        self._central = []
