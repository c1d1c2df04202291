"""Uploaded subtitles as reference transcripts, each marked manual or automatic.

``--subs zh,en`` means every track whose code is ``zh`` or starts with ``zh-``
(``zh-Hant``, ``zh-TW``, ``zh-CN``), then the same for ``en``: YouTube labels
creator subtitles by region (``en-US``, ``en-GB``), and yt-dlp takes each
requested language as a full-match regex, so a bare ``en`` would miss them.

Automatic captions (``--auto-subs``) are YouTube's ASR of the video's own
language. YouTube also offers ~100 machine *translations* of that track (their
URL carries ``tlang=``); they are never saved, since a translation is no
transcript of the audio. The original ASR track appears twice, as ``LANG`` and
``LANG-orig``; only ``LANG`` is kept.

Language codes come from the site and become part of a file name, so a code
that is not a plain language tag is dropped before yt-dlp sees it.

yt-dlp prefers the manual track when both exist for a code, so a saved track
is ``manual`` when its code is among the video's ``subtitles`` and
``automatic`` otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from whcore.records import Subtitle
from whcore.workspace import Workspace

SUBS_DIR_NAME = "subs"  # under sources/: saved subtitle tracks
KIND_MANUAL = "manual"
KIND_AUTOMATIC = "automatic"
ORIGINAL_SUFFIX = "-orig"  # yt-dlp's label for the untranslated ASR track
LANG_CODE = re.compile(r"[A-Za-z0-9]{1,8}(?:[-_][A-Za-z0-9]{1,8}){0,4}")  # BCP 47-like, file-name safe


def is_valid_lang(code: str) -> bool:
    """True for a plain language tag (``en``, ``zh-Hant``, ``en-orig``), nothing path-like."""
    return LANG_CODE.fullmatch(code) is not None


def language_patterns(langs: tuple[str, ...]) -> list[str]:
    """yt-dlp ``subtitleslangs`` regexes: each LANG as itself, then as LANG-anything."""
    patterns: list[str] = []
    for lang in langs:
        patterns += [re.escape(lang), re.escape(lang) + r"-.+"]
    return patterns


def exact_patterns(codes: list[str]) -> list[str]:
    """``subtitleslangs`` that fetch exactly these track codes (a rerun fetching missing ones)."""
    return [re.escape(code) for code in codes]


def _is_translation(track: dict[str, Any]) -> bool:
    return "tlang" in parse_qs(urlparse(str(track.get("url") or "")).query)


def clean_tracks(info: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``info`` with unsafe codes, machine translations and ``-orig`` twins removed.

    Returns the cleaned info and the codes dropped for being unsafe (for the log).
    """
    dropped: list[str] = []
    manual = {}
    for code, tracks in (info.get("subtitles") or {}).items():
        if is_valid_lang(str(code)):
            manual[code] = tracks
        else:
            dropped.append(str(code))
    automatic = {}
    for code, tracks in (info.get("automatic_captions") or {}).items():
        if not is_valid_lang(str(code)):
            dropped.append(str(code))
            continue
        originals = [track for track in tracks or [] if not _is_translation(track)]
        if originals:
            automatic[code] = originals
    for code in list(automatic):
        if code.endswith(ORIGINAL_SUFFIX) and code[:-len(ORIGINAL_SUFFIX)] in automatic:
            del automatic[code]
    return {**info, "subtitles": manual, "automatic_captions": automatic}, dropped


def subtitle_kind(info: dict[str, Any], language: str) -> str:
    """Whether the saved track for ``language`` is the creator's or an automatic caption."""
    return KIND_MANUAL if language in (info.get("subtitles") or {}) else KIND_AUTOMATIC


def saved_subtitles(workspace: Workspace, info: dict[str, Any]) -> tuple[list[Subtitle], list[str]]:
    """The tracks yt-dlp wrote for this entry as records, and the requested codes it could not fetch."""
    saved, missing = [], []
    for language, track in (info.get("requested_subtitles") or {}).items():
        path = _track_path(workspace, info, language, track)
        if path is not None and path.is_file() and path.stat().st_size > 0:
            saved.append(Subtitle(language=language, kind=subtitle_kind(info, language),
                                  path=workspace.relative(path), ext=track.get("ext", "vtt")))
        else:
            missing.append(language)
    return saved, missing


def _track_path(workspace: Workspace, info: dict[str, Any], language: str,
                track: dict[str, Any]) -> Path | None:
    expected = workspace.sources_dir / SUBS_DIR_NAME / f"{info['source_id']}.{language}.{track.get('ext', 'vtt')}"
    if expected.is_file():
        return expected
    written = track.get("filepath")
    return Path(written) if written else None
