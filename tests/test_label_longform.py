"""The long-form path's pieces without the model: chunk planning, the lazy timeline,
word-to-window mapping, per-window evidence, and the grouping of aligned tokens into words."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
from faster_whisper.tokenizer import Tokenizer
from tokenizers import Tokenizer as HfTokenizer

from label.audio import Timeline, inside_workspace
from label.backend_ct2 import Word, _words_from_alignment
from label.decoding import Confidence, WindowDecode
from label.longform import (ChunkResult, SpeechMap, needs_redecode, plan_chunks, word_anchors,
                            words_to_windows)
from label_workspace import AudioSource, build_workspace, white_noise
from whcore.atomic import read_jsonl
from whcore.errors import SourceError
from whcore.models import ct2_model_dir
from whcore.records import SAMPLE_RATE, WindowRecord
from whcore.workspace import Workspace

SR = SAMPLE_RATE


def loud(seconds: float, seed: int = 0) -> np.ndarray:
    return white_noise(seconds, 0.3, seed)


def test_plan_chunks_cover_the_audio_in_inputs_of_at_most_30_s():
    audio = loud(95.0)
    spans = list(plan_chunks(audio))
    assert spans[0][0] == 0 and spans[-1][1] == len(audio)
    assert all(a == prev_b for (_, prev_b), (a, _) in zip(spans, spans[1:]))  # contiguous, no overlap
    assert all(0 < b - a <= 30 * SR for a, b in spans)


def test_plan_chunks_cut_in_the_quietest_place_of_the_last_5_s():
    audio = loud(70.0)
    audio[27 * SR:int(27.4 * SR)] = 0.0  # a pause 27.0-27.4 s: inside the search region of chunk 1
    spans = list(plan_chunks(audio))
    assert 27 * SR <= spans[0][1] <= int(27.4 * SR)


def test_plan_chunks_leave_no_sliver_at_the_end_and_keep_a_short_source_whole():
    assert list(plan_chunks(loud(12.0))) == [(0, 12 * SR)]
    audio = loud(30.5)
    audio[int(30.1 * SR):int(30.3 * SR)] = 0.0  # quieter than anything, but a cut there would leave 0.3 s
    audio[int(28.0 * SR):int(28.1 * SR)] = 0.01
    spans = list(plan_chunks(audio))
    assert len(spans) == 2 and 28 * SR <= spans[0][1] <= int(28.1 * SR)
    assert spans[-1][1] - spans[-1][0] >= 1 * SR


def test_speech_map_finds_chunks_no_window_heard_speech_in():
    windows = [WindowRecord(source_id="s", index=i, start=8.0 * i, end=8.0 * i + 10, path=f"w{i}.wav",
                            rms_db=-20.0, speech_ratio=ratio) for i, ratio in enumerate([0.9, 0.05, 0.0, 0.02, 0.6])]
    speech = SpeechMap(windows, silent_below=0.1)
    assert not speech.is_silent((0, 5 * SR))  # window 0
    assert speech.is_silent((19 * SR, 31 * SR))  # only windows 2 and 3 (16-26 s, 24-34 s), both < 0.1
    assert not speech.is_silent((30 * SR, 33 * SR))  # window 4 (32-42 s) overlaps
    assert not SpeechMap(windows, silent_below=None).is_silent((19 * SR, 31 * SR))  # skipping off


def words(*triples: tuple[str, float, float], prob: float = 0.9) -> list[Word]:
    return [Word(text, start, end, (math.log(prob),)) for text, start, end in triples]


def chunk(start: float, end: float, ws: list[Word], no_speech: float = 0.1) -> ChunkResult:
    return ChunkResult(start, end, "en", 0.99, no_speech, -0.2, ws)


def window(index: int, start: float, end: float, speech_ratio: float = 0.9) -> WindowRecord:
    return WindowRecord("s", index, start, end, f"windows/s/{index}.wav", speech_ratio=speech_ratio)


def test_words_go_to_the_window_holding_their_anchor():
    chunks = [chunk(0.0, 30.0, words((" The", 1.0, 1.2), (" river", 1.2, 1.6), (" flows.", 9.7, 10.5),
                                     (" Past", 12.0, 12.3), (" the", 12.3, 12.5)))]
    decodes = words_to_windows(chunks, [window(0, 0.0, 10.0), window(1, 10.0, 20.0), window(2, 20.0, 30.0)])
    assert [d.text for d in decodes] == ["The river", "flows. Past the", ""]
    assert decodes[0].token_count == 2 and decodes[2].token_count == 0
    assert decodes[2].avg_logprob == -0.2  # an empty window inherits its chunk's score


def test_a_word_stretched_over_a_pause_is_placed_by_its_end():
    ws = words((" a", 0.0, 0.3), (" b", 0.3, 0.6), (" c", 0.6, 0.9), (" after", 5.0, 11.5))
    anchors = word_anchors(ws)
    assert anchors[3] > 10.0  # the midpoint (8.25 s) would put it in the window before
    decodes = words_to_windows([chunk(0.0, 30.0, ws)], [window(0, 0.0, 10.0), window(1, 10.0, 20.0)])
    assert decodes[1].text == "after"


def test_confidence_and_no_speech_are_the_windows_own():
    sure = words((" clear", 1.0, 1.5), (" words", 1.5, 2.0), prob=0.95)
    unsure = [Word(" mumble", 25.0, 25.5, (math.log(0.2), math.log(0.4)))]
    chunks = [chunk(0.0, 25.0, sure, no_speech=0.1), chunk(25.0, 50.0, unsure, no_speech=0.9)]
    first, straddling = words_to_windows(chunks, [window(0, 0.0, 10.0), window(1, 20.0, 30.0)])
    assert first.confidence == Confidence(pytest.approx(0.95), pytest.approx(0.95), 2)
    assert first.no_speech_prob == pytest.approx(0.1)
    assert straddling.confidence.mean_word_prob == pytest.approx(0.3)  # mean of the word's token probs
    assert straddling.no_speech_prob == pytest.approx(0.5)  # 5 s under each chunk
    assert straddling.avg_logprob == pytest.approx((math.log(0.2) + math.log(0.4)) / 2)


def test_only_empty_windows_inside_speech_are_decoded_again():
    empty = WindowDecode("", "en", 0.9, -0.5, 0.7, 0)
    assert needs_redecode(window(0, 0, 10, speech_ratio=0.95), empty)
    assert not needs_redecode(window(0, 0, 10, speech_ratio=0.05), empty)
    assert not needs_redecode(window(0, 0, 10), WindowDecode("words", "en", 0.9, -0.2, 0.1, 1))


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    hf = HfTokenizer.from_file(str(Path(ct2_model_dir("offline-base")) / "tokenizer.json"))
    return Tokenizer(hf, True, task="transcribe", language="en")


def test_alignment_groups_tokens_into_words_and_punctuation_joins_the_word_before(tokenizer):
    tokens = tokenizer.encode(" Hello world, river.")
    word_texts, word_tokens = tokenizer.split_to_word_tokens(tokens + [tokenizer.eot])
    count = len(tokens)
    # one alignment step per token (text index i at encoder frame 10 * (i + 1)), then end-of-text
    alignments = [(i, 10 * (i + 1)) for i in range(count + 1)]
    probs = [0.5 + 0.1 * (i % 4) for i in range(count)]
    result = SimpleNamespace(alignments=alignments, text_token_probs=probs)
    grouped = _words_from_alignment(tokenizer, tokens, result)
    assert [w.text for w in grouped] == [" Hello", " world,", " river."]
    assert all(w.start < w.end for w in grouped)
    assert [w.start for w in grouped] == sorted(w.start for w in grouped)
    assert sum(len(w.token_logprobs) for w in grouped) == count  # every token's probability kept once
    assert grouped[1].end > grouped[1].start + 0.1  # "world" then ",": two tokens, both in the word


def test_timeline_reads_the_source_back_from_overlapping_windows(tmp_path):
    audio = loud(47.3, seed=3) * np.linspace(0.2, 1.0, int(47.3 * SR), dtype=np.float32)
    root = build_workspace(tmp_path / "ws", [AudioSource("tl", audio)], window=10.0, overlap=2.0,
                           extra_segment_args=["--snap", "0.5"])
    workspace = Workspace(root)
    windows = [WindowRecord.from_dict(r) for r in read_jsonl(root / "windows" / "tl" / "windows.jsonl")]
    timeline = Timeline(workspace, windows)
    pcm16 = soundfile.read(str(next((tmp_path / "ws-inputs").glob("tl.wav"))), dtype="float32")[0]
    assert len(timeline) == len(pcm16)
    np.testing.assert_array_equal(timeline[0:len(timeline)], pcm16)
    np.testing.assert_array_equal(timeline[123_456:345_678], pcm16[123_456:345_678])
    assert len(list(plan_chunks(timeline))) == 2


def test_record_paths_must_stay_inside_the_workspace(tmp_path):
    workspace = Workspace(tmp_path)
    assert inside_workspace(workspace, "windows/a/b.wav", "window") == tmp_path / "windows/a/b.wav"
    for bad in ("/etc/passwd", "../outside.wav", "windows/../../x.wav", ""):
        with pytest.raises(SourceError, match="outside the workspace"):
            inside_workspace(workspace, bad, "window")
