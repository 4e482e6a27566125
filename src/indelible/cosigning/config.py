"""The witnesses file: one `<witness verifier key> <URL prefix>` per line, `#` comments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from indelible.config import ConfigError
from indelible.proofs import CosignerKey, ProofError


class WitnessConfigError(ConfigError):
    """The witnesses file cannot be used; the message names the line."""


@dataclass(frozen=True)
class ConfiguredWitness:
    key: CosignerKey
    url: str  # submission prefix; requests go to <url>/add-checkpoint

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def key_text(self) -> str:
        return self.key.key_text()


def parse_witnesses(text: str, where: str = "witnesses file") -> tuple[ConfiguredWitness, ...]:
    found: list[ConfiguredWitness] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise WitnessConfigError(f"{where} line {number}: expected '<witness verifier key> "
                                     f"<URL prefix>', got {len(fields)} field(s)")
        try:
            key = CosignerKey.from_key_text(fields[0])
        except ProofError as e:
            raise WitnessConfigError(f"{where} line {number}: {e}") from e
        url = urlsplit(fields[1])
        if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
            raise WitnessConfigError(f"{where} line {number}: URL prefix {fields[1]!r} must be "
                                     "http(s)://host[:port][/path]")
        if any(w.key == key for w in found):
            raise WitnessConfigError(f"{where} line {number}: witness {key.name} is listed twice")
        found.append(ConfiguredWitness(key, fields[1].rstrip("/")))
    return tuple(found)


def load_witnesses(path: Path) -> tuple[ConfiguredWitness, ...]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise WitnessConfigError(f"cannot read witnesses file {path}: {e}") from e
    return parse_witnesses(text, str(path))
