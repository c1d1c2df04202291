"""The Hugging Face ``audiofolder`` dataset built from the kept labels.

Layout::

    dataset/README.md                  dataset card (YAML header, attribution)
    dataset/train/metadata.csv         file_name, transcription, source_id, start, end, quality...
    dataset/train/<source_id>/*.wav    the windows, cut from each source's FLAC (or hard links to
                                       WAV windows of ``segment --format wav``)
    dataset/test/...

This is ``label --dataset-format audiofolder``, for small corpora and the scripts
that expect files; the default is sharded Parquet (``label.shards``).

The whole folder is built under a temp name beside ``dataset/`` and swapped
in by ``whcore.publish.publish_folder``, so readers see the old dataset or the
new one, never a mix. Nothing in it names a local path: the card is published
with ``--push-to-hub``, so local source URLs appear by file name only.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import soundfile

from label.audio import inside_workspace
from label.split import TEST, TRAIN, assign_splits
from whcore.records import SAMPLE_RATE, LabelRecord, SourceRecord
from whcore.window_audio import SOURCE_AUDIO_NAME, WindowReader
from whcore.workspace import Workspace

QUALITY_COLUMNS = ("language", "language_prob", "avg_logprob", "mean_word_prob", "min_word_prob",
                   "no_speech_prob", "compression_ratio", "chars_per_second", "speech_ratio", "vad_speech_prob",
                   "vad_speech_seconds", "vad_voice_seconds", "tonality", "snr_db", "reference_cer")
# One line per column of metadata.csv, printed in the dataset card.
COLUMN_MEANINGS = {
    "file_name": "the window's audio file (16 kHz mono WAV), under the split's folder",
    "transcription": "the label: the seed model's text for the window (or the creator subtitles with --text subtitles)",
    "source_id": "the source the window was cut from (a video id, or a local file's stem)",
    "start": "the window's start in its source, seconds",
    "end": "the window's end in its source, seconds",
    "language": "the language the window was decoded in",
    "language_prob": "the model's probability for that language",
    "avg_logprob": "mean log-probability of the label's tokens",
    "mean_word_prob": "mean probability of the label's words (empty: no words)",
    "min_word_prob": "probability of the label's least sure word",
    "no_speech_prob": "Whisper's probability that the audio holds no speech",
    "compression_ratio": "gzip compression ratio of the label (high = repetitive)",
    "chars_per_second": "speaking rate: characters of the label's spoken form (numbers and symbols in words) per "
                        "second of speech Silero VAD heard",
    "speech_ratio": "share of the window's 30 ms frames webrtcvad calls speech (it also fires on music and noise)",
    "vad_speech_prob": "Silero VAD's mean speech probability over the window's 32 ms frames",
    "vad_speech_seconds": "seconds of the window Silero VAD calls speech (probability >= 0.5)",
    "vad_voice_seconds": "seconds of the window Silero VAD finds speech-like (probability >= 0.15): the speaking "
                         "rate's time base and the no-speech/music rule's measure",
    "tonality": "median share of a frame's spectral energy in its strongest 5 % of bins (music is high)",
    "snr_db": "speech-to-noise ratio of the window in dB, estimated from its waveform (WADA-SNR; noise and "
              "music beds lower it, clean speech reaches the 100 dB ceiling)",
    "reference_cer": "CER of the label against the creator subtitles, where there are some",
}
CONFIDENCE_BINS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)  # histogram edges of 0-1 signals
COLUMNS = ("file_name", "transcription", "source_id", "start", "end") + QUALITY_COLUMNS


@dataclass(frozen=True)
class DatasetSummary:
    rows: dict[str, int]  # split -> kept windows
    seconds: dict[str, float]  # split -> audio seconds
    left_out: int  # kept windows dropped as the time-split gap


def link_or_copy(source: Path, target: Path) -> None:
    """Hard link (no extra disk) or, across file systems, a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def window_wav_name(record: LabelRecord) -> str:
    """``<source_id>_<start_ms>_<end_ms>.wav``: the name segment gives a WAV window."""
    if Path(record.path).name != SOURCE_AUDIO_NAME:
        return Path(record.path).name
    return f"{record.source_id}_{round(record.start * 1000)}_{round(record.end * 1000)}.wav"


def metadata_row(record: LabelRecord, file_name: str) -> dict:
    row = {"file_name": file_name, "transcription": record.text, "source_id": record.source_id,
           "start": round(record.start, 3), "end": round(record.end, 3)}
    for column in QUALITY_COLUMNS:
        value = getattr(record, column)
        row[column] = round(value, 4) if isinstance(value, float) else ("" if value is None else value)
    return row


