"""The JavaScript runtime yt-dlp needs for YouTube's challenges.

YouTube hides working media URLs behind JavaScript challenges; yt-dlp solves
them with the ``yt-dlp-ejs`` scripts run by a JavaScript runtime, and drops every
format whose challenge it cannot solve ("Requested format is not available").
The project depends on the ``deno`` wheel from PyPI, whose binary lands in the
virtual environment's scripts folder. yt-dlp looks only for deno unless told
otherwise, and only on PATH and in the scripts folder of the interpreter it
runs under, so harvest passes the binary it finds explicitly: a venv run
without activation (``.venv/bin/python -m harvest``) then still finds it.
Other runtimes (node, bun, quickjs) are used only when named with
``--js-runtimes``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yt_dlp  # noqa: F401 - fills yt-dlp's registry of supported runtimes
from yt_dlp.globals import supported_js_runtimes, supported_remote_components

DEFAULT_RUNTIME = "deno"


def find_deno() -> str | None:
    """deno beside the running interpreter (the venv's scripts folder), else on PATH."""
    beside = Path(sys.executable).parent / "deno"
    if beside.is_file():
        return str(beside)
    return shutil.which("deno")


def parse_runtime(spec: str) -> tuple[str, str | None]:
    """``RUNTIME[:PATH]`` as yt-dlp's ``--js-runtimes`` takes it; ValueError names a bad one."""
    name, _, path = spec.partition(":")
    name = name.strip().lower()
    if name not in supported_js_runtimes.value:
        raise ValueError(f"--js-runtimes {spec}: unknown runtime; use one of "
                         f"{', '.join(supported_js_runtimes.value)}")
    return name, path.strip() or None


def parse_component(spec: str) -> str:
    """A ``--remote-components`` value yt-dlp supports; ValueError names a bad one."""
    if spec not in supported_remote_components.value:
        raise ValueError(f"--remote-components {spec}: unknown component; use one of "
                         f"{', '.join(supported_remote_components.value)}")
    return spec


def js_runtimes_param(extra: tuple[tuple[str, str | None], ...] = ()) -> dict[str, dict[str, str]]:
    """yt-dlp's ``js_runtimes``: deno where found, plus the runtimes the user named."""
    runtimes: dict[str, dict[str, str]] = {}
    deno = find_deno()
    runtimes[DEFAULT_RUNTIME] = {"path": deno} if deno else {}
    for name, path in extra:
        runtimes[name] = {"path": path} if path else {}
    return runtimes
