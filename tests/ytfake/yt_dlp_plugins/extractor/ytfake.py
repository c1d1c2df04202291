"""yt-dlp plugin extractors mirroring YouTube's shapes, served from the loopback server.

* ``YtFakePlaylistIE``: ``http://127.0.0.1:PORT/ytfake/playlist?list=ID`` lists
  flat entries (id + title, **no** licence), like YouTube's playlist pages.
* ``YtFakeChannelIE``: ``http://127.0.0.1:PORT/ytfake/channel/ID`` lists its
  playlists (tabs) as flat references, so entries nest: channel -> playlist -> video.
* ``YtFakeIE``: ``http://127.0.0.1:PORT/ytfake/watch?v=ID`` is the full
  extraction: the exact CC licence string (or none), an audio-only and a
  muxed format, manual and automatic subtitles; private/removed videos raise
  ``ExtractorError(expected=True)`` with YouTube's wording.
"""

from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import ExtractorError

_BASE = r"(?P<base>https?://127\.0\.0\.1:\d+)/ytfake"


class YtFakeIE(InfoExtractor):
    IE_NAME = "ytfake"
    _VALID_URL = _BASE + r"/watch\?v=(?P<id>[A-Za-z0-9_-]+)"
    _RETURN_TYPE = "video"

    def _real_extract(self, url):
        base, video_id = self._match_valid_url(url).group("base", "id")
        meta = self._download_json(f"{base}/ytfake/api/video/{video_id}", video_id)
        if meta.get("error"):
            raise ExtractorError(meta["error"], expected=True, video_id=video_id)
        info = {
            "id": video_id,
            "title": meta["title"],
            "uploader": meta.get("uploader"),
            "channel": meta.get("channel"),
            "channel_id": meta.get("channel_id"),
            "duration": meta.get("duration"),
            "upload_date": meta.get("upload_date"),
            "webpage_url": url,
            "formats": [
                {"format_id": "18", "url": f"{base}/ytfake/media/{video_id}-muxed.mp4", "ext": "mp4",
                 "vcodec": "avc1.42001E", "acodec": "mp4a.40.2", "width": 640, "height": 360, "tbr": 500},
                {"format_id": "251", "url": f"{base}/ytfake/media/{video_id}.webm", "ext": "webm",
                 "vcodec": "none", "acodec": "opus", "abr": 128, "asr": 48000},
            ],
            "subtitles": {lang: [{"ext": "vtt", "url": f"{base}/ytfake/subs/{video_id}.{lang}.vtt"}]
                          for lang in meta.get("manual_subs", [])},
            "automatic_captions": {lang: [{"ext": "vtt", "url": f"{base}/ytfake/subs/{video_id}.{lang}.auto.vtt"}]
                                   for lang in meta.get("auto_subs", [])},
        }
        if meta.get("license"):
            info["license"] = meta["license"]
        return info


class YtFakePlaylistIE(InfoExtractor):
    IE_NAME = "ytfake:playlist"
    _VALID_URL = _BASE + r"/playlist\?list=(?P<id>[A-Za-z0-9_-]+)"
    _RETURN_TYPE = "playlist"

    def _real_extract(self, url):
        base, playlist_id = self._match_valid_url(url).group("base", "id")
        meta = self._download_json(f"{base}/ytfake/api/playlist/{playlist_id}", playlist_id)
        entries = [self.url_result(f"{base}/ytfake/watch?v={entry['id']}", YtFakeIE, entry["id"], entry["title"])
                   for entry in meta["entries"]]
        return self.playlist_result(entries, playlist_id, meta.get("title"))


class YtFakeChannelIE(InfoExtractor):
    IE_NAME = "ytfake:channel"
    _VALID_URL = _BASE + r"/channel/(?P<id>[A-Za-z0-9_-]+)"
    _RETURN_TYPE = "playlist"

    def _real_extract(self, url):
        base, channel_id = self._match_valid_url(url).group("base", "id")
        meta = self._download_json(f"{base}/ytfake/api/channel/{channel_id}", channel_id)
        entries = [self.url_result(f"{base}/ytfake/playlist?list={playlist}", YtFakePlaylistIE, playlist)
                   for playlist in meta["playlists"]]
        return self.playlist_result(entries, channel_id, meta.get("title"))
