"""yt-dlp as a library: extract and download one entry at a time.

Why a per-entry loop instead of ``ydl.download([playlist])``: harvest must see
every entry between listing and download to skip finished, refused and
unavailable ids before any request, to record decisions, and to probe and hash
the file before it counts. yt-dlp still does what it is best at: extraction,
format choice, retries with backoff, ``.part`` resume over HTTP Range, cookies,
JavaScript challenges and polite sleeps.

Format ``bestaudio/best``: the best audio-only stream, else (some videos offer
only a muxed stream, e.g. YouTube's itag 18) the best stream with audio;
``segment`` decodes any container. Downloads land in ``sources/.partial/`` as
``<source_id>.f<format_id>.<ext>``: a rerun that picks another format must not
resume a ``.part`` file of a different stream by HTTP Range. harvest moves the
finished file to ``sources/audio/<source_id>.<ext>`` itself, after the probe.
Names come from ids only; titles never reach the file system.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm
from yt_dlp import YoutubeDL
from yt_dlp.utils import DownloadCancelled

from whcore.media import find_ffmpeg

from harvest.context import HarvestContext
from harvest.jsruntime import js_runtimes_param
from harvest.license import LicenseGate
from harvest.subtitles import SUBS_DIR_NAME

PARTIAL_DIR_NAME = ".partial"  # under sources/: downloads until probed and moved to audio/
SOCKET_TIMEOUT_S = 30
MAX_BACKOFF_S = 60.0
MAX_EXTRACTOR_RETRIES = 3
AUDIO_FORMAT = "bestaudio/best"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
PLAYLIST_TYPES = frozenset({"playlist", "multi_video"})
REFERENCE_TYPES = frozenset({"url", "url_transparent"})
# Fields of a url_transparent entry that must not override the extracted video (as in yt-dlp).
TRANSPARENT_KEEP = frozenset({"_type", "url", "ie_key", "id", "extractor", "extractor_key"})
FLAT_FIELDS = ("live_status", "availability")  # what a flat entry already says about the video


def backoff_s(n: int) -> float:
    """Exponential backoff before retry ``n`` (0-based): 1, 2, 4, ... seconds, capped.

    yt-dlp calls its ``retry_sleep_functions`` with the keyword ``n``.
    """
    return min(2.0 ** n, MAX_BACKOFF_S)


def clean_error(error: BaseException) -> str:
    """yt-dlp's own reason, as one line without colour codes or the ``ERROR:`` prefix."""
    text = ANSI_ESCAPE.sub("", str(error)).strip()
    text = re.sub(r"^ERROR:\s*", "", text)
    return " ".join(text.split()) or type(error).__name__


class YtdlpLogger:
    """Routes yt-dlp's messages into the run journal.

    yt-dlp sends its ordinary progress lines to ``debug``. Its errors become
    exceptions that harvest logs with the entry id, so here they stay debug
    lines to avoid logging each failure twice.
    """

    def __init__(self, log: Any) -> None:
        self._log = log

    def debug(self, message: str) -> None:
        self._log.debug(f"yt-dlp: {ANSI_ESCAPE.sub('', message)}")

    info = debug

    def warning(self, message: str) -> None:
        self._log.warning(f"yt-dlp: {ANSI_ESCAPE.sub('', message)}")

    def error(self, message: str) -> None:
        self._log.debug(f"yt-dlp: {ANSI_ESCAPE.sub('', message)}")


class ByteProgress:
    """One tqdm bar for the bytes of the download in progress; also the stop switch.

    Worker threads cannot be interrupted from outside, so on Ctrl-C (or when the
    circuit breaker trips) the main thread sets ``stop`` and the next progress
    report ends the download (its ``.part`` file stays for the rerun to resume).
    """

    def __init__(self, stop: threading.Event) -> None:
        self._bar: tqdm | None = None
        self._stop = stop

    def __call__(self, status: dict[str, Any]) -> None:
        if self._stop.is_set():
            raise DownloadCancelled("harvest was interrupted")
        if status.get("status") == "downloading":
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            if self._bar is None:
                name = status.get("info_dict", {}).get("source_id", "")
                self._bar = tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False,
                                 disable=None)
            if total and self._bar.total != total:
                self._bar.total = total
            self._bar.update(status.get("downloaded_bytes", 0) - self._bar.n)
        elif self._bar is not None:
            self._bar.close()
            self._bar = None


def ytdlp_params(ctx: HarvestContext, progress: ByteProgress, local_files: bool) -> dict[str, Any]:
    """yt-dlp options for a polite, resumable, audio-only, id-named download.

    ``local_files`` enables ``file://`` URLs, only for SOURCEs the user named as
    local files: a remote feed whose enclosure says ``file:///etc/...`` must not
    copy a local file into the corpus.
    """
    options = ctx.options
    partial = str(ctx.workspace.sources_dir / PARTIAL_DIR_NAME)
    params: dict[str, Any] = {
        "format": AUDIO_FORMAT,
        "outtmpl": {"default": "%(source_id)s.f%(format_id)s.%(ext)s", "subtitle": "%(source_id)s.%(ext)s"},
        "paths": {"home": partial, "temp": partial,
                  "subtitle": str(ctx.workspace.sources_dir / SUBS_DIR_NAME)},
        "restrictfilenames": True,
        "windowsfilenames": True,
        "continuedl": True,
        "retries": options.retries,
        "fragment_retries": options.retries,
        "extractor_retries": min(options.retries, MAX_EXTRACTOR_RETRIES),
        "retry_sleep_functions": {"http": backoff_s, "fragment": backoff_s, "extractor": backoff_s},
        "socket_timeout": SOCKET_TIMEOUT_S,
        "logger": YtdlpLogger(ctx.log),
        "noprogress": True,
        "progress_hooks": [progress],
        "enable_file_urls": local_files,
        "ignoreerrors": False,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "js_runtimes": js_runtimes_param(options.js_runtimes),
        "remote_components": list(options.remote_components),
    }
    location = find_ffmpeg()
    if location:
        params["ffmpeg_location"] = location
    if not options.allow_any_license:
        params["match_filter"] = LicenseGate(options.accepted_licenses).match_filter()
    if options.sleep_requests_s > 0 and not local_files:
        params["sleep_interval_requests"] = options.sleep_requests_s
    if options.sleep_s > 0 and not local_files:
        params.update(sleep_interval=options.sleep_s, max_sleep_interval=2 * options.sleep_s,
                      sleep_interval_subtitles=options.sleep_s)
    if options.cookies is not None:
        params["cookiefile"] = str(options.cookies)
    if options.cookies_from_browser is not None:
        params["cookiesfrombrowser"] = options.cookies_from_browser
    return params


