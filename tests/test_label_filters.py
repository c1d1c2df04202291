"""Label stage pieces without the model: filters, script, split, subtitles, dataset writer."""

from __future__ import annotations

import dataclasses

import pytest

from label.dataset import confidence_table, public_url
from label.filters import (KEEP_FRACTION_FLAG, FilterThresholds, apply_filters, apply_keep_fraction,
                           check_agreement, check_blocklist, check_compression, check_confidence, check_empty, check_language,
                           check_logprob, check_long_word, check_no_speech, check_repetition,
                           check_subtitle_cer, check_unique_words, rate_fences)
from label.quality import chars_per_second, compression_ratio
from label.script import convert_script, validate_script
from label.split import TEST, TRAIN, assign_splits, split_by_time, split_sources
from label.subtitles import cer, parse_vtt, pick_subtitles, reference_texts
from whcore.errors import SourceError, UserError
from whcore.records import LabelRecord, SourceRecord, Subtitle, WindowRecord
from whcore.workspace import Workspace

TH = FilterThresholds()
GOOD = "Rivers carry water from the mountains down to the sea, and they shape the valleys."


def record(text: str = GOOD, **fields) -> LabelRecord:
    base = dict(source_id="s", index=0, start=0.0, end=10.0, path="w.wav", text=text, language="en",
                language_prob=0.9, avg_logprob=-0.2, no_speech_prob=0.05,
                compression_ratio=compression_ratio(text), chars_per_second=chars_per_second(text, 10.0),
                speech_ratio=0.8, mean_word_prob=0.9, min_word_prob=0.6, word_count=14)
    base.update(fields)
    return LabelRecord(**base)


def test_clean_text_passes_every_filter():
    assert apply_filters([record()], TH, "en")[0].flags == []


def test_empty():
    assert check_empty(record(" . "), TH) == "empty"
    assert check_empty(record(), TH) is None


def test_no_speech_by_vad_or_whisper_rule():
    assert check_no_speech(record(speech_ratio=0.02), TH) == "no_speech"
    assert check_no_speech(record(no_speech_prob=0.9, avg_logprob=-1.2), TH) == "no_speech"
    # a high no-speech probability with sure words is speech (Whisper's rule needs both)
    assert check_no_speech(record(no_speech_prob=0.84, avg_logprob=-0.1), TH) is None
    assert check_no_speech(record(), TH) is None


def test_low_confidence():
    assert check_confidence(record(mean_word_prob=TH.min_word_prob - 0.01), TH) == "low_confidence"
    assert check_confidence(record(mean_word_prob=TH.min_word_prob + 0.01), TH) is None
    assert check_confidence(record(mean_word_prob=None, word_count=0), TH) is None  # "empty" judges that


def test_keep_fraction_per_source_and_per_corpus():
    def make() -> list[LabelRecord]:
        a = [record(source_id="a", index=i, mean_word_prob=0.5 + 0.04 * i) for i in range(10)]
        b = [record(source_id="b", index=i, mean_word_prob=0.9 + 0.001 * i) for i in range(10)]
        a[9].flags = ["empty"]  # already rejected: not ranked
        return a + b
    per_source = apply_keep_fraction(make(), 0.5, whole_corpus=False)
    kept = [(r.source_id, r.index) for r in per_source if r.kept]
    assert kept == [("a", 4), ("a", 5), ("a", 6), ("a", 7), ("a", 8)] + [("b", i) for i in range(5, 10)]
    corpus = apply_keep_fraction(make(), 0.5, whole_corpus=True)
    assert {r.source_id for r in corpus if r.kept} == {"b"} and sum(r.kept for r in corpus) == 10
    assert all(KEEP_FRACTION_FLAG in r.flags for r in corpus if r.source_id == "a" and r.index != 9)


def test_disagreement_with_the_check_model():
    assert check_agreement(record(agreement=TH.min_agreement - 0.01), TH) == "disagreement"
    assert check_agreement(record(agreement=TH.min_agreement), TH) is None
    assert check_agreement(record(agreement=None), TH) is None  # no check model ran
    assert "disagreement" in apply_filters([record(agreement=0.2)], TH, "en")[0].flags


def test_keep_fraction_ranks_by_agreement_where_a_check_model_ran():
    """A sure seed (word probability 0.99) that the check model contradicts goes first."""
    records = [record(index=i, mean_word_prob=0.99 - 0.01 * i, agreement=0.5 + 0.05 * i) for i in range(10)]
    kept = [r.index for r in apply_keep_fraction(records, 0.3, whole_corpus=False) if r.kept]
    assert kept == [7, 8, 9]


