"""Finding the real binaries (promtool, amtool, prometheus, alertmanager, chromium) for tests.

On a laptop without them a test skips; in CI (`CI=true`) a missing binary fails the
test, so a green CI run always means the real binary ran.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Debian installs some tools outside PATH for non-root users.
_EXTRA_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin")


def require_binary(name: str, hint: str = "Debian: apt-get install prometheus prometheus-alertmanager") -> str:
    path = shutil.which(name) or next((p for d in _EXTRA_DIRS if os.access(p := os.path.join(d, name), os.X_OK)), None)
    if path:
        return path
    message = f"{name} not found ({hint})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must have it", pytrace=False)
    pytest.skip(message)
