"""The README's bundle section, run as written right after the first walk it continues: an
exported bundle verifies offline (exit 0) and a flipped byte is named (exit 1)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from indelible.runtime import free_port

from .cli_helpers import cli_env
from .test_http import _interrupt, _start
from .test_readme_walk import README, _walk


def _bundle_section() -> str:
    text = README.read_text()
    section = text[text.index("## Evidence bundles"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_bundle_section_runs_verbatim_after_the_walk(tmp_path):
    port = free_port()
    env = cli_env(tmp_path / "data", None)
    env.pop("INDELIBLE_ORIGIN")
    process, base = _start(env, tmp_path / "service.log", port=port)
    repo = tmp_path / "repo"
    (repo / ".venv").mkdir(parents=True)
    (repo / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    script = (_walk() + _bundle_section()).replace("http://127.0.0.1:8080", base)
    try:
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=repo, env=env,
                                capture_output=True, text=True, timeout=400)
    finally:
        assert _interrupt(process) == 0
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert re.search(r"^INTACT: 4 entries", out, re.M), out  # opened, 2 moves, resolved
    flipped = re.search(r"flipped a byte of (entries/\d+\.json)", out).group(1)
    assert f"FAILED {flipped}" in out and "NOT INTACT" in out and "exit 1" in out
