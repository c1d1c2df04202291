"""Where the ffmpeg binary comes from, decided once for every stage.

Debian's ffmpeg (with ffprobe) is preferred; otherwise the binary that
``imageio-ffmpeg`` ships through pip, so a machine without system packages
still decodes everything.
"""

from __future__ import annotations

import shutil
from functools import lru_cache

from whcore.errors import UserError


@lru_cache(maxsize=1)
def find_ffmpeg() -> str | None:
    """The ffmpeg on PATH, else imageio-ffmpeg's; None if neither exists."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def ffmpeg_executable() -> str:
    """The ffmpeg binary, or a UserError that says how to install one."""
    found = find_ffmpeg()
    if found is None:
        raise UserError("ffmpeg not found: install it (apt install ffmpeg) or `pip install imageio-ffmpeg`")
    return found