@dataclass(frozen=True)
class EntryRef:
    """An entry known by reference (flat listing) or already extracted (``info``)."""

    url: str
    ie_key: str | None = None
    video_id: str | None = None
    title: str = ""
    info: dict[str, Any] | None = None  # full extraction, when the listing already did it
    overrides: dict[str, Any] | None = None  # a url_transparent entry's fields (feed titles, ...)
    flat: dict[str, Any] = field(default_factory=dict)  # live_status, availability of a flat entry
    local: bool = False  # listed from a SOURCE the user gave as a local file

    @property
    def key(self) -> tuple[str, str] | None:
        if self.info is not None and self.info.get("id") is not None:
            return (self.info.get("extractor_key") or self.info.get("extractor", ""), str(self.info["id"]))
        if self.ie_key and self.video_id is not None:
            return (self.ie_key, str(self.video_id))
        return None


def ref_from_entry(entry: Any, local: bool = False) -> EntryRef | None:
    """An EntryRef for one raw playlist entry (flat reference or full info)."""
    if not isinstance(entry, dict):
        return None
    flat = {name: entry[name] for name in FLAT_FIELDS if entry.get(name)}
    if entry.get("_type") in REFERENCE_TYPES:
        overrides = None
        if entry["_type"] == "url_transparent":
            overrides = {k: v for k, v in entry.items() if v is not None and k not in TRANSPARENT_KEEP}
        return EntryRef(url=entry["url"], ie_key=entry.get("ie_key"), video_id=entry.get("id"),
                        title=entry.get("title") or "", overrides=overrides, flat=flat, local=local)
    url = entry.get("webpage_url") or entry.get("original_url") or entry.get("url") or ""
    return EntryRef(url=url, title=entry.get("title") or "", info=entry, flat=flat, local=local)


class Fetcher:
    """One YoutubeDL instance (not thread-safe: one Fetcher per worker thread)."""

    def __init__(self, ctx: HarvestContext, stop: threading.Event | None = None,
                 local_files: bool = False) -> None:
        self._progress = ByteProgress(stop or threading.Event())
        self._ydl = YoutubeDL(ytdlp_params(ctx, self._progress, local_files))

    def close(self) -> None:
        self._ydl.close()

    def temp_key(self, url: str) -> tuple[str, str] | None:
        """(extractor, id) read from the URL alone, like yt-dlp's archive check: no request."""
        for key, extractor in getattr(self._ydl, "_ies", {}).items():
            if extractor.suitable(url):
                temp_id = extractor.get_temp_id(url)
                return (key, str(temp_id)) if temp_id is not None else None
        return None

    def return_type(self, ref: EntryRef) -> str | None:
        """What the extractor of ``ref`` returns: ``video``, ``playlist``, ``any`` or None."""
        if ref.ie_key:
            try:
                return getattr(self._ydl.get_info_extractor(ref.ie_key), "_RETURN_TYPE", None)
            except Exception:  # noqa: BLE001 - an unknown key says nothing
                return None
        for extractor in getattr(self._ydl, "_ies", {}).values():
            if extractor.suitable(ref.url):
                return getattr(extractor, "_RETURN_TYPE", None)
        return None

    def read(self, url: str, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of ``url`` through yt-dlp's networking (cookies, file:// rules)."""
        with self._ydl.urlopen(url) as response:
            return response.read(max_bytes + 1)

    def extract(self, url: str, ie_key: str | None = None) -> dict[str, Any]:
        """The extractor's raw result for ``url`` (no format choice, no download)."""
        info = self._ydl.extract_info(url, download=False, process=False, ie_key=ie_key)
        if info is None:
            raise RuntimeError(f"yt-dlp returned nothing for {url}")
        return info

    def download_audio(self, info: dict[str, Any], source_id: str) -> dict[str, Any]:
        """Choose the audio format and download it (no subtitles); returns yt-dlp's info."""
        return self._process(info, source_id, writesubtitles=False, writeautomaticsub=False)

    def download_subtitles(self, info: dict[str, Any], source_id: str, patterns: list[str],
                           automatic: bool) -> dict[str, Any]:
        """Fetch the subtitle tracks ``patterns`` select, no media; a failed track is only a warning.

        Run apart from the audio so a subtitle that cannot be fetched never costs
        the audio; the caller reads which requested tracks have no file.
        """
        return self._process(info, source_id, skip_download=True, writesubtitles=True,
                             writeautomaticsub=automatic, subtitleslangs=patterns, ignoreerrors=True)

    def _process(self, info: dict[str, Any], source_id: str, **overrides: Any) -> dict[str, Any]:
        params = self._ydl.params
        saved = {key: params.get(key) for key in overrides}
        params.update(overrides)
        try:
            return self._ydl.process_ie_result(dict(info, source_id=source_id), download=True)
        finally:
            params.update(saved)