def test_compression_ratio_catches_loops():
    loop = "I'm going to go to the store. " * 12
    assert compression_ratio(loop) > 2.4
    assert check_compression(record(loop, compression_ratio=compression_ratio(loop)), TH) == "compression_ratio"
    assert check_compression(record(), TH) is None


def test_low_logprob():
    assert check_logprob(record(avg_logprob=-1.3), TH) == "low_logprob"
    assert check_logprob(record(avg_logprob=-0.9), TH) is None


def test_repeated_ngrams_and_runs():
    assert check_repetition(record("the water the water the water the water"), TH, "en") == "repetition"
    assert check_repetition(record("no no no no no"), TH, "en") == "repetition"
    assert check_repetition(record("我们走吧我们走吧我们走吧我们走吧"), TH, "zh") == "repetition"
    assert check_repetition(record(GOOD), TH, "en") is None


def test_unique_word_share():
    assert check_unique_words(record("go go to go to go to the go to go"), TH, "en") == "low_unique_words"
    assert check_unique_words(record(GOOD), TH, "en") is None
    assert check_unique_words(record("好好好好好好好好好好"), TH, "zh") is None  # not judged for unspaced text


def test_long_word():
    assert check_long_word(record("a" * 41 + " river"), TH, "en") == "long_word"
    assert check_long_word(record("这是一个很长的句子没有空格但是中文本来就不用空格分词这是一个很长的句子"), TH, "zh") is None


@pytest.mark.parametrize("text,language", [
    ("Thanks for watching!", "en"), ("you", "en"), ("Thank you.", "en"), ("Subtitles by the Amara.org community", "en"),
    ("字幕由Amara.org社群提供", "zh"), ("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目", "zh"),
    ("ご視聴ありがとうございました", "ja")])
def test_blocklist_hallucinations(text, language):
    assert check_blocklist(record(text), TH, language) == "blocklist"


def test_blocklist_keeps_normal_speech_with_thanks():
    assert check_blocklist(record("Thank you for listening to this lecture."), TH, "en") is None
    assert check_blocklist(record("You can see the river."), TH, "en") is None


def test_language_mismatch():
    assert check_language(record(language="de"), TH, "en") == "language"
    assert check_language(record(language="en"), TH, "en") is None


def test_subtitle_cer_gate():
    assert check_subtitle_cer(record(reference_cer=0.35), TH) == "subtitle_cer"
    assert check_subtitle_cer(record(reference_cer=0.1), TH) is None
    assert check_subtitle_cer(record(reference_cer=None), TH) is None


def test_speaking_rate_outside_source_fences():
    records = [record(index=i, chars_per_second=12.0 + 0.1 * i) for i in range(10)]
    records.append(record(index=10, chars_per_second=40.0))
    records.append(record(index=11, chars_per_second=2.0))
    apply_filters(records, TH, "en")
    assert [r.index for r in records if r.flags == ["speaking_rate"]] == [10, 11]
    low, high = rate_fences([r.chars_per_second for r in records[:10]], 1.5)
    assert low < 12.0 and high > 12.9


def test_speaking_rate_needs_enough_windows_and_can_be_disabled():
    few = [record(index=0, chars_per_second=12.0), record(index=1, chars_per_second=40.0)]
    assert all(not r.flags for r in apply_filters(few, TH, "en"))
    many = [record(index=i, chars_per_second=12.0) for i in range(10)] + [record(index=10, chars_per_second=40.0)]
    off = dataclasses.replace(TH, disabled=frozenset({"speaking_rate"}))
    assert all(not r.flags for r in apply_filters(many, off, "en"))


def test_opencc_conversion():
    assert convert_script("我们的软件在网络上运行", "s2twp") == "我們的軟體在網路上執行"
    assert convert_script("软件", "s2t") == "軟件"
    assert convert_script("軟體", "t2s") == "软体"
    assert convert_script("Rivers", "none") == "Rivers"
    with pytest.raises(UserError):
        validate_script("klingon")


def kept_records(source_id: str, count: int, window: float = 10.0, hop: float = 8.0) -> list[LabelRecord]:
    return [record(source_id=source_id, index=i, start=i * hop, end=i * hop + window) for i in range(count)]


def test_split_by_source_is_stable_and_disjoint():
    ids = [f"video{i}" for i in range(40)]
    splits = split_sources(ids, 0.25)
    assert splits == split_sources(list(reversed(ids)), 0.25)
    assert 3 <= sum(s == TEST for s in splits.values()) <= 20
    records = [r for sid in ids[:5] for r in kept_records(sid, 4)]
    assigned = assign_splits(records, 0.25)
    for sid in ids[:5]:
        assert len({assigned[(sid, i)] for i in range(4)}) == 1  # a source never straddles the split
    assert {TRAIN, TEST} <= set(assigned.values())


