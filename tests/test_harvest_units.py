"""The small pure pieces of harvest: licence gate, SOURCE classification, feed licences, flags."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from whcore.errors import UserError

from harvest.cli import build_parser, main, options_from_args, parse_browser
from harvest.decisions import DecisionStore, Rejection
from harvest.download import backoff_s
from harvest.jsruntime import js_runtimes_param
from harvest.failures import FailureKind, failure_kind
from harvest.feeds import parse_feed_licenses
from harvest.license import LicenseGate, license_kind, license_unreadable
from harvest.listing import SourceBudget, tab_selected
from harvest.sources import LocalSource, MissingSource, UrlSource, classify, classify_all, read_batch_file
from harvest.subtitles import clean_tracks, is_valid_lang, language_patterns

YOUTUBE_CC = "Creative Commons Attribution license (reuse allowed)"
BOT_CHECK = ("Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the "
             "authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ")
TRY_LATER = ("This content isn't available, try again later. The current session has been rate-limited by "
             "YouTube for up to an hour.")

# Real licence strings: YouTube's, the CC deeds' URLs for every licence (several versions), RSS
# creativeCommons:license and dc:rights forms, and the ways a string says "no".
LICENSE_TABLE = [
    (YOUTUBE_CC, "by"),
    ("Standard YouTube License", None),
    ("https://creativecommons.org/licenses/by/4.0/", "by"),
    ("http://creativecommons.org/licenses/by/3.0/", "by"),
    ("https://creativecommons.org/licenses/by-sa/4.0/", "by-sa"),
    ("http://creativecommons.org/licenses/by-sa/2.0/uk/", "by-sa"),
    ("https://creativecommons.org/licenses/by-nc/4.0/", "by-nc"),
    ("http://creativecommons.org/licenses/by-nc-sa/3.0/", "by-nc-sa"),
    ("https://creativecommons.org/licenses/by-nd/4.0/legalcode", "by-nd"),
    ("http://creativecommons.org/licenses/by-nc-nd/2.5/", "by-nc-nd"),
    ("https://creativecommons.org/publicdomain/zero/1.0/", "cc0"),
    ("https://creativecommons.org/publicdomain/mark/1.0/", "pd"),
    ("CC BY 4.0", "by"),
    ("CC BY-SA 4.0", "by-sa"),
    ("CC BY-NC-ND 4.0", "by-nc-nd"),
    ("CC-BY-NC-SA-3.0", "by-nc-sa"),
    ("CC0 1.0 Universal", "cc0"),
    ("Attribution-ShareAlike 4.0 International", "by-sa"),
    ("Attribution-NonCommercial-NoDerivs 3.0 Unported", "by-nc-nd"),
    ("Creative Commons Attribution-NoDerivatives 4.0 International License", "by-nd"),
    ("Public Domain", "pd"),
    ("Creative Commons", None),  # which one? NC and ND must not slip through
    ("not Creative Commons", None),
    ("This episode is not licensed under Creative Commons", None),
    ("non-CC", None),
    ("\u00a9 2024 Example Media. All rights reserved.", None),
    ("All rights reserved. Creative Commons licences do not apply.", None),
    ("GNU Free Documentation License 1.3", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "kind"), LICENSE_TABLE)
def test_license_kind_table(text: str | None, kind: str | None) -> None:
    assert license_kind(text) == kind


def test_gate_takes_by_sa_cc0_pd_by_default_and_nc_nd_only_when_named() -> None:
    default = LicenseGate()
    accepted = [text for text, _ in LICENSE_TABLE if default.accepts(text)]
    assert {license_kind(text) for text in accepted} == {"by", "by-sa", "cc0", "pd"}
    assert not default.accepts("CC BY-NC 4.0") and "--accept-licenses by-nc" in default.reason("CC BY-NC 4.0")
    wider = LicenseGate(default.accepted | {"by-nc", "by-nc-nd"})
    assert wider.accepts("CC BY-NC 4.0") and wider.accepts("CC BY-NC-ND 4.0")
    assert not wider.accepts("CC BY-ND 4.0") and not wider.accepts("not Creative Commons")


def test_match_filter_lets_flat_entries_through_and_judges_full_ones() -> None:
    cc_match_filter = LicenseGate().match_filter()
    assert cc_match_filter({"id": "x"}, incomplete=True) is None
    assert cc_match_filter({"id": "x", "license": YOUTUBE_CC}, incomplete=False) is None
    assert "not a Creative Commons licence" in cc_match_filter({"id": "x"}, incomplete=False)
    assert "CC BY-NC-ND" in cc_match_filter({"id": "x", "license": "CC BY-NC-ND 4.0"}, incomplete=False)


def test_unreadable_license_is_told_from_a_missing_one() -> None:
    watch_page = {"live_status": "not_live", "like_count": 3, "channel_follower_count": None}
    assert not license_unreadable(watch_page)  # page loaded, no licence row: standard licence
    assert license_unreadable({"live_status": "not_live"})  # page data missing: cannot tell
    assert not license_unreadable({"title": "episode 1"})  # a feed item states what it states
    assert not license_unreadable({"live_status": "not_live", "license": YOUTUBE_CC})


def test_backoff_takes_ytdlps_keyword() -> None:
    assert [backoff_s(n=n) for n in range(3)] == [1.0, 2.0, 4.0]  # yt-dlp calls func(n=...)
    assert backoff_s(n=30) == 60.0


@pytest.mark.parametrize(("text", "kind"), [
    ("HTTP Error 429: Too Many Requests", FailureKind.BLOCKED),
    (BOT_CHECK, FailureKind.BLOCKED),
    (TRY_LATER, FailureKind.BLOCKED),
    ("Premieres in 3 hours", FailureKind.NOT_YET),
    ("This live event will begin in 2 days.", FailureKind.NOT_YET),
    ("Private video. Sign in if you've been granted access to this video", FailureKind.UNAVAILABLE),
    ("This video is available to this channel's members on level: Member", FailureKind.UNAVAILABLE),
    ("Sign in to confirm your age. This video may be inappropriate for some users.", FailureKind.UNAVAILABLE),
    ("HTTP Error 404: Not Found", FailureKind.OTHER),
])
def test_failure_kinds(text: str, kind: FailureKind) -> None:
    assert failure_kind(text) is kind


def test_subtitle_patterns_take_regional_variants_and_drop_translations() -> None:
    import re
    patterns = language_patterns(("zh", "en"))
    matches = [code for pattern in patterns for code in ("zh", "zh-Hant", "zh-TW", "en-US", "eng", "fr")
               if re.fullmatch(pattern, code, re.IGNORECASE)]
    assert matches == ["zh", "zh-Hant", "zh-TW", "en-US"]
    base = "https://www.youtube.com/api/timedtext?v=x&lang=en"
    info = {"subtitles": {"en-US": [{"url": base}], "../../etc/x": [{"url": base}]},
            "automatic_captions": {"en": [{"url": base}], "en-orig": [{"url": base}],
                                   "fr": [{"url": base + "&tlang=fr"}], "de": [{"url": base + "&tlang=de"}]}}
    cleaned, dropped = clean_tracks(info)
    assert list(cleaned["subtitles"]) == ["en-US"] and dropped == ["../../etc/x"]
    assert list(cleaned["automatic_captions"]) == ["en"]
    assert is_valid_lang("zh-Hant") and not is_valid_lang("en/../x") and not is_valid_lang("")


def test_decision_store_is_append_only_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "rejected.jsonl"
    store = DecisionStore.load(path, Rejection)
    store.add(Rejection("Youtube", "a", "license"))
    store.add(Rejection("Youtube", "b", "license"))
    first_bytes = path.read_bytes()
    store.add(Rejection("Youtube", "c", "license"))
    assert path.read_bytes().startswith(first_bytes)  # appended, never rewritten
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"extractor": "Youtube", "id": "d", "rea')  # killed mid-line
    store = DecisionStore.load(path, Rejection)
    store.clear("Youtube", "a")
    reloaded = DecisionStore.load(path, Rejection)
    assert reloaded.get("Youtube", "a") is None and reloaded.get("Youtube", "c") is not None
    assert len(reloaded) == 2


def test_channel_tabs_and_budget() -> None:
    tab = {"_type": "playlist", "id": "UCx", "webpage_url": "https://www.youtube.com/@h/shorts"}
    assert not tab_selected(tab, ("videos", "streams"))
    assert tab_selected({**tab, "webpage_url": "https://www.youtube.com/@h/streams"}, ("videos", "streams"))
    video = {"_type": "url", "ie_key": "Youtube", "url": "https://www.youtube.com/shorts/abc"}
    assert tab_selected(video, ("videos",))
    budget = SourceBudget(2)
    assert [budget.take() for _ in range(3)] == [True, True, False]


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
    bomb = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "CC BY 4.0"><!ENTITY b "&a;&a;&a;&a;">]>'
            b"<rss><channel><copyright>&b;</copyright></channel></rss>")
    assert parse_feed_licenses(bomb) is None  # entity expansion refused, not resolved


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
    more = options_from_args(build_parser().parse_args([
        "https://x.example/v", "--accept-licenses", "by-nc,cc-by-nd", "--tabs", "shorts,videos",
        "--js-runtimes", "node:/opt/node/bin/node", "--remote-components", "ejs:github", "--sleep-entry", "0"]))
    assert {"by", "by-sa", "cc0", "pd", "by-nc", "by-nd"} == more.accepted_licenses
    assert more.tabs == ("shorts", "videos") and more.js_runtimes == (("node", "/opt/node/bin/node"),)
    assert more.remote_components == ("ejs:github",) and more.sleep_entry_s == 0.0
    for bad in (["--subs", "en/../../x"], ["--accept-licenses", "by-xx"], ["--tabs", "community"],
                ["--js-runtimes", "perl"], ["--remote-components", "ejs:cdn"]):
        with pytest.raises(UserError):
            options_from_args(build_parser().parse_args(["https://x.example/v", *bad]))


def test_js_runtimes_name_the_venvs_deno_and_the_users_extras() -> None:
    runtimes = js_runtimes_param((("node", "/opt/node/bin/node"), ("bun", None)))
    assert runtimes["deno"]["path"] == str(Path(sys.executable).parent / "deno")  # the deno wheel's binary
    assert runtimes["node"] == {"path": "/opt/node/bin/node"} and runtimes["bun"] == {}


def test_doctor_names_unreadable_cookies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tk\tv\n")
    assert main(["doctor", "--cookies", str(cookies)]) == 1
    out = capsys.readouterr().out
    assert "MISSING cookies: " in out and "no youtube.com cookies" in out and "not ready: fix cookies" in out


def test_doctor_reports_each_piece(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ("yt-dlp", "JavaScript runtime: deno", "challenge scripts: yt-dlp-ejs", "ffmpeg"):
        assert name in out
    code = main(["--check", "--js-runtimes", "quickjs:/no/such/qjs"])
    assert code == 0  # deno still serves; quickjs is only an extra choice
