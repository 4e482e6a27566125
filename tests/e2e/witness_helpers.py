"""Real witnesses for the tests: `indelible witness serve` subprocesses on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from indelible.proofs import CosignerKey
from indelible.runtime import free_port

from .cli_helpers import indelible


@dataclass
class RunningWitness:
    name: str
    key_file: Path
    state: Path
    logs: tuple[str, ...]
    key: CosignerKey
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RunningWitness:
        args = [sys.executable, "-m", "indelible", "witness", "serve", "--key",
                str(self.key_file), "--state", str(self.state), "--listen",
                f"127.0.0.1:{self.port}"]
        for vkey in self.logs:
            args += ["--log", vkey]
        with open(self.state.parent / f"{self.key_file.stem}.log", "a") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"witness {self.name} exited {self.process.returncode}")
            try:
                if httpx.get(self.url + "/", timeout=1).text.strip() == self.key.key_text():
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"witness {self.name} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def add_checkpoint(self, body: str) -> httpx.Response:
        return httpx.post(self.url + "/add-checkpoint", content=body.encode(), timeout=10)


def make_witness(tmp_path: Path, name: str, env: dict, *logs: str) -> RunningWitness:
    key_file = tmp_path / f"{name.replace('/', '_')}.key"
    result = indelible(env, "witness", "key", "generate", "--name", name, "--out", str(key_file))
    assert result.returncode == 0, result.stderr
    return RunningWitness(name, key_file, tmp_path / f"{key_file.stem}-state", logs,
                          CosignerKey.from_key_text(result.stdout.strip()))
