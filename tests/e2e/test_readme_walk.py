"""The README's first walk, run as written: its commands are read from the README itself, so
the documentation cannot drift from what the service does (issue 9, item 1)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from indelible.runtime import free_port

from .cli_helpers import cli_env
from .test_http import _interrupt, _start

README = Path(__file__).resolve().parents[2] / "README.md"


def _walk() -> str:
    text = README.read_text()
    section = text[text.index("## A first walk"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_walk_runs_verbatim_on_a_fresh_data_directory(tmp_path):
    port = free_port()
    env = cli_env(tmp_path / "data", None)  # the embedded servers, as a new user gets them
    env.pop("INDELIBLE_ORIGIN")
    process, base = _start(env, tmp_path / "service.log", port=port)
    # Where the README says to stand: a folder holding the .venv the first command made.
    repo = tmp_path / "repo"
    (repo / ".venv").mkdir(parents=True)
    (repo / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    script = _walk().replace("http://127.0.0.1:8080", base)
    try:
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=repo, env=env,
                                capture_output=True, text=True, timeout=300)
    finally:
        assert _interrupt(process) == 0
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert '"status":409' in out.replace(" ", "") and 'allowed' in out
    assert '"status":"acknowledged"' in out.replace(" ", "")  # time travel found the past
    assert "resolved" in out and "every check holds" in out + result.stderr
    assert sorted(p.name for p in repo.iterdir()) == [".venv"]  # nothing left in the repo folder
