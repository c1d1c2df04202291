"""A loopback HTTP server playing YouTube for the harvest tests.

It serves the JSON the ``ytfake`` extractor reads (video metadata, and
playlists and channel tabs page by page, like YouTube's continuations), media
with HTTP Range support (optionally throttled, to kill a download half way, or
answering 503 once), and subtitles, and it logs every request so tests can
assert what a rerun did *not* fetch. Failures are YouTube's own: a listing page
answering HTTP 429, video pages answering 429, the bot check and "try again
later" (as the extractor raises them), watch-page data that fails to load.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CC_LICENSE = "Creative Commons Attribution license (reuse allowed)"
PRIVATE_ERROR = "Private video. Sign in if you've been granted access to this video"
REMOVED_ERROR = "This video has been removed by the uploader"
MEMBERS_ERROR = "Join this channel to get access to members-only content like this video, and other exclusive perks."
# YouTube's wording after yt-dlp's own additions (extractor/youtube/_video.py).
BOT_CHECK_ERROR = ("Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies for the "
                   "authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp")
TRY_LATER_ERROR = ("This content isn't available, try again later. The current session has been rate-limited "
                   "by YouTube for up to an hour. It is recommended to use `-t sleep` to add a delay between "
                   "video requests to avoid exceeding the rate limit.")
UPCOMING_ERROR = "This live event will begin in 3 hours."
PAGE_ENTRIES = 30  # flat entries per listing page (YouTube sends 30 per continuation)
TRANSLATIONS = ("fr", "de", "es", "ja")  # machine-translated caption languages offered
THROTTLE_CHUNK_BYTES = 8 * 1024
THROTTLE_PAUSE_S = 0.1  # -> about 80 KB/s for throttled media


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class FakeTube:
    """The catalogue the server serves; tests fill it before (or between) runs."""

    videos: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> metadata JSON
    playlists: dict[str, list[str]] = field(default_factory=dict)  # id -> video ids
    channels: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # UC id -> tab -> video ids
    handles: dict[str, str] = field(default_factory=dict)  # @handle -> UC id
    media: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes
    subs: dict[str, str] = field(default_factory=dict)  # file name -> WebVTT text
    throttled: set[str] = field(default_factory=set)  # media names served slowly
    fail_once: set[str] = field(default_factory=set)  # media names answering 503 on their next request
    failing_pages: dict[str, int] = field(default_factory=dict)  # list id -> page number answering 429
    blocked_videos: set[str] = field(default_factory=set)  # video ids whose watch page answers 429
    feeds: dict[str, str] = field(default_factory=dict)  # name -> RSS text served at /ytfake/feed/<name>
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_video(self, video_id: str, audio: bytes | None, *, title: str | None = None,
                  license: str | None = CC_LICENSE, error: str | None = None,
                  manual_subs: dict[str, str] | None = None, auto_subs: dict[str, str] | None = None,
                  live_status: str = "not_live", availability: str = "public", muxed_only: bool = False,
                  watch_data: bool = True, translated_subs: bool = False) -> None:
        """One video. ``watch_data=False``: the watch page's initial data fails (no licence row).

        ``translated_subs``: automatic captions also list machine translations (``tlang=``).
        """
        meta: dict[str, Any] = {"title": title or f"Video {video_id}", "uploader": "Fake Uploader",
                                "channel": "Fake Channel", "channel_id": "UCfake0000", "duration": 3,
                                "upload_date": "20240102", "live_status": live_status,
                                "availability": availability, "muxed_only": muxed_only,
                                "watch_data": watch_data, "translated_subs": translated_subs}
        if license:
            meta["license"] = license
        if error:
            meta = {"error": error, "live_status": live_status, "availability": availability}
        meta["title"] = meta.get("title") or title or f"Video {video_id}"
        meta["manual_subs"] = sorted(manual_subs or {})
        meta["auto_subs"] = sorted(auto_subs or {})
        self.videos[video_id] = meta
        if audio is not None:
            if muxed_only:
                self.media[f"{video_id}-muxed.mp4"] = audio
            else:
                self.media[f"{video_id}.webm"] = audio
                self.media[f"{video_id}-muxed.mp4"] = b"muxed video must never be requested"
        for lang, text in (manual_subs or {}).items():
            self.subs[f"{video_id}.{lang}.vtt"] = text
        for lang, text in (auto_subs or {}).items():
            self.subs[f"{video_id}.{lang}.auto.vtt"] = text

    def add_channel(self, channel_id: str, handle: str, tabs: dict[str, list[str]]) -> None:
        """A channel with tabs (``videos``, ``streams``, ``shorts``) of video ids."""
        self.channels[channel_id] = tabs
        self.handles[handle] = channel_id

    def entries_of(self, list_id: str) -> list[str] | None:
        """Video ids of a playlist id or a ``UC...:tab`` channel tab."""
        if list_id in self.playlists:
            return self.playlists[list_id]
        channel, _, tab = list_id.partition(":")
        return self.channels.get(channel, {}).get(tab)

    def paths(self, prefix: str) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests if r.path.startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    tube: FakeTube

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        with self.tube.lock:
            self.tube.requests.append(Request("GET", self.path, self.headers.get("Range")))
        route = re.match(r"/ytfake/(api/video|api/browse|api/channel|media|subs|feed)/([^?]+)(?:\?(.*))?", self.path)
        if route is None:
            return self._send(404, b"not found", "text/plain")
        kind, name, query = route.groups()
        if kind == "feed" and name in self.tube.feeds:
            return self._send(200, self.tube.feeds[name].encode(), "application/rss+xml")
        if kind == "api/video" and name in self.tube.videos:
            if name in self.tube.blocked_videos:
                return self._send(429, b"Too Many Requests", "text/plain")
            return self._send(200, json.dumps(self.tube.videos[name]).encode(), "application/json")
        if kind == "api/browse":
            return self._send_page(name, int(re.search(r"page=(\d+)", query or "page=1").group(1)))
        if kind == "api/channel":
            channel = self.tube.handles.get(name, name)
            if channel not in self.tube.channels:
                return self._send(404, b"not found", "text/plain")
            body = {"id": channel, "title": f"Channel {channel}", "tabs": list(self.tube.channels[channel])}
            return self._send(200, json.dumps(body).encode(), "application/json")
        if kind == "media" and name in self.tube.media:
            with self.tube.lock:
                failing = name in self.tube.fail_once
                self.tube.fail_once.discard(name)
            if failing:
                return self._send(503, b"Service Unavailable", "text/plain")
            return self._send_media(name)
        if kind == "subs" and name in self.tube.subs:
            return self._send(200, self.tube.subs[name].encode(), "text/vtt")
        return self._send(404, b"not found", "text/plain")

    def _send_page(self, list_id: str, page: int) -> None:
        """One continuation page of a playlist or channel tab: flat entries and the next page's number."""
        ids = self.tube.entries_of(list_id)
        if ids is None:
            return self._send(404, b"not found", "text/plain")
        if self.tube.failing_pages.get(list_id) == page:
            return self._send(429, b"Too Many Requests", "text/plain")
        start = (page - 1) * PAGE_ENTRIES
        entries = []
        for video_id in ids[start:start + PAGE_ENTRIES]:
            meta = self.tube.videos.get(video_id, {})
            entries.append({"id": video_id, "title": meta.get("title", video_id),
                            "live_status": meta.get("live_status"), "availability": meta.get("availability"),
                            "duration": meta.get("duration")})
        body = {"entries": entries, "next": page + 1 if start + PAGE_ENTRIES < len(ids) else None}
        return self._send(200, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_media(self, name: str) -> None:
        data = self.tube.media[name]
        requested = self.headers.get("Range")
        start = 0
        match = re.match(r"bytes=(\d+)-(\d*)", requested or "")
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Type", "audio/webm")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        slow = name in self.tube.throttled
        step = THROTTLE_CHUNK_BYTES if slow else len(body) or 1
        try:
            for offset in range(0, len(body), step):
                self.wfile.write(body[offset:offset + step])
                self.wfile.flush()
                if slow:
                    time.sleep(THROTTLE_PAUSE_S)
        except (BrokenPipeError, ConnectionResetError):
            pass


class FakeTubeServer:
    """Run a FakeTube on 127.0.0.1 in a background thread."""

    def __init__(self, tube: FakeTube) -> None:
        handler = type("Handler", (_Handler,), {"tube": tube})
        self.tube = tube
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/ytfake"

    def watch_url(self, video_id: str) -> str:
        return f"{self.base}/watch?v={video_id}"

    def playlist_url(self, playlist_id: str) -> str:
        return f"{self.base}/playlist?list={playlist_id}"

    def channel_url(self, channel_id: str, tab: str = "") -> str:
        return f"{self.base}/channel/{channel_id}" + (f"/{tab}" if tab else "")

    def handle_url(self, handle: str, tab: str = "") -> str:
        return f"{self.base}/{handle}" + (f"/{tab}" if tab else "")

    def __enter__(self) -> "FakeTubeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
