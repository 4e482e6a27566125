"""The bundle's zip writer: what it writes, Python's own zip reader reads back exactly."""

from __future__ import annotations

import io
import zipfile

import pytest

from indelible.bundles.zipwriter import StoredZipWriter


def _write(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    writer = StoredZipWriter(out)
    for name, data in members:
        writer.add(name, data)
    writer.close()
    return out.getvalue()


def test_members_read_back_with_fixed_time_and_mode():
    members = [("README.md", b"hello\n"), ("entries/000000000001.json", b'{"a":1}'),
               ("empty", b"")]
    data = _write(members)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert [(i.filename, z.read(i)) for i in z.infolist()] == members
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in z.infolist()} == {0o100644}
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    assert _write(members) == data  # deterministic


def test_more_than_65535_members_get_zip64_end_records():
    members = [(f"m/{i:06d}", str(i).encode()) for i in range(70_000)]
    with zipfile.ZipFile(io.BytesIO(_write(members))) as z:
        names = z.namelist()
        assert len(names) == 70_000 and z.read("m/069999") == b"69999"


def test_a_name_written_twice_is_refused():
    writer = StoredZipWriter(io.BytesIO())
    writer.add("a", b"1")
    with pytest.raises(ValueError, match="written twice"):
        writer.add("a", b"2")
