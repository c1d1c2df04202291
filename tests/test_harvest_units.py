"""The small pure pieces of harvest: licence gate, SOURCE classification, feed licences, flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from whcore.errors import UserError

from harvest.cli import build_parser, options_from_args, parse_browser
from harvest.feeds import parse_feed_licenses
from harvest.license import cc_match_filter, is_cc_licensed
from harvest.sources import LocalSource, MissingSource, UrlSource, classify, classify_all, read_batch_file

YOUTUBE_CC = "Creative Commons Attribution license (reuse allowed)"


@pytest.mark.parametrize(("text", "expected"), [
    (YOUTUBE_CC, True),
    ("https://creativecommons.org/licenses/by-sa/4.0/", True),
    ("CC BY 4.0", True),
    ("CC0 1.0 Universal", True),
    ("http://creativecommons.org/publicdomain/zero/1.0/", True),
    (None, False),
    ("", False),
    ("Standard YouTube License", False),
    ("© 2024 Example Media. All rights reserved.", False),
])
def test_is_cc_licensed(text: str | None, expected: bool) -> None:
    assert is_cc_licensed(text) is expected


def test_match_filter_lets_flat_entries_through_and_judges_full_ones() -> None:
    assert cc_match_filter({"id": "x"}, incomplete=True) is None
    assert cc_match_filter({"id": "x", "license": YOUTUBE_CC}, incomplete=False) is None
    assert "not Creative Commons" in cc_match_filter({"id": "x"}, incomplete=False)


def test_classify_sources(tmp_path: Path) -> None:
    audio = tmp_path / "talk.opus"
    audio.write_bytes(b"x")
    feed = tmp_path / "podcast"  # no extension: sniffed
    feed.write_text('<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>')
    empty = tmp_path / "empty"
    empty.mkdir()
    assert classify("https://www.youtube.com/@someone") == [UrlSource("https://www.youtube.com/@someone", "")]
    assert classify("ytsearch5:lecture") == [UrlSource("ytsearch5:lecture", "")]
    assert classify(str(audio)) == [LocalSource(audio.resolve(), "")]
    assert classify(str(feed)) == [UrlSource(feed.resolve().as_uri(), "")]
    assert classify(str(tmp_path)) == [LocalSource(audio.resolve(), "")]
    assert isinstance(classify(str(empty))[0], MissingSource)
    assert isinstance(classify("no/such/file.mp3")[0], MissingSource)
    assert isinstance(classify("C:\\Users\\me\\talk.mp3")[0], MissingSource)
    assert len(list(classify_all([str(audio), str(tmp_path)]))) == 1  # same file twice


def test_batch_file(tmp_path: Path) -> None:
    batch = tmp_path / "b.txt"
    batch.write_text("\ufeff# comment\nhttps://a.example/x\n\n  https://b.example/y  \n#https://c\n")
    assert read_batch_file(batch) == ["https://a.example/x", "https://b.example/y"]
    with pytest.raises(UserError, match="--batch-file"):
        read_batch_file(tmp_path / "missing.txt")


def test_feed_licenses_item_wins_over_channel() -> None:
    xml = b"""<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <channel><copyright>CC BY-SA 4.0</copyright>
    <item><enclosure url="https://pod.example/1.mp3"/><dc:rights>All rights reserved</dc:rights></item>
    <item><enclosure url="https://pod.example/2.mp3"/></item></channel></rss>"""
    licenses = parse_feed_licenses(xml)
    assert licenses.license_for("https://pod.example/1.mp3") == "All rights reserved"
    assert licenses.license_for("https://pod.example/2.mp3") == "CC BY-SA 4.0"
    assert parse_feed_licenses(b"<html><body>not a feed</body></html>") is None


def test_flags_become_options(tmp_path: Path) -> None:
    args = build_parser().parse_args(["https://x.example/v", "--subs", "zh-TW, zh,en", "--auto-subs",
                                      "--jobs", "3", "--limit", "7", "--sleep", "0",
                                      "--cookies-from-browser", "chrome+gnomekeyring:Profile 1"])
    options = options_from_args(args)
    assert options.subtitle_langs == ("zh-TW", "zh", "en") and options.auto_subs
    assert (options.jobs, options.limit, options.sleep_s) == (3, 7, 0.0)
    assert options.cookies_from_browser == ("chrome", "Profile 1", "GNOMEKEYRING", None)
    assert parse_browser("firefox::work") == ("firefox", None, None, "work")
    with pytest.raises(UserError, match="unknown browser"):
        parse_browser("mosaic")
