"""`python -m indelible.auditor verify-bundle` against zips crafted to break the reader, not
the proofs: each is a named finding (exit 1) or unusable (exit 2), never a crash or a
machine's worth of memory."""

from __future__ import annotations

import io
import zipfile

from indelible.auditor import EXIT_NOT_INTACT, EXIT_UNUSABLE, BundleReader, check_bundle
from indelible.proofs import NoteSigner
from tests.unit.test_proofs_bundle import ORIGIN, _bundle


def _write(path, files, compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)


def _check(path, signer) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_bundle(str(path), [signer.verifier_key_text()], out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def test_a_deflate_bomb_is_refused_before_it_is_inflated(tmp_path):
    signer = NoteSigner.generate(ORIGIN)
    path = tmp_path / "bomb.zip"
    _write(path, _bundle(signer), zipfile.ZIP_DEFLATED)
    size = BundleReader.MAX_INFLATED + 1024 * 1024  # ~0.3 MB of deflate
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, \
            z.open("entries/000000000099.json", "w", force_zip64=True) as member:
        chunk = b"\0" * (1 << 20)
        for _ in range(size // len(chunk)):
            member.write(chunk)
    code, text = _check(path, signer)
    assert code == EXIT_NOT_INTACT
    assert "entries/000000000099.json" in text and "zip bomb" in text


def test_a_zip_the_zipfile_module_cannot_handle_is_unusable_not_a_crash(tmp_path):
    signer = NoteSigner.generate(ORIGIN)
    path = tmp_path / "odd.zip"
    _write(path, _bundle(signer))
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6] = 0xFF  # "version needed to extract" 25.5: zipfile raises NotImplementedError
    path.write_bytes(bytes(data))
    code, text = _check(path, signer)
    assert code == EXIT_UNUSABLE, text
    assert "could not be checked" in text
