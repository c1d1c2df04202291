"""The user cache where assembled and converted models live.

Models are built once (assembled from wheels, converted between formats) and
reused by every workspace, so they live outside the workspace, in
``$WHISPER_HARVEST_CACHE`` or ``~/.cache/whisper-harvest``. A model folder is
built under a temp name and published with ``whcore.publish.publish_folder``, so a
SIGKILL leaves either no model or a whole one; ``build_lock`` keeps two processes
from building the same model at once (the second waits, then finds it done).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from whcore import lock

CACHE_ENV = "WHISPER_HARVEST_CACHE"


def cache_dir() -> Path:
    """The model cache root: ``$WHISPER_HARVEST_CACHE`` or ``~/.cache/whisper-harvest``."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "whisper-harvest"
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_lock(target: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock named after ``target``, held while it is built (blocks until free)."""
    target = Path(target)
    return lock.hold(target.with_name(f".{target.name}.lock"), wait=True)
