"""Uploaded subtitles as reference transcripts, each marked manual or automatic.

yt-dlp saves manual and automatic tracks under the same name pattern and
prefers the manual track when both exist for a language. So a saved track is
``manual`` when its language is among the video's ``subtitles`` and
``automatic`` otherwise (only possible with ``--auto-subs``). ``label`` uses
manual tracks as references; automatic ones are platform ASR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from whcore.records import Subtitle
from whcore.workspace import Workspace

from harvest.download import SUBS_DIR_NAME

KIND_MANUAL = "manual"
KIND_AUTOMATIC = "automatic"


def subtitle_kind(info: dict[str, Any], language: str) -> str:
    """Whether the saved track for ``language`` is the creator's or an automatic caption."""
    return KIND_MANUAL if language in (info.get("subtitles") or {}) else KIND_AUTOMATIC


def saved_subtitles(workspace: Workspace, info: dict[str, Any]) -> list[Subtitle]:
    """The subtitle files yt-dlp wrote for this entry, as records (missing ones left out)."""
    saved = []
    for language, track in sorted((info.get("requested_subtitles") or {}).items()):
        path = _track_path(workspace, info, language, track)
        if path is not None and path.is_file():
            saved.append(Subtitle(language=language, kind=subtitle_kind(info, language),
                                  path=workspace.relative(path), ext=track.get("ext", "vtt")))
    return saved


def _track_path(workspace: Workspace, info: dict[str, Any], language: str,
                track: dict[str, Any]) -> Path | None:
    expected = workspace.sources_dir / SUBS_DIR_NAME / f"{info['source_id']}.{language}.{track.get('ext', 'vtt')}"
    if expected.is_file():
        return expected
    written = track.get("filepath")
    return Path(written) if written else None
