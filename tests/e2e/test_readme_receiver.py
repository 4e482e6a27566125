"""The README's one-line receiver works as written: it verifies a signed event with the
reference library and prints it, and refuses one signed with another secret."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from indelible.outbound.webhooks import headers, new_secret
from indelible.runtime import free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def _receiver_line() -> str:
    section = README.read_text().split("## Outbound: the Notification Hub and the RAG feed")[1]
    line = next(l for l in section.splitlines() if "serve_forever()" in l)
    return re.sub(r" 9000 &$", "", line).replace(".venv/bin/python", "python3", 1)


def test_the_readme_receiver_verifies_and_prints_each_event(tmp_path):
    import os
    import sys

    secret, port = new_secret(), free_port()
    command = _receiver_line().replace("python3", sys.executable, 1) + f" {port}"
    out = open(tmp_path / "out", "w")
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], stdout=out,
                               stderr=subprocess.DEVNULL, env={**os.environ, "WHSEC": secret})
    try:
        body = b'{"type":"discrepancy.resolved"}'
        for _ in range(100):
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/feed", content=body,
                                    headers=headers([secret], "msg_ok", int(time.time()), body))
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert answer.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"http://127.0.0.1:{port}/feed", content=body,
                       headers=headers([new_secret()], "msg_forged", int(time.time()), body))
    finally:
        process.kill()
        process.wait(10)
        out.close()
    printed = (tmp_path / "out").read_text()
    assert 'msg_ok {"type":"discrepancy.resolved"}' in printed and "msg_forged" not in printed
