"""Every command the package offers works with what the package installs (issue 9, item 4)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# Imports every module of the package while the test-only distributions cannot be imported.
_PROBE = """
import importlib, pkgutil, sys
blocked = set(sys.argv[1:])
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in blocked:
            raise ImportError(f"{name} is installed only by the test extra")
sys.meta_path.insert(0, Block())
import indelible
for info in pkgutil.walk_packages(indelible.__path__, "indelible."):
    importlib.import_module(info.name)
"""


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower().replace("-", "_") for r in requirements}


def test_no_module_of_the_package_needs_a_test_only_dependency():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    test_only = _names(project["optional-dependencies"]["test"]) - _names(project["dependencies"])
    assert "pytest" in test_only
    result = subprocess.run([sys.executable, "-c", _PROBE, *sorted(test_only)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_command_tells_its_version():
    result = subprocess.run([sys.executable, "-m", "indelible", "--version"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and re.fullmatch(r"indelible \d+\.\d+\.\d+\n", result.stdout)