@pytest.mark.parametrize("count", [2, 3, 5, 9, 30])
def test_single_source_time_split_has_gap_and_both_sides(count):
    records = kept_records("only", count)
    result = split_by_time(records, 0.1)
    assert TRAIN in result.values() and TEST in result.values()
    train = [r for r in records if result.get(r.index) == TRAIN]
    test = [r for r in records if result.get(r.index) == TEST]
    assert max(r.end for r in train) <= min(r.start for r in test) or count == 2
    assert min(r.start for r in test) > max(r.start for r in train)


def test_two_sources_always_get_a_test_split():
    records = kept_records("a", 3) + kept_records("b", 3)
    assert {TRAIN, TEST} == set(assign_splits(records, 0.0).values())


VTT = """WEBVTT

00:00:00.000 --> 00:00:04.000
<c>the river flows</c>

00:00:04.000 --> 00:00:08.000
past the old stone bridge

00:00:12.000 --> 00:00:16.000
at the edge of town
"""


def test_vtt_cues_map_to_windows_by_time():
    cues = parse_vtt(VTT)
    assert [c.text for c in cues] == ["the river flows", "past the old stone bridge", "at the edge of town"]
    windows = [WindowRecord("s", 0, 0.0, 6.0, "a.wav"), WindowRecord("s", 1, 6.0, 12.0, "b.wav"),
               WindowRecord("s", 2, 12.0, 16.0, "c.wav"), WindowRecord("s", 3, 20.0, 30.0, "d.wav")]
    refs = reference_texts(cues, windows, "en")
    assert refs[0] == "the river flows past the"
    assert refs[1] == "old stone bridge"
    assert refs[2] == "at the edge of town"
    assert refs[3] is None


def test_cer_ignores_case_and_punctuation():
    assert cer("The river, flows!", "the river flows", "en") == 0.0
    assert cer("the rover flows", "the river flows", "en") == pytest.approx(1 / 15)
    assert cer("我們走吧", "我们走吧", "zh") == pytest.approx(0.25)


def test_cer_uses_whisper_english_normaliser():
    assert cer("Mr. Smith paid 20 dollars", "mister smith paid twenty dollars", "en") == 0.0
    assert cer("the colour grey", "the color gray", "en") == 0.0


def subtitle_source(*tracks: tuple[str, str]) -> SourceRecord:
    return SourceRecord(source_id="v", extractor="Youtube", original_id="v", url="https://example.org/v",
                        subtitles=[Subtitle(language=lang, kind=kind, path=f"sources/subs/v.{lang}.vtt")
                                   for lang, kind in tracks])


def test_pick_subtitles_same_language_only_in_saved_order(tmp_path):
    workspace = Workspace(tmp_path)
    (tmp_path / "sources" / "subs").mkdir(parents=True)
    for lang in ("en", "zh-TW", "zh-Hant", "fr"):
        (tmp_path / "sources" / "subs" / f"v.{lang}.vtt").write_text("WEBVTT\n")
    source = subtitle_source(("fr", "manual"), ("zh-TW", "manual"), ("zh-Hant", "manual"), ("en", "automatic"))
    assert pick_subtitles(workspace, source, "zh").name == "v.zh-TW.vtt"
    assert pick_subtitles(workspace, source, "de") is None  # a translation is never the reference
    assert pick_subtitles(workspace, source, "en") is None  # automatic captions are not creator text
    crafted = SourceRecord.from_dict(source.to_dict() | {"subtitles": [
        {"language": "en", "kind": "manual", "path": "../../etc/passwd"}]})
    with pytest.raises(SourceError, match="outside the workspace"):
        pick_subtitles(workspace, crafted, "en")


def test_card_publishes_no_local_paths_and_shows_confidence():
    assert public_url("file:///home/alice/talks/lecture.mp3") == "lecture.mp3"
    assert public_url("https://www.youtube.com/watch?v=x") == "https://www.youtube.com/watch?v=x"
    rows = confidence_table([record(mean_word_prob=0.95), record(mean_word_prob=0.2, flags=["low_confidence"]),
                             record(mean_word_prob=None, flags=["empty"])])
    assert "| 0.9-1.0 | 1 | 0 |" in rows and "| 0.0-0.3 | 0 | 1 |" in rows and "| no words | 0 | 1 |" in rows
