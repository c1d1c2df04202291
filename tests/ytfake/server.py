"""A loopback HTTP server playing YouTube for the harvest tests.

It serves the JSON the ``ytfake`` extractor reads, media with HTTP Range
support (optionally throttled, to kill a download half way), and subtitles,
and it logs every request so tests can assert what a rerun did *not* fetch.
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
    channels: dict[str, list[str]] = field(default_factory=dict)  # id -> playlist ids
    media: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes
    subs: dict[str, str] = field(default_factory=dict)  # file name -> WebVTT text
    throttled: set[str] = field(default_factory=set)  # media names served slowly
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_video(self, video_id: str, audio: bytes | None, *, title: str | None = None,
                  license: str | None = CC_LICENSE, error: str | None = None,
                  manual_subs: dict[str, str] | None = None, auto_subs: dict[str, str] | None = None) -> None:
        meta: dict[str, Any] = {"title": title or f"Video {video_id}", "uploader": "Fake Uploader",
                                "channel": "Fake Channel", "channel_id": "UCfake0000", "duration": 3,
                                "upload_date": "20240102"}
        if license:
            meta["license"] = license
        if error:
            meta = {"error": error}
        meta["manual_subs"] = sorted(manual_subs or {})
        meta["auto_subs"] = sorted(auto_subs or {})
        self.videos[video_id] = meta
        if audio is not None:
            self.media[f"{video_id}.webm"] = audio
            self.media[f"{video_id}-muxed.mp4"] = b"muxed video must never be requested"
        for lang, text in (manual_subs or {}).items():
            self.subs[f"{video_id}.{lang}.vtt"] = text
        for lang, text in (auto_subs or {}).items():
            self.subs[f"{video_id}.{lang}.auto.vtt"] = text

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
        route = re.match(r"/ytfake/(api/video|api/playlist|api/channel|media|subs)/([^?]+)", self.path)
        if route is None:
            return self._send(404, b"not found", "text/plain")
        kind, name = route.groups()
        if kind == "api/video" and name in self.tube.videos:
            return self._send(200, json.dumps(self.tube.videos[name]).encode(), "application/json")
        if kind == "api/playlist" and name in self.tube.playlists:
            entries = [{"id": v, "title": self.tube.videos.get(v, {}).get("title", v)}
                       for v in self.tube.playlists[name]]
            return self._send(200, json.dumps({"title": f"Playlist {name}", "entries": entries}).encode(),
                              "application/json")
        if kind == "api/channel" and name in self.tube.channels:
            body = {"title": f"Channel {name}", "playlists": self.tube.channels[name]}
            return self._send(200, json.dumps(body).encode(), "application/json")
        if kind == "media" and name in self.tube.media:
            return self._send_media(name)
        if kind == "subs" and name in self.tube.subs:
            return self._send(200, self.tube.subs[name].encode(), "text/vtt")
        return self._send(404, b"not found", "text/plain")

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

    def channel_url(self, channel_id: str) -> str:
        return f"{self.base}/channel/{channel_id}"

    def __enter__(self) -> "FakeTubeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
