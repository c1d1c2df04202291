"""The hallucination phrase files: every entry is one clean, normalised phrase.

Two public lists silently lost entries: a missing comma joined two phrases into one
that never matches, and counts pasted from a frequency table ("thank you 1234") made
others unmatchable. Each entry of each file is checked here on its own.
"""

from __future__ import annotations

import re

import pytest

from label.filters import (ANY_LANGUAGE, HALLUCINATIONS_DIR, WHOLE_TEXTS_FILE, blocked_phrases, blocked_whole_texts,
                           check_blocklist, normalise, read_phrase_file, FilterThresholds)
from whcore.records import LabelRecord
from whcore.text import is_unspaced

FILES = sorted(HALLUCINATIONS_DIR.glob("*.txt"))
MAX_PHRASE_WORDS = 10  # longer entries are two phrases run together, or a whole sentence of real speech
MAX_UNSPACED_CHARS = 24
NUMBERED_PHRASES = {"sous titrage st 501"}  # a real subtitle credit Whisper writes, number and all
ENTRIES = [(path.name, entry) for path in FILES for entry in read_phrase_file(path)]


def language_of(name: str) -> str:
    return name.removesuffix(".txt")


def test_every_language_file_and_the_whole_text_file_exist():
    names = {path.name for path in FILES}
    assert {f"{ANY_LANGUAGE}.txt", WHOLE_TEXTS_FILE, "zh.txt", "ja.txt"} <= names
    assert len(ENTRIES) > 30


@pytest.mark.parametrize("name,entry", ENTRIES)
def test_entry_is_one_normalised_phrase(name, entry):
    assert entry == normalise(entry), "entries are stored as normalise() writes them (lower case, no punctuation)"
    if entry not in NUMBERED_PHRASES:
        assert not re.search(r"\d", entry), "a number is a count pasted from a frequency table"
    if is_unspaced(language_of(name)):
        assert len(entry.replace(" ", "")) <= MAX_UNSPACED_CHARS
    else:
        assert len(entry.split()) <= MAX_PHRASE_WORDS


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_entry_is_two_others_run_together_or_repeated(path):
    raw = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert not any("\t" in line or "  " in line for line in raw), "a tab or double space: a pasted column?"
    entries = read_phrase_file(path)
    assert len(entries) == len(set(entries)), "duplicate entries"
    spaced = [e for e in entries if " " in e]
    for entry in entries:
        for first in entries:
            if first != entry and entry.startswith(first + " "):
                rest = entry[len(first) + 1:]
                assert rest == first or rest not in entries, f"{entry!r} is {first!r} + {rest!r} (a missing separator?)"
    assert spaced or path.name == WHOLE_TEXTS_FILE or len(entries) < 3 or is_unspaced(language_of(path.name))


@pytest.mark.parametrize("name,entry", [(n, e) for n, e in ENTRIES if n != WHOLE_TEXTS_FILE])
def test_each_phrase_is_blocked_in_its_language(name, entry):
    language = "en" if language_of(name) == ANY_LANGUAGE else language_of(name)
    assert entry in blocked_phrases(language)
    record = LabelRecord(source_id="s", index=0, start=0.0, end=10.0, path="w.wav", text=entry.capitalize() + ".")
    assert check_blocklist(record, FilterThresholds(), language) == "blocklist"


def test_whole_texts_block_only_alone():
    assert "thank you" in blocked_whole_texts()
    inside = LabelRecord(source_id="s", index=0, start=0.0, end=10.0, path="w.wav",
                         text="I said thank you to the driver.")
    assert check_blocklist(inside, FilterThresholds(), "en") is None