def metadata_csv(rows: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_split_folders(workspace: Workspace, folder: Path, kept: Sequence[LabelRecord],
                        test_fraction: float) -> DatasetSummary:
    """Audio links and metadata.csv of both splits under ``folder``."""
    splits = assign_splits(kept, test_fraction)
    rows: dict[str, list[dict]] = {TRAIN: [], TEST: []}
    seconds = {TRAIN: 0.0, TEST: 0.0}
    with WindowReader(workspace) as reader:
        for record in sorted(kept, key=lambda r: (r.source_id, r.start, r.index)):
            split = splits.get((record.source_id, record.index))
            if split is None:
                continue
            file_name = f"{record.source_id}/{window_wav_name(record)}"
            if Path(record.path).name == SOURCE_AUDIO_NAME:
                (folder / split / record.source_id).mkdir(parents=True, exist_ok=True)
                soundfile.write(str(folder / split / file_name), reader.read(record, dtype="int16"), SAMPLE_RATE,
                                format="WAV", subtype="PCM_16")
            else:
                link_or_copy(inside_workspace(workspace, record.path, "window"), folder / split / file_name)
            rows[split].append(metadata_row(record, file_name))
            seconds[split] += record.end - record.start
    for split, split_rows in rows.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        (folder / split / "metadata.csv").write_text(metadata_csv(split_rows), encoding="utf-8")
    return DatasetSummary(rows={k: len(v) for k, v in rows.items()}, seconds=seconds,
                          left_out=len(kept) - len(splits))


def public_url(url: str) -> str:
    """A source URL fit to publish: a local ``file://`` URL is reduced to its file name
    (the full path carries the user's folders and name)."""
    if url.startswith("file:"):
        return Path(url[len("file:"):].lstrip("/")).name or "local file"
    return url


def confidence_table(records: Sequence[LabelRecord]) -> list[str]:
    """Markdown rows: how many kept and rejected windows fall in each mean-word-probability bin."""
    return binned_table(records, "mean_word_prob", "mean word probability", "no words")


def agreement_table(records: Sequence[LabelRecord]) -> list[str]:
    """The same for the agreement with ``--check-model``; none when no check model ran."""
    if all(r.agreement is None for r in records):
        return []
    return binned_table(records, "agreement", "agreement with the check model", "not checked")


def binned_table(records: Sequence[LabelRecord], attribute: str, title: str, missing: str) -> list[str]:
    """Kept and rejected windows per ``CONFIDENCE_BINS`` bin of a 0-1 signal, as markdown rows."""
    lines = [f"| {title} | kept | rejected |", "|---|---|---|"]
    for lo, hi in zip(CONFIDENCE_BINS, CONFIDENCE_BINS[1:]):
        inside = [r for r in records if getattr(r, attribute) is not None and lo <= getattr(r, attribute) < hi]
        lines.append(f"| {lo:.1f}-{min(hi, 1.0):.1f} | {sum(r.kept for r in inside)} | "
                     f"{sum(not r.kept for r in inside)} |")
    none = [r for r in records if getattr(r, attribute) is None]
    lines.append(f"| {missing} | {sum(r.kept for r in none)} | {sum(not r.kept for r in none)} |")
    return lines


def dataset_card(summary: DatasetSummary, sources: Sequence[SourceRecord], languages: Sequence[str],
                 model: str, flag_counts: dict[str, int], total_windows: int, settings: dict,
                 records: Sequence[LabelRecord] = (), configs: Sequence[str] = ()) -> str:
    """README.md with a YAML header, per-split hours, filters, confidence and per-source attribution.

    ``configs`` are YAML lines naming the data files of each split (the Parquet shards).
    """
    hours = {split: summary.seconds[split] / 3600 for split in (TRAIN, TEST)}
    lines = ["---", "language:"] + [f"- {code}" for code in sorted(set(languages)) or ["und"]] + [
        "license: other", "task_categories:", "- automatic-speech-recognition",
        "pretty_name: whisper-harvest pseudo-labelled speech", "tags:", "- whisper-harvest",
        "- pseudo-labels", *configs, "---", "", "# whisper-harvest corpus", "",
        f"Pseudo-labelled with `{model}` by `python -m label`; every row is one window of a source "
        "with its decoded text and the model's confidence in it (`mean_word_prob`, `min_word_prob`, "
        "`avg_logprob`). Splits are by source (or by time with a one-window gap when there "
        "is one source), so overlapping windows never sit on both sides.", "",
        "| split | windows | hours |", "|---|---|---|"]
    lines += [f"| {s} | {summary.rows[s]} | {hours[s]:.3f} |" for s in (TRAIN, TEST)]
    passed = sum(summary.rows.values()) + summary.left_out
    lines += ["", f"Windows labelled: {total_windows}; passed the filters: {passed}; in the dataset: "
              f"{sum(summary.rows.values())} ({summary.left_out} left out as the time-split gap).", "", "## Filters", "",
              "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in settings.items()]
    lines += ["", "| rejected by | windows |", "|---|---|"]
    lines += [f"| {flag} | {count} |" for flag, count in sorted(flag_counts.items())] or ["| (none) | 0 |"]
    lines += ["", "## Columns of metadata.csv", ""] + [f"- `{name}`: {COLUMN_MEANINGS[name]}" for name in COLUMNS]
    lines += ["", "## Confidence of kept and rejected windows", ""] + confidence_table(records)
    agreement = agreement_table(records)
    if agreement:
        lines += ["", "Agreement of each label with the check model's text for the same window "
                  "(1 - CER between the two):", ""] + agreement
    lines += ["", "## Sources and attribution", "", "| source_id | title | uploader | URL | licence |",
              "|---|---|---|---|---|"]
    for source in sorted(sources, key=lambda s: s.source_id):
        cells = [source.source_id, source.title, source.uploader or source.channel, public_url(source.url),
                 source.license or "unknown"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "Reuse of Creative Commons Attribution material requires crediting the uploaders "
              "above.", ""]
    return "\n".join(lines)
