"""The data directory: held by one service, private to it (issue 9 item 3, issue 8 review)."""

from __future__ import annotations

import os

import pytest

from indelible import datadir
from indelible.secret_files import SecretFileError, read_private, write_private


def test_a_second_hold_is_refused_naming_the_holder(tmp_path):
    with datadir.hold(tmp_path / "data", serving="http://127.0.0.1:8080"):
        with pytest.raises(datadir.DataDirError,
                           match=rf"pid {os.getpid()}, since .* serving http://127.0.0.1:8080"):
            with datadir.hold(tmp_path / "data"):
                pass
    with datadir.hold(tmp_path / "data"):  # released with the holder
        pass


def test_a_data_directory_others_may_write_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    with pytest.raises(datadir.DataDirError, match="writable by nobody else.*chmod go-w"):
        with datadir.hold(data):
            pass


def test_a_new_data_directory_is_private(tmp_path):
    with datadir.hold(tmp_path / "new"):
        assert (tmp_path / "new").stat().st_mode & 0o077 == 0


def test_a_secret_behind_a_symbolic_link_is_refused(tmp_path):
    write_private(tmp_path / "real", "secret")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_private(tmp_path / "real") == "secret"
    with pytest.raises(SecretFileError, match="cannot read"):
        read_private(tmp_path / "link")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root")
def test_a_secret_owned_by_another_user_is_refused(tmp_path):
    write_private(tmp_path / "theirs", "secret")
    os.chown(tmp_path / "theirs", 65534, 65534)
    with pytest.raises(SecretFileError, match="belongs to uid 65534"):
        read_private(tmp_path / "theirs")
