"""``python -m harvest doctor``: is this machine ready for a long crawl?

Checks what a real YouTube crawl needs, without touching YouTube: yt-dlp's
version and age (YouTube changes often, and an old yt-dlp fails in confusing
ways), a JavaScript runtime yt-dlp will use, the ``yt-dlp-ejs`` challenge
scripts it accepts, ffmpeg, and the cookies the user means to pass. Each
check is one line; a missing piece names its fix, and the exit code is 1 if
anything is missing.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from yt_dlp.version import __version__ as YTDLP_VERSION

from whcore.media import find_ffmpeg

from harvest.jsruntime import js_runtimes_param

MAX_YTDLP_AGE_DAYS = 90  # older releases often lag behind YouTube's changes
UPGRADE = 'pip install -U yt-dlp yt-dlp-ejs (or rerun `make setup`)'


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str  # what was found, or what is missing and how to fix it

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'MISSING'} {self.name}: {self.detail}"


def check_ytdlp(today: date | None = None) -> Check:
    """yt-dlp's version, and whether it is recent enough to trust against YouTube."""
    try:
        released = date(*map(int, YTDLP_VERSION.split(".")[:3]))
    except ValueError:
        return Check("yt-dlp", True, f"{YTDLP_VERSION} (release date unknown)")
    age = ((today or date.today()) - released).days
    if age > MAX_YTDLP_AGE_DAYS:
        return Check("yt-dlp", False, f"{YTDLP_VERSION} is {age} days old; YouTube changes often: {UPGRADE}")
    return Check("yt-dlp", True, f"{YTDLP_VERSION} ({max(age, 0)} days old)")


def check_js_runtime(extra: tuple[tuple[str, str | None], ...] = ()) -> Check:
    """A JavaScript runtime yt-dlp will actually use (found, and a supported version)."""
    from yt_dlp.globals import supported_js_runtimes

    found = []
    for name, config in js_runtimes_param(extra).items():
        runtime = supported_js_runtimes.value[name](path=config.get("path"))
        info = runtime.info
        if info is not None and info.supported:
            found.append(f"{info.name} {info.version} at {info.path}")
        elif info is not None:
            found.append(f"{info.name} {info.version} at {info.path} is too old")
    usable = [entry for entry in found if not entry.endswith("too old")]
    if usable:
        return Check("JavaScript runtime", True, usable[0])
    return Check("JavaScript runtime", False, "; ".join(found) or "no deno found beside Python or on PATH: "
                 "pip install deno (rerun `make setup`), or pass --js-runtimes node:/path/to/node")


def check_challenge_scripts() -> Check:
    """The yt-dlp-ejs solver scripts, in the version and with the hashes this yt-dlp accepts."""
    try:
        import yt_dlp_ejs.yt.solver
        from yt_dlp.extractor.youtube.jsc._builtin.vendor import HASHES, VERSION
    except ImportError as error:
        return Check("challenge scripts", False, f"{error.name or 'yt-dlp-ejs'} is not installed: "
                     "pip install yt-dlp-ejs (rerun `make setup`)")
    installed = getattr(yt_dlp_ejs, "version", "?")
    if installed.split(".")[:2] != VERSION.split(".")[:2]:
        return Check("challenge scripts", False, f"yt-dlp-ejs {installed}, but this yt-dlp needs {VERSION}: "
                     f"pip install 'yt-dlp-ejs=={VERSION}'")
    core = hashlib.sha3_512(yt_dlp_ejs.yt.solver.core().encode("utf-8")).hexdigest()
    if core != HASHES.get("yt.solver.core.min.js"):
        return Check("challenge scripts", False, f"yt-dlp-ejs {installed} core script hash differs from "
                     f"what yt-dlp expects: {UPGRADE}")
    return Check("challenge scripts", True, f"yt-dlp-ejs {installed}")


def check_ffmpeg() -> Check:
    found = find_ffmpeg()
    if found is None:
        return Check("ffmpeg", False, "not found: apt install ffmpeg, or pip install imageio-ffmpeg")
    try:
        first = subprocess.run([found, "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return Check("ffmpeg", False, f"{found} does not run ({error}): reinstall it")
    return Check("ffmpeg", True, f"{found} ({' '.join(first.split()[:3])})")


def check_cookies(cookies: Path | None, browser: tuple | None) -> Check | None:
    """Cookies the user means to pass: readable and non-empty. None when none are given."""
    if cookies is None and browser is None:
        return None
    from yt_dlp.cookies import YoutubeDLCookieJar, extract_cookies_from_browser

    try:
        if cookies is not None:
            jar = YoutubeDLCookieJar(str(cookies))
            jar.load(ignore_discard=True, ignore_expires=True)
            where = str(cookies)
        else:
            jar = extract_cookies_from_browser(*browser)
            where = f"browser {browser[0]}"
    except Exception as error:  # noqa: BLE001 - any reason a jar cannot be read is the user's to fix
        return Check("cookies", False, f"cannot read them ({' '.join(str(error).split())}): export a "
                     "Netscape cookies.txt again, or close the browser and retry")
    youtube = [cookie for cookie in jar if cookie.domain.endswith("youtube.com")]
    if not youtube:
        return Check("cookies", False, f"{where} holds no youtube.com cookies: sign in to YouTube in "
                     "that browser first, then export again")
    return Check("cookies", True, f"{where}: {len(youtube)} youtube.com cookies")


def run_checks(cookies: Path | None = None, browser: tuple | None = None,
               js_runtimes: tuple[tuple[str, str | None], ...] = ()) -> list[Check]:
    checks = [check_ytdlp(), check_js_runtime(js_runtimes), check_challenge_scripts(), check_ffmpeg()]
    cookie_check = check_cookies(cookies, browser)
    if cookie_check is not None:
        checks.append(cookie_check)
    return checks
