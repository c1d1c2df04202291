"""yt-dlp plugin extractors returning YouTube's shapes, served from the loopback server.

The shapes are copied from yt-dlp 2026.10.26's own YouTube extractor
(``yt_dlp/extractor/youtube/_tab.py`` and ``_video.py``):

* ``YtFakeTabIE``: a channel root (``/ytfake/@handle``, ``/ytfake/channel/UC...``)
  extracts to a playlist whose entries are its tab playlists (Videos, Live,
  Shorts), **all with the channel's UC id and the same extractor key**; a tab
  URL (``/@handle/videos``) or ``/playlist?list=ID`` is a flat playlist. Entries
  are a lazy generator: each continuation page is requested while iterated, so
  an HTTP 429 on page 2 raises out of the caller's loop. Flat entries are
  ``_type: url`` references carrying ``live_status``, ``availability`` and
  ``duration``, never ``license``.
* ``YtFakeIE``: ``/ytfake/watch?v=ID`` is the full extraction. ``license`` comes
  only from the watch page's initial data (with ``like_count`` and
  ``channel_follower_count``); when that data fails to load (``watch_data``
  false) all three are missing and yt-dlp only warns. Errors are YouTube's:
  private/removed/members-only, the bot check and "try again later" as
  ``ExtractorError(expected=True)``, upcoming live events likewise. Live
  videos offer only an HLS muxed format; some videos only the muxed itag 18.
  Automatic captions list the original ASR track as ``LANG`` and
  ``LANG-orig`` and, if asked, machine translations whose URL carries ``tlang``.
"""

import itertools

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
            "channel_id": meta.get("channel_id"),
            "duration": meta.get("duration"),
            "upload_date": meta.get("upload_date"),
            "webpage_url": url,
            "live_status": meta.get("live_status"),
            "availability": meta.get("availability"),
            "formats": self._formats(base, video_id, meta),
            "subtitles": {lang: [{"ext": "vtt", "url": f"{base}/ytfake/subs/{video_id}.{lang}.vtt"}]
                          for lang in meta.get("manual_subs", [])},
            "automatic_captions": self._captions(base, video_id, meta),
        }
        if meta.get("watch_data", True):
            info.update(channel=meta.get("channel"), channel_follower_count=1200, like_count=37)
            if meta.get("license"):
                info["license"] = meta["license"]
        else:
            self.report_warning("Incomplete data received in embedded initial data; re-fetching using API.")
            self.report_warning("Unable to download API page: HTTP Error 503: Service Unavailable")
        return info

    @staticmethod
    def _formats(base, video_id, meta):
        muxed = {"format_id": "18", "url": f"{base}/ytfake/media/{video_id}-muxed.mp4", "ext": "mp4",
                 "vcodec": "avc1.42001E", "acodec": "mp4a.40.2", "width": 640, "height": 360, "tbr": 500}
        if meta.get("live_status") == "is_live":  # DASH/https dropped while live: HLS only
            return [{**muxed, "format_id": "95", "protocol": "m3u8_native",
                     "url": f"{base}/ytfake/media/{video_id}-live.m3u8"}]
        if meta.get("muxed_only"):
            return [muxed]
        return [muxed, {"format_id": "251", "url": f"{base}/ytfake/media/{video_id}.webm", "ext": "webm",
                        "vcodec": "none", "acodec": "opus", "abr": 128, "asr": 48000}]

    @staticmethod
    def _captions(base, video_id, meta):
        captions = {}
        for lang in meta.get("auto_subs", []):
            track = [{"ext": "vtt", "url": f"{base}/ytfake/subs/{video_id}.{lang}.auto.vtt?lang={lang}"}]
            captions[f"{lang}-orig"] = track
            captions[lang] = track
            if meta.get("translated_subs"):
                for target in ("fr", "de", "es", "ja"):
                    if target != lang:
                        captions[target] = [{"ext": "vtt", "url": f"{base}/ytfake/subs/{video_id}.{lang}.auto.vtt"
                                                                  f"?lang={lang}&tlang={target}"}]
        return captions


class YtFakeTabIE(InfoExtractor):
    IE_NAME = "ytfake:tab"
    _VALID_URL = (_BASE + r"/(?:(?P<handle>@[A-Za-z0-9_-]+)|channel/(?P<channel>UC[A-Za-z0-9_-]+)"
                  r"|playlist\?list=(?P<list>[A-Za-z0-9_-]+))(?:/(?P<tab>videos|streams|shorts))?/?$")
    _RETURN_TYPE = "playlist"

    def _real_extract(self, url):
        mobj = self._match_valid_url(url)
        base, tab = mobj.group("base"), mobj.group("tab")
        if mobj.group("list"):
            list_id = mobj.group("list")
            return self.playlist_result(self._entries(base, list_id), list_id, f"Playlist {list_id}")
        name = mobj.group("handle") or mobj.group("channel")
        meta = self._download_json(f"{base}/ytfake/api/channel/{name}", name, note="Downloading channel page")
        channel_id = meta["id"]
        root = f"{base}/ytfake/{name}" if mobj.group("handle") else f"{base}/ytfake/channel/{name}"
        if tab:
            return self._tab(base, channel_id, meta, tab, f"{root}/{tab}")
        tabs = [self._tab(base, channel_id, meta, name, f"{root}/{name}") for name in meta["tabs"]]
        if len(tabs) == 1:
            return tabs[0]
        return self.playlist_result(tabs, channel_id, meta["title"])

    def _tab(self, base, channel_id, meta, tab, tab_url):
        result = self.playlist_result(self._entries(base, f"{channel_id}:{tab}"), channel_id,
                                      f"{meta['title']} - {tab.title()}")
        result.update(extractor_key=self.ie_key(), extractor=self.IE_NAME, webpage_url=tab_url)
        return result

    def _entries(self, base, list_id):
        for page in itertools.count(1):
            data = self._download_json(f"{base}/ytfake/api/browse/{list_id}?page={page}", list_id,
                                       note=f"Downloading page {page}")
            for entry in data["entries"]:
                yield self.url_result(f"{base}/ytfake/watch?v={entry['id']}", YtFakeIE, entry["id"],
                                      entry["title"], live_status=entry.get("live_status"),
                                      availability=entry.get("availability"), duration=entry.get("duration"))
            if not data.get("next"):
                return
