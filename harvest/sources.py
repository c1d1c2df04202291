"""Turn the SOURCE arguments into things harvest knows how to fetch.

A SOURCE is a URL (anything yt-dlp understands), a local media file, a local
folder (searched recursively for media files) or a podcast feed file. Local
feeds become ``file://`` URLs so yt-dlp's generic extractor lists their
enclosures like a remote feed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from whcore.errors import UserError

MEDIA_EXTENSIONS = frozenset({
    ".aac", ".aif", ".aiff", ".amr", ".ape", ".au", ".avi", ".caf", ".flac", ".m4a", ".m4b",
    ".m4v", ".mka", ".mkv", ".mov", ".mp2", ".mp3", ".mp4", ".mpeg", ".mpg", ".oga", ".ogg",
    ".opus", ".spx", ".ts", ".wav", ".weba", ".webm", ".wma", ".wmv", ".wv",
})
FEED_EXTENSIONS = frozenset({".rss", ".xml", ".atom"})
FEED_SNIFF_BYTES = 512  # enough to see "<rss" / "<feed" after an XML prolog
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # https://..., ytsearch5:..., file:...


@dataclass(frozen=True)
class UrlSource:
    """Something yt-dlp extracts: a URL, a search, or a local feed as a file:// URL."""

    url: str
    label: str = field(compare=False)  # what the user typed, for messages


@dataclass(frozen=True)
class LocalSource:
    """One local media file the user already has."""

    path: Path  # absolute
    label: str = field(compare=False)


@dataclass(frozen=True)
class MissingSource:
    """A SOURCE that is neither a URL nor an existing path (logged, the run goes on)."""

    label: str
    reason: str


Source = UrlSource | LocalSource | MissingSource


def read_batch_file(path: Path) -> list[str]:
    """SOURCE lines of a batch file: one per line, blank lines and ``#`` comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise UserError(f"--batch-file {path}: cannot read it ({error.strerror}); pass an "
                        "existing text file with one URL or path per line") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_feed_file(path: Path) -> bool:
    """A local RSS/Atom feed, told by its extension or its first bytes."""
    if path.suffix.lower() in FEED_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(FEED_SNIFF_BYTES).lstrip().lower()
    except OSError:
        return False
    return head.startswith(b"<?xml") and (b"<rss" in head or b"<feed" in head)


def media_files_under(folder: Path) -> list[Path]:
    """Media files below ``folder`` (recursive, hidden entries skipped), in a stable order."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in MEDIA_EXTENSIONS:
            found.append(path.resolve())
    return sorted(found)


def classify(text: str) -> list[Source]:
    """What one SOURCE argument stands for (a folder expands to its media files)."""
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            return [LocalSource(file, str(file)) for file in media_files_under(path)] or [
                MissingSource(text, "folder holds no media files "
                              f"({', '.join(sorted(MEDIA_EXTENSIONS)[:6])}, ...)")]
        if is_feed_file(path):
            return [UrlSource(path.resolve().as_uri(), text)]
        return [LocalSource(path.resolve(), text)]
    if URL_PATTERN.match(text) and not re.match(r"^[A-Za-z]:[\\/]", text):
        return [UrlSource(text, text)]
    return [MissingSource(text, "no such file or folder, and not a URL: pass an existing "
                          "path or a full URL (https://...)")]


def classify_all(texts: Iterable[str]) -> Iterator[Source]:
    """Classify every SOURCE argument in order, dropping exact repeats."""
    seen: set[Source] = set()
    for text in texts:
        for source in classify(text):
            if source not in seen:
                seen.add(source)
                yield source
