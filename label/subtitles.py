"""Creator subtitles as a reference for each window.

A window's reference text is built from the WebVTT cues it overlaps: the
words of a cue are spread evenly over the cue's time (speech rate within one
cue is near uniform), and a word belongs to the window holding its estimated
midpoint - the same rule the long-form labeller uses for decoded words, so a
cue half inside a window contributes about half its words.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from label.audio import inside_workspace
from whcore.records import SourceRecord, WindowRecord
from whcore.text import character_error_rate, is_unspaced
from whcore.workspace import Workspace

TIMING = re.compile(r"(?P<start>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s+-->\s+(?P<end>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})")
ARROW = "-->"
TAG = re.compile(r"<[^>]+>")


class SubtitleError(ValueError):
    """A subtitle file that is not valid WebVTT/SRT: it gives no reference rather than a wrong one."""


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def parse_timestamp(text: str) -> float:
    """``hh:mm:ss.mmm`` or ``mm:ss.mmm`` (comma allowed, as in SRT) to seconds."""
    parts = text.replace(",", ".").split(":")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def parse_vtt(text: str) -> list[Cue]:
    """Cues of a WebVTT (or SRT) file, tags removed, repeated rolling lines dropped.

    A timing line that does not parse, a cue that ends before it starts, or a file
    with no cue at all raises SubtitleError: half-read subtitles would misalign every
    reference after the damage, so a damaged file is not used at all.
    """
    cues: list[Cue] = []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    for block in blocks:
        lines = block.strip().split("\n")
        for i, line in enumerate(lines):
            match = TIMING.search(line)
            if match is None and ARROW in line:
                raise SubtitleError(f"bad cue timing {line.strip()[:60]!r}")
            if match and _seconds(match["end"]) < _seconds(match["start"]):
                raise SubtitleError(f"cue ends before it starts: {line.strip()[:60]!r}")
            if match:
                body = " ".join(TAG.sub("", l).strip() for l in lines[i + 1:] if l.strip())
                if body and not (cues and cues[-1].text == body):
                    cues.append(Cue(parse_timestamp(match["start"]), parse_timestamp(match["end"]), body))
                break
    if not cues:
        raise SubtitleError("no cue found")
    return cues


def _seconds(text: str) -> float:
    try:
        return parse_timestamp(text)
    except ValueError:
        raise SubtitleError(f"bad timestamp {text!r}") from None


def cue_words(cue: Cue, language: str) -> list[tuple[float, str]]:
    """(estimated midpoint, word) of each word of a cue, spread evenly over its time."""
    unspaced = is_unspaced(language)
    tokens = [c for c in cue.text if not c.isspace()] if unspaced else cue.text.split()
    step = (cue.end - cue.start) / max(len(tokens), 1)
    return [(cue.start + (k + 0.5) * step, token) for k, token in enumerate(tokens)]


def reference_texts(cues: Sequence[Cue], windows: Sequence[WindowRecord], language: str) -> list[str | None]:
    """Reference text per window; None where no cue overlaps the window at all.

    A window's words are those whose estimated midpoint lies in it, in cue order. Both
    questions are answered by binary search over words sorted by midpoint and cues sorted
    by start (with the running maximum of their ends), so a 10 h source with character
    tokens (about 150,000 of them) costs O((words + windows) log words), not words x windows.
    """
    words = sorted((mid, order, token) for order, (mid, token) in
                   enumerate(w for cue in cues for w in cue_words(cue, language)))
    mids = [mid for mid, _, _ in words]
    by_start = sorted(cues, key=lambda c: c.start)
    starts = [c.start for c in by_start]
    reach = list(itertools.accumulate((c.end for c in by_start), max))  # latest end among cues so far
    joiner = "" if is_unspaced(language) else " "
    texts: list[str | None] = []
    for window in windows:
        began = bisect.bisect_left(starts, window.end)  # cues starting before the window ends
        if began == 0 or reach[began - 1] <= window.start:
            texts.append(None)  # every cue that started before its end also ended before its start
            continue
        inside = sorted(words[bisect.bisect_left(mids, window.start):bisect.bisect_left(mids, window.end)],
                        key=lambda word: word[1])
        texts.append(joiner.join(token for _, _, token in inside))
    return texts


def cer(hypothesis: str, reference: str, language: str) -> float:
    """Character error rate after Whisper's scoring normaliser (English for ``en``, the basic
    one otherwise; spaces dropped for unspaced scripts): the same score finetune reports."""
    return character_error_rate(reference, hypothesis, language)


def same_language(track: str, language: str) -> bool:
    """Whether a subtitle track's code names ``language`` (``zh`` matches ``zh-Hant``, ``zh-TW``)."""
    return track.replace("_", "-").split("-")[0].lower() == language.split("-")[0].lower()


def pick_subtitles(workspace: Workspace, source: SourceRecord, language: str) -> Path | None:
    """The source's first creator (manual) subtitle file in ``language``, in the order harvest
    saved them (its ``--subs`` order). Never a track in another language: a creator's
    translation is not a transcript, and would fail the CER gate for every window."""
    for sub in source.subtitles:
        if sub.kind == "manual" and same_language(sub.language, language):
            path = inside_workspace(workspace, sub.path, "subtitle")
            if path.is_file():
                return path
    return None
