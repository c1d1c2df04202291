"""Suite-wide fixtures.

The embedded model is assembled and converted once per suite run into a
cache under ``.pytest_cache`` (fresh in CI, reused between local runs), and
every subprocess the tests start inherits that cache through the
environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The Ray tests' clusters live on this machine, and their traffic must stay on loopback: Ray turns
# "127.0.0.1" into the default route's address unless told it is no multi-machine cluster (read
# when ray is imported, and inherited by the drivers the tests start).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_AUDIO = REPO / "examples" / "espeak_lecture.opus"
EXAMPLE_TRANSCRIPT = REPO / "examples" / "espeak_lecture.txt"


def pytest_configure(config: pytest.Config) -> None:
    if "WHISPER_HARVEST_CACHE" not in os.environ:
        cache = REPO / ".pytest_cache" / "whisper-harvest-cache"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["WHISPER_HARVEST_CACHE"] = str(cache)
    # Tests never reach the Hub; fail fast instead of retrying a dead network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    # Stage subprocesses import this checkout's packages, whatever their cwd (and even
    # when the venv's editable install points at another worktree).
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


@pytest.fixture(scope="session")
def example_audio() -> Path:
    return EXAMPLE_AUDIO


@pytest.fixture(scope="session")
def python() -> str:
    """The interpreter that runs the stage CLIs in subprocesses."""
    return sys.executable
