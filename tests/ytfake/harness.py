"""Helpers the harvest tests share: test tones made with ffmpeg, and running the CLI.

The CLI runs as a subprocess (``python -m harvest``) exactly as users run
it, with this folder on ``PYTHONPATH`` so yt-dlp loads the ``ytfake`` plugin
the ordinary way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = Path(__file__).resolve().parent
CLI_TIMEOUT_S = 60


def sine_audio(freq_hz: int, seconds: float = 2.0, fmt: str = "webm", codec: str = "libopus",
               bitrate: str = "48k") -> bytes:
    """A sine tone encoded by ffmpeg (bit-exact flags, so equal inputs give equal bytes)."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
               "-i", f"sine=frequency={freq_hz}:duration={seconds}", "-c:a", codec, "-b:a", bitrate,
               "-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", fmt, "-"]
    return subprocess.run(command, capture_output=True, check=True).stdout


def harvest_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def harvest_command(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "harvest", *map(str, args)]


def run_harvest(*args: str | os.PathLike) -> subprocess.CompletedProcess:
    """Run ``python -m harvest ARGS`` to completion; returns the finished process."""
    return subprocess.run(harvest_command(*args), cwd=REPO, env=harvest_env(), capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)


def journal_lines(workspace: Path, marker: str) -> list[str]:
    """Lines of the workspace log containing ``marker`` (e.g. ``"| DONE "``)."""
    path = workspace / "logs" / "log.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines() if marker in line]
