"""The speaking-rate rule measures what was said over the speech the VAD heard.

Texts written far shorter than they are spoken (numbers, symbols, URLs, acronyms) and a
short answer in an otherwise quiet window were rejected as "slow" although transcribed
right; these are those cases, each inside a source of ordinary windows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from label.decoding import Confidence, WindowDecode
from label.filters import FilterThresholds, apply_filters, rate_fences
from label.measures import AudioMeasures
from label.quality import MIN_SPEECH_SECONDS, MIN_SPEECH_SHARE, chars_per_second, label_record, speech_seconds
from label.spoken import spoken_form
from label.vad_neural import FRAME_SECONDS, VadFigures, frame_probabilities, vad_figures
from whcore.records import SAMPLE_RATE, WindowRecord

# ordinary read speech at ~165 words per minute: 10 s windows, ~9 s of it speech
ORDINARY = ["Rivers carry water from the mountains down to the sea, and they shape the valleys on the way",
            "The permission notice shall be included in all copies or substantial portions of the software",
            "You may not use this file except in compliance with the licence, which you may obtain",
            "Each contributor grants you a worldwide, royalty free, non exclusive licence under its rights",
            "The library is distributed in the hope that it will be useful, but without any warranty",
            "Redistribution and use in source and binary forms, with or without modification, are permitted",
            "In no event shall the authors or copyright holders be liable for any claim or other damages",
            "This program is free software and you can redistribute it under the terms of the licence",
            "A covered work means either the unmodified program or a work based on the program itself",
            "To propagate a work means to do anything with it that would make you directly liable"]


def window(index: int, speech_ratio: float = 0.9) -> WindowRecord:
    return WindowRecord(source_id="s", index=index, start=index * 8.0, end=index * 8.0 + 10.0,
                        path=f"w{index}.wav", speech_ratio=speech_ratio)


def decode(text: str) -> WindowDecode:
    return WindowDecode(text=text, language="en", language_prob=0.99, avg_logprob=-0.2, no_speech_prob=0.02,
                        token_count=len(text.split()), confidence=Confidence(0.9, 0.6, len(text.split())))


def source_with(text: str, speech: float, speech_ratio: float = 0.9) -> list:
    """Ten ordinary windows (Silero heard 8.5-9.4 s of speech in each) and one with ``text``
    whose speech lasted ``speech`` seconds."""
    records = [label_record(window(i), decode(t), AudioMeasures(VadFigures(0.9, 0.9, 8.5 + 0.1 * i, 8.5 + 0.1 * i), 0.8), "en")
               for i, t in enumerate(ORDINARY)]
    odd = AudioMeasures(VadFigures(0.5, speech / 10, speech, speech), 0.8)
    records.append(label_record(window(10, speech_ratio), decode(text), odd, "en"))
    return apply_filters(records, FilterThresholds(), "en")


def ordinary_pace() -> float:
    """Spoken characters per second of the ordinary windows (median)."""
    return float(np.median([r.chars_per_second for r in source_with("Fine.", 1.0)[:-1]]))


@pytest.mark.parametrize("written,spoken", [
    ("50% 50%", "fifty percent fifty percent"),
    ("See www.apache.org/licenses.", "See double you double you double you dot apache dot org slash licenses"),
    ("C2000, 2001, 2002.", "C two thousand two thousand and one two thousand and two"),
    ("The GPL, version 3.", "The gee pee el version three"),
])
def test_spoken_form_of_numbers_symbols_urls_acronyms(written, spoken):
    assert spoken_form(written, "en") == spoken


def test_spoken_form_elsewhere_and_unknown_languages():
    assert spoken_form("Das kostet 20 €.", "de") == "Das kostet zwanzig euro"
    assert spoken_form("Son 30 años.", "es") == "Son treinta años"
    assert len(spoken_form("x % y", "xx").replace(" ", "")) == 7  # a symbol without a word counts 5 letters
    assert spoken_form("我有3个", "zh") == "我有 3 个"  # num2words has no Chinese: digits stay as written


@pytest.mark.parametrize("text", ["50% 50%.", "HTTP www.apache.org slash licenses",
                                  "C2000, 2001, 2002, 2003.",
                                  "Yes, I think so."])  # the last: a short answer in an otherwise quiet window
def test_correct_labels_written_short_are_not_too_slow(text):
    """Said at the source's own pace (its spoken form over the ordinary windows' rate), the window
    is kept; measured as written over webrtcvad's floored share (the old rule) it was too slow."""
    speech = len(spoken_form(text, "en").replace(" ", "")) / ordinary_pace()
    records = source_with(text, speech, speech_ratio=0.15)
    assert records[-1].flags == [], (records[-1].chars_per_second, [r.chars_per_second for r in records[:3]])
    low, _ = rate_fences([r.chars_per_second for r in records[:-1]], FilterThresholds().rate_iqr_factor)
    written = sum(not c.isspace() for c in text) / max(speech, 10.0 * MIN_SPEECH_SHARE)
    assert written < low


