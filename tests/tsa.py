"""A real RFC 3161 Time Stamping Authority on 127.0.0.1: OpenSSL's `ts -reply` behind a
small HTTP server, with a CA and a TSA certificate (extended key usage timeStamping) made
for the test session. Never the network.

Import the fixture into a test module: `from tests.tsa import local_tsa  # noqa: F401`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_EXTENSIONS = """\
[ca_ext]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[tsa_ext]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,nonRepudiation
extendedKeyUsage=critical,timeStamping
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""

_TS_CONFIG = """\
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = {dir}/serial
signer_cert = {dir}/tsa.pem
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tsa_certificates(directory: Path) -> None:
    """ca.pem/ca.key (self-signed root) and tsa.pem/tsa.key (timeStamping), EC P-256."""
    (directory / "ext.cnf").write_text(_EXTENSIONS)
    (directory / "ts.cnf").write_text(_TS_CONFIG.format(dir=directory))
    (directory / "serial").write_text("01\n")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650", "-subj", "/CN=Test TSA Root",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA", cwd=directory)
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "tsa.pem", "-days", "3650", "-extfile", "ext.cnf",
             "-extensions", "tsa_ext", cwd=directory)


@dataclass
class LocalTsa:
    url: str
    ca_file: Path
    directory: Path
    up: bool = True  # False: answers 503, as a TSA that is down
    requests: int = 0


def _handler(tsa: LocalTsa, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not tsa.up:
                self.send_response(503)
                self.end_headers()
                return
            with lock, tempfile.TemporaryDirectory(dir=tsa.directory) as tmp:
                tsa.requests += 1
                Path(tmp, "q.tsq").write_bytes(body)
                done = subprocess.run(["openssl", "ts", "-reply", "-config",
                                       str(tsa.directory / "ts.cnf"), "-queryfile", "q.tsq",
                                       "-out", "r.tsr"], cwd=tmp, capture_output=True, timeout=60)
                reply = Path(tmp, "r.tsr").read_bytes() if done.returncode == 0 else None
            if reply is None:
                self.send_response(400)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def local_tsa(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to run the local TSA")
    directory = tmp_path_factory.mktemp("tsa")
    make_tsa_certificates(directory)
    tsa = LocalTsa("", directory / "ca.pem", directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(tsa, threading.Lock()))
    tsa.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tsa
    server.shutdown()
    server.server_close()
