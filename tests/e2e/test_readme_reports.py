"""The README's report walk, run as written on a fresh data directory: a quarterly report
asked over HTTP, its PDF downloaded and tied to its ledger entry by `indelible report verify`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from indelible.runtime import free_port
from tests.integration.report_helpers import pdf_text

from .cli_helpers import cli_env
from .test_http import _interrupt, _start

README = Path(__file__).resolve().parents[2] / "README.md"


def _walk() -> str:
    text = README.read_text()
    section = text[text.index("## Compliance reports"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_report_walk_runs_verbatim(tmp_path):
    env = cli_env(tmp_path / "data", None)  # the embedded servers, as a new user gets them
    env.pop("INDELIBLE_ORIGIN")
    env["INDELIBLE_INGEST_ENABLED"] = "false"  # the walk does not use NATS: start faster
    process, base = _start(env, tmp_path / "service.log", port=free_port())
    repo = tmp_path / "repo"
    (repo / ".venv").mkdir(parents=True)
    (repo / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    script = _walk().replace("http://127.0.0.1:8080", base)
    script += '\necho "PDF=$WORK/report.pdf"\n'
    try:
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=repo, env=env,
                                capture_output=True, text=True, timeout=400)
    finally:
        assert _interrupt(process) == 0
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert '"status":"done"' in out and "OK: report.pdf is report.pdf of report" in out
    pdf = Path(re.search(r"PDF=(\S+)", out).group(1)).read_bytes()
    text = pdf_text(pdf)
    assert "audit-demo" in text and "Charts" in text and "Verification" in text
    assert "3 discrepancies" in text