def test_the_rate_rule_still_catches_a_hallucination_in_silence_and_a_truncated_label():
    invented = source_with("Thank you so much for joining us today and see you next week everybody.", 0.8,
                           speech_ratio=0.15)
    assert invented[-1].flags == ["speaking_rate"]  # a sentence where the VAD heard a cough
    truncated = source_with("The", 9.0)
    assert truncated[-1].flags == ["speaking_rate"]  # 9 s of speech, one word of label


def test_speech_seconds_prefers_silero_and_floors():
    assert speech_seconds(10.0, 0.9, VadFigures(0.3, 0.12, 1.0, 1.2)) == 1.2
    assert speech_seconds(10.0, 0.9, None) == 9.0  # webrtcvad's share when Silero did not run
    assert speech_seconds(10.0, 0.0, VadFigures(0.0, 0.0, 0.0, 0.0)) == MIN_SPEECH_SECONDS
    assert chars_per_second("fifty", 0.5) == 10.0


def test_silero_hears_speech_not_silence_or_noise(speech_16k):
    silence = np.zeros(10 * SAMPLE_RATE, dtype=np.float32)
    noise = (np.random.default_rng(0).standard_normal(10 * SAMPLE_RATE) * 0.1).astype(np.float32)
    assert vad_figures(silence).speech_seconds == 0.0
    assert vad_figures(noise).speech_share < 0.1
    speech = vad_figures(speech_16k)
    assert speech.speech_share > 0.5 and speech.speech_prob > 0.5
    assert len(frame_probabilities(speech_16k)) == -(-len(speech_16k) // round(FRAME_SECONDS * SAMPLE_RATE))


@pytest.fixture(scope="module")
def speech_16k() -> np.ndarray:
    """Six seconds of espeak-ng speech."""
    from label_workspace import espeak, fit

    return fit(espeak("Rivers carry water from the mountains down to the sea and shape the valleys."), 6.0)


def test_no_speech_or_music_where_silero_hears_none():
    """webrtcvad heard sound (0.9 of the window) but Silero no speech: tonal sound is music,
    other sound no speech; a short answer (or falsetto, speech-like if not clearly speech) is neither."""
    def record(strict: float, voice: float, tonal: float) -> list:
        measures = AudioMeasures(VadFigures(0.01, 0.0, strict, voice), tonal)
        return apply_filters([label_record(window(0), decode("Oh, la la."), measures)], FilterThresholds(), "en")[0].flags

    assert record(0.0, 0.1, 0.95) == ["music"]
    assert record(0.1, 0.3, 0.6) == ["no_speech"]
    assert record(0.6, 0.7, 0.95) == []
    assert record(0.1, 0.77, 0.98) == []  # falsetto: Silero's speech frames few, speech-like ones enough
    no_music = dataclasses.replace(FilterThresholds(), disabled=frozenset({"music"}))
    kept = label_record(window(0), decode("La la."), AudioMeasures(VadFigures(0.01, 0.0, 0.0, 0.0), 0.95))
    assert apply_filters([kept], no_music, "en")[0].flags == []


def test_tonality_is_high_for_tones_low_for_noise(speech_16k):
    from label.music import tonality

    t = np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE
    chord = (0.2 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t) + np.sin(2 * np.pi * 330 * t))
             ).astype(np.float32)
    noise = (np.random.default_rng(1).standard_normal(10 * SAMPLE_RATE) * 0.1).astype(np.float32)
    assert tonality(chord) > 0.95
    assert tonality(noise) < 0.3
    assert 0.3 < tonality(speech_16k) < tonality(chord)
    assert tonality(np.zeros(SAMPLE_RATE, dtype=np.float32)) == 0.0
