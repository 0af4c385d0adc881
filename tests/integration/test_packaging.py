"""The package as `pip install .` and the Docker image build it: the wheel carries the
registry and its schema from the top of the repository, and an installed copy finds them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (found,) = out.glob("crypto_api_exporter-*.whl")
    return found


def test_wheel_carries_the_registry_and_its_schema(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {"exporter/providers.yaml", "exporter/providers.schema.json"} <= names
        assert z.read("exporter/providers.yaml") == (REPO / "providers.yaml").read_bytes()
        assert z.read("exporter/providers.schema.json") == (REPO / "providers.schema.json").read_bytes()
        assert any(n.endswith("LICENSE") for n in names)


def test_installed_copy_uses_its_own_registry(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("PROVIDERS_FILE", None)
    where = subprocess.run(
        [sys.executable, "-c", "from exporter.config import DEFAULT_FILE; print(DEFAULT_FILE)"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    assert where.stdout.strip() == str(site / "exporter" / "providers.yaml"), where.stderr
    check = subprocess.run([sys.executable, "-m", "exporter", "check-config"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert check.returncode == 0, check.stderr
    assert re.search(r": OK, [0-9]+ providers, [0-9]+ endpoints", check.stdout), check.stdout
