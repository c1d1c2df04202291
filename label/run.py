"""The label stage: decode each segmented source, filter, write labels, rebuild the dataset.

Unit of work = one source. A source is done when ``labels/<id>.jsonl`` is in
place and its DONE line (params: model, language, mode, filters, script, the
windows manifest's sha256) is in the journal; reruns skip it without touching
the file. The dataset is rebuilt whenever the set of label files changed, and
only when every segmented source is labelled (so a shard that finishes early
never publishes a partial dataset; the last shard to finish builds it).
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from label.audio import Timeline, read_windows
from label.backend_ct2 import Ct2Engine, EngineOptions
from label.backend_hf import HfEngine, HfOptions
from label.dataset import DatasetSummary, dataset_card, write_split_folders
from label.decoding import WindowDecode, decode_windows, detect_source_language
from label.filters import FilterThresholds, apply_filters, apply_keep_fraction
from label.longform import decode_longform
from label.measures import measure_windows
from label.quality import label_record, text_agreement
from label.report import draw_report
from label.script import convert_script
from label.shards import MANIFEST_NAME, ShardBuild, card_configs, manifest_text, write_shards
from label.subtitles import SubtitleError, cer, parse_vtt, pick_subtitles, reference_texts
from whcore.atomic import read_jsonl, sweep_temp_files, write_jsonl
from whcore import lock
from whcore.cli import is_disk_full
from whcore.errors import SourceError
from whcore.journal import (DATASET_UNIT, Journal, ParamsDigester, content_listing, file_sha256, params_digest,
                            source_unit)
from whcore.publish import publish_folder
from whcore.records import LabelRecord, SourceRecord, WindowRecord, covered_seconds, seconds_to_samples
from whcore.skips import SkipLines
from whcore.workspace import Workspace

MODES = ("longform", "windows")
BACKENDS = ("auto", "ct2", "transformers")  # auto = ct2: faster on CPU (int8) and GPU (fp16), see bench/
TEXT_SOURCES = ("model", "subtitles")
KEEP_SCOPES = ("source", "corpus")
PARQUET, AUDIOFOLDER = "parquet", "audiofolder"
DATASET_FORMATS = (PARQUET, AUDIOFOLDER)
REPORT_NAME = "report.png"
REJECTED_NAME = "rejected.csv"
PROBE_INPUT_SECONDS = 30.0  # language probe windows are packed into inputs of this length


@dataclass(frozen=True)
class LabelOptions:
    """Everything that decides a run's labels (``engine`` fields only decide its speed,
    except beam size and compute type, which are part of the params digest)."""

    model: str = "offline-base"
    model_dir: Path | None = None  # the CTranslate2 folder the spec resolved to (ct2 backend)
    model_identity: str = ""  # whcore.models.model_fingerprint: changes when the weights do
    backend: str = "ct2"  # "ct2" or "transformers" (windows mode only)
    language: str | None = None  # None = detect per source
    mode: str = "longform"
    script: str = "none"
    text: str = "model"  # "subtitles": use the creator-subtitle reference as the label where present
    thresholds: FilterThresholds = field(default_factory=FilterThresholds)
    keep_fraction: float | None = None  # keep only this best share of the windows that pass the filters
    keep_scope: str = "source"  # the share is taken per source or over the whole corpus
    test_fraction: float = 0.1
    dataset_format: str = PARQUET  # sharded Parquet with embedded audio, or an audiofolder of WAV files
    engine: EngineOptions | None = None
    shard_index: int = 0
    shard_count: int = 1
    language_probe_windows: int = 8  # windows whose language decides a source's language
    check_model: str | None = None  # a second model whose text each label is compared with
    check_model_dir: Path | None = None  # its CTranslate2 folder
    check_model_identity: str = ""  # its content fingerprint


class DatasetIncomplete(SourceError):
    """The dataset was published without some sources (their audio could not be read)."""


@dataclass
class RunSummary:
    labelled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    other_shards: list[str] = field(default_factory=list)
    dataset_built: bool = False
    dataset_failed: bool = False
    dataset_waiting: list[str] = field(default_factory=list)  # sources with no labels yet
    report: Path | None = None


def source_params(options: LabelOptions, manifest: Path | str) -> dict[str, Any]:
    """What shapes a source's labels (the model by its content, not only its name)."""
    return params_digester(options).params(windows=file_sha256(manifest))


@functools.lru_cache(maxsize=8)
def params_digester(options: LabelOptions) -> ParamsDigester:
    """``source_params`` without the manifest's digest, encoded once per options (100k sources)."""
    thresholds = dataclasses.asdict(options.thresholds)
    thresholds["disabled"] = sorted(options.thresholds.disabled)
    engine = options.engine
    return ParamsDigester({
        "model": options.model, "model_dir": str(options.model_dir), "weights": options.model_identity,
        "language": options.language or "auto",
        "mode": options.mode, "backend": options.backend, "script": options.script, "text": options.text, "filters": thresholds,
        "beam_size": engine.beam_size if engine else 1, "compute_type": engine.compute_type if engine else "",
        "encoder": engine.encoder if engine and options.backend == "ct2" else "",
        "task": engine.task if engine else "transcribe", "probe": options.language_probe_windows,
        "check_model": options.check_model_identity}, ("windows",))


def shard_of(source_id: str, shard_count: int) -> int:
    """Deterministic shard of a source (a stable hash, so adding sources moves none)."""
    return int(hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:8], 16) % shard_count


def segmented_sources(workspace: Workspace) -> list[str]:
    """Sources segment finished (DONE line and manifest present), sorted."""
    return list(segmented_manifests(workspace))


def segmented_manifests(workspace: Workspace) -> dict[str, os.stat_result]:
    """``segmented_sources``, each with its windows manifest's stat: ``pending_sources`` checks
    the manifests against the journal with them, rather than stat 100k manifests twice."""
    found = {}
    for sid in sorted(Journal(workspace, "segment").source_entries()):
        try:
            info = os.stat(workspace.windows_manifest_name(sid))
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            found[sid] = info
    return found


def read_source_record(workspace: Workspace, source_id: str) -> SourceRecord | None:
    """The source's record; None if harvest wrote none; SourceError if it cannot be read."""
    path = workspace.source_record_path(source_id)
    if not path.is_file():
        return None
    try:
        return SourceRecord.read(path)
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise SourceError(f"source record {path} cannot be read ({error}): rerun `python -m harvest` "
                          "for that source") from None


def read_window_records(workspace: Workspace, source_id: str) -> list[WindowRecord]:
    try:
        rows = read_jsonl(workspace.windows_manifest_path(source_id))
        windows = [WindowRecord.from_dict(r) for r in rows]
    except (OSError, ValueError, TypeError) as error:
        raise SourceError(f"{source_id}: windows manifest unreadable ({error}); rerun `python -m segment`") \
            from None
    return sorted(windows, key=lambda w: (w.start, w.index))


class Labeller:
    """Labels sources with one model loaded once (lazily: a run with nothing to do loads nothing)."""

    def __init__(self, workspace: Workspace, options: LabelOptions, log: Any) -> None:
        self.workspace, self.options, self.log = workspace, options, log
        self._engine: Ct2Engine | HfEngine | None = None
        self._check_engine: Ct2Engine | None = None

    @property
    def engine(self) -> Ct2Engine | HfEngine:
        if self._engine is None:
            engine = self.options.engine
            if self.options.backend == "transformers":
                self.log.info(f"loading model {self.options.model} with transformers ({engine.device})")
                device = "cuda" if engine.device == "cuda" else "cpu"
                self._engine = HfEngine(HfOptions(spec=self.options.model, device=device,
                                                  batch_size=engine.batch_size, beam_size=engine.beam_size,
                                                  task=engine.task, cpu_threads=engine.cpu_threads))
            else:
                self.log.info(f"loading model {self.options.model} from {self.options.model_dir} "
                              f"({engine.compute_type}, {engine.device}, encoder {engine.encoder})")
                self._engine = Ct2Engine(engine)
        return self._engine

    @property
    def check_engine(self) -> Ct2Engine | None:
        """The --check-model, loaded on first use with the main model's engine settings."""
        if self._check_engine is None and self.options.check_model_dir is not None:
            self.log.info(f"loading check model {self.options.check_model} from {self.options.check_model_dir}")
            self._check_engine = Ct2Engine(dataclasses.replace(self.options.engine,
                                                               model_dir=self.options.check_model_dir))
        return self._check_engine

    def source_language(self, windows: Sequence[WindowRecord]) -> str:
        """The run's --language, else the language of the source's most speech-like windows."""
        if self.options.language is not None:
            return self.options.language
        probes = sorted(windows, key=lambda w: -w.speech_ratio)[:max(1, self.options.language_probe_windows)]
        inputs = pack_probes(read_windows(self.workspace, probes))
        language, prob = detect_source_language(self.engine, inputs, [1.0] * len(inputs), len(inputs))
        self.log.info(f"{windows[0].source_id}: detected language {language} ({prob:.2f})")
        return language

    def decode(self, windows: Sequence[WindowRecord], bar: tqdm) -> tuple[str, list[WindowDecode]]:
        """Language and window decodes; window audio is read one batch (or chunk batch) at a time."""
        if not windows:
            return self.options.language or "", []
        language = self.source_language(windows)
        if self.options.backend == "transformers":
            return language, self.engine.decode_windows(self.reader(windows), len(windows), language, bar.update)
        return language, self.decode_with(self.engine, windows, language, bar.update)

    def reader(self, windows: Sequence[WindowRecord]) -> Callable[[Sequence[int]], list[np.ndarray]]:
        def read(rows: Sequence[int]) -> list[np.ndarray]:
            return read_windows(self.workspace, [windows[i] for i in rows])
        return read

    def decode_with(self, engine: Ct2Engine, windows: Sequence[WindowRecord], language: str,
                    progress: Callable[[float], None]) -> list[WindowDecode]:
        """Window decodes by ``engine`` in the run's mode."""
        read = self.reader(windows)
        if self.options.mode == "windows":
            return decode_windows(engine, read, len(windows), language, progress)
        return decode_longform(engine, windows, Timeline(self.workspace, windows), language, read, progress,
                               silent_below=self.silent_below)

    @property
    def silent_below(self) -> float | None:
        """VAD speech ratio under which long-form decoding skips audio: the no-speech filter
        rejects a window the VAD heard no speech in, whatever Whisper says."""
        th = self.options.thresholds
        return None if "no_speech" in th.disabled else th.min_speech_ratio

    def audio_seconds(self, windows: Sequence[WindowRecord]) -> float:
        """Seconds of audio a decode of ``windows`` goes through in the run's mode (its progress total)."""
        if self.options.mode == "windows":
            return sum(w.duration for w in windows)
        return max((w.end for w in windows), default=0.0)

    def check_decodes(self, windows: Sequence[WindowRecord], language: str) -> list[WindowDecode] | None:
        """The --check-model's decodes of the windows (same mode, same language); None without one."""
        engine = self.check_engine
        if engine is None or not windows:
            return None
        with tqdm(total=self.audio_seconds(windows), desc=f"check {windows[0].source_id}", unit="s",
                  leave=False) as bar:
            return self.decode_with(engine, windows, language, bar.update)

    def label_source(self, source_id: str) -> list[LabelRecord]:
        windows = read_window_records(self.workspace, source_id)
        with tqdm(total=self.audio_seconds(windows), desc=f"label {source_id}", unit="s", leave=False) as bar:
            language, decodes = self.decode(windows, bar)
        return self.finish_records(source_id, windows, language, decodes, self.check_decodes(windows, language))

    def finish_records(self, source_id: str, windows: Sequence[WindowRecord], language: str,
                       decodes: Sequence[WindowDecode], checks: Sequence[WindowDecode] | None) -> list[LabelRecord]:
        """A source's label records from its window decodes (and the --check-model's): agreement,
        script, subtitle references, filters. No model is needed here, so a driver that had the
        decodes made elsewhere (``label/cluster.py``) finishes sources exactly as this process does."""
        measures = measure_windows(self.reader(windows), len(windows))
        records = [label_record(w, d, m, language) for w, d, m in zip(windows, decodes, measures)]
        for record, check in zip(records, checks or ()):
            record.agreement = round(text_agreement(record.text, check.text, language), 4)
        for record in records:
            record.text = convert_script(record.text, self.options.script)
        self.add_references(source_id, records, windows, language)
        apply_filters(records, self.options.thresholds, language)
        if self.options.text == "subtitles":
            for record in records:
                if record.reference:
                    record.text = record.reference  # already in the --script script
        return sorted(records, key=lambda r: r.index)

    def add_references(self, source_id: str, records: list[LabelRecord], windows: Sequence[WindowRecord],
                       language: str) -> None:
        """Creator-subtitle text and CER per window, where harvest saved subtitles in ``language``."""
        source = read_source_record(self.workspace, source_id)
        path = pick_subtitles(self.workspace, source, language) if source else None
        if path is None:
            if source and any(s.kind == "manual" for s in source.subtitles):
                self.log.info(f"{source_id}: no creator subtitles in {language} "
                              f"(has {', '.join(s.language for s in source.subtitles)}): no reference text")
            return
        try:
            cues = parse_vtt(path.read_text(encoding="utf-8", errors="replace"))
        except SubtitleError as error:
            self.log.warning(f"{source_id}: subtitles {self.workspace.relative(path)} unreadable ({error}): "
                             "labelled without a reference; rerun harvest with --subs to fetch them again")
            return
        references = reference_texts(cues, windows, language)
        for record, reference in zip(records, references):
            if reference is not None:
                record.reference = convert_script(reference, self.options.script)
                record.reference_cer = round(cer(record.text, record.reference, language), 4)


def pack_probes(audios: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Probe windows laid end to end in inputs of at most 30 s.

    The encoder pays for 30 s whatever it is given, so eight 10 s probes cost three
    encoder passes instead of eight, and each detection hears 30 s of the source.
    """
    limit = seconds_to_samples(PROBE_INPUT_SECONDS)
    inputs: list[list[np.ndarray]] = []
    for audio in audios:
        audio = audio[:limit]
        if not inputs or sum(len(a) for a in inputs[-1]) + len(audio) > limit:
            inputs.append([])
        inputs[-1].append(audio)
    return [np.concatenate(parts) for parts in inputs]


def label_sources(workspace: Workspace, options: LabelOptions, log: Any) -> RunSummary:
    """Label this shard's unfinished sources, then rebuild the dataset if all are labelled."""
    summary = RunSummary()
    workspace.labels_dir.mkdir(parents=True, exist_ok=True)
    if options.shard_count == 1:  # shards run side by side: a temp file may be another shard's
        sweep_temp_files(workspace.labels_dir)
    journal = Journal(workspace, "label")
    labeller = Labeller(workspace, options, log)
    manifests = segmented_manifests(workspace)
    sources = list(manifests)
    from label.estimate import announce_estimate  # label.estimate builds on this module

    pending = pending_sources(workspace, options, journal, sources, summary, log, manifests)
    announce_estimate(workspace, options, labeller, pending, log)
    for source_id in pending:
        try:
            records = labeller.label_source(source_id)
        except SourceError as error:
            journal.mark_failed(source_unit(source_id), f"not labelled: {error}")
            summary.failed.append(source_id)
            continue
        except Exception as error:  # noqa: BLE001 - one source's failure (a CUDA error, a bug) ends only it
            if is_disk_full(error):
                raise
            log.opt(exception=error).debug(f"{source_id}: traceback")
            first = (str(error).strip().splitlines() or [""])[0][:300]
            journal.mark_failed(source_unit(source_id), f"not labelled: {type(error).__name__}: {first}")
            summary.failed.append(source_id)
            continue
        publish_labels(workspace, options, journal, source_id, records, log)
        summary.labelled.append(source_id)
    finish_run(workspace, options, sources, summary, log, recheck=options.shard_count > 1)
    return summary


def pending_sources(workspace: Workspace, options: LabelOptions, journal: Journal, sources: Sequence[str],
                    summary: RunSummary, log: Any, manifests: Mapping[str, os.stat_result] | None = None
                    ) -> list[str]:
    """This shard's sources not yet labelled with these params (the others go into ``summary``);
    ``manifests``: their windows manifests' stats, if just taken (``segmented_manifests``)."""
    pending = []
    skips = SkipLines(log, "already labelled")
    digester = params_digester(options)
    manifests = manifests or {}
    skipped_before = len(summary.skipped)
    for source_id in sources:
        if options.shard_count > 1 and shard_of(source_id, options.shard_count) != options.shard_index:
            summary.other_shards.append(source_id)
        elif is_labelled(workspace, journal, digester, source_id, options, manifests.get(source_id)):
            summary.skipped.append(source_id)
        else:
            pending.append(source_id)
    skips.lines(summary.skipped[skipped_before:], lambda source_id: f"{source_id}: already labelled, skipping")
    skips.close()
    return pending


def is_labelled(workspace: Workspace, journal: Journal, digester: ParamsDigester, source_id: str,
                options: LabelOptions, manifest_info: os.stat_result | None = None) -> bool:
    """Whether the source's labels are done with these options; the journal says why not, once.

    The digest alone answers for the sources that are done (100k of them on a rerun);
    the full params are built only for the others, to name what changed.
    """
    unit, manifest = source_unit(source_id), workspace.windows_manifest_name(source_id)
    if journal.stale_reason(unit, digester.digest_values((file_sha256(manifest, manifest_info),))) is None:
        return True
    return journal.is_done(unit, source_params(options, manifest))


def publish_labels(workspace: Workspace, options: LabelOptions, journal: Journal, source_id: str,
                   records: Sequence[LabelRecord], log: Any) -> None:
    """Write a source's labels in place (atomically) and journal them as done."""
    params = source_params(options, workspace.windows_manifest_path(source_id))
    path = workspace.labels_path(source_id)
    write_jsonl(path, [r.to_dict() for r in records])
    kept = sum(r.kept for r in records)
    journal.mark_done(source_unit(source_id), params, hashed=[path], extra={
        "windows": len(records), "kept": kept, "seconds": round(covered_seconds((r.start, r.end) for r in records if r.kept), 3)})
    log.info(f"{source_id}: {kept}/{len(records)} windows kept")


def finish_run(workspace: Workspace, options: LabelOptions, sources: Sequence[str], summary: RunSummary,
               log: Any, recheck: bool = True) -> None:
    """Rebuild the dataset if every segmented source is labelled (else say which wait).

    With ``recheck``, the journal is read again for every source (other shards may have
    finished meanwhile). A single-shard run held the workspace alone since its own check,
    so what it did not label is what failed: at 100k sources the second check cost as
    much as the first.
    """
    with dataset_lock(workspace):
        failed = set(summary.failed)
        pending = unlabelled_sources(workspace, options, sources) if recheck else \
            [sid for sid in sources if sid in failed]
        summary.dataset_waiting = [sid for sid in pending if sid not in failed]
        waiting = set(pending)
        labelled = [sid for sid in sources if sid not in waiting]
        if summary.dataset_waiting:
            log.info(f"dataset not rebuilt: {len(summary.dataset_waiting)} source(s) not labelled yet "
                     f"(other shards): {', '.join(summary.dataset_waiting[:5])}")
        elif labelled:
            if summary.failed:
                log.warning(f"dataset rebuilt without {len(summary.failed)} source(s) that failed: "
                            f"{', '.join(summary.failed[:5])}")
            try:
                summary.dataset_built, summary.report = build_dataset(workspace, options, labelled, log)
            except DatasetIncomplete as error:
                log.error(str(error))
                summary.dataset_failed = True
            except SourceError as error:
                log.error(f"dataset not built: {error}")
                summary.dataset_failed = True


@contextlib.contextmanager
def dataset_lock(workspace: Workspace) -> Iterator[None]:
    """Serialise dataset builds of concurrent shards (the second waits, then finds it done)."""
    with lock.hold(workspace.logs_dir / ".lock-label-dataset", wait=True):
        yield


def unlabelled_sources(workspace: Workspace, options: LabelOptions, sources: Sequence[str]) -> list[str]:
    journal = Journal(workspace, "label")  # re-read: other shards may have finished meanwhile
    digester = params_digester(options)
    return [sid for sid in sources if not is_labelled(workspace, journal, digester, sid, options)]


def dataset_params(listing: dict[str, dict[str, list]], settings: dict[str, Any]) -> dict[str, Any]:
    """The dataset unit's params: its label files by content (as a digest), their count and the settings.

    The listing itself is not kept in clear: the DONE line holds the options in clear, and
    at 100k sources a listing of every label file made each dataset build append 10 MB to
    log.txt (and to its index, read by every rerun). ``status`` recomputes the digest from
    the label lines to tell whether labels changed since the build.
    """
    return {"labels": params_digest(listing), "sources": len(listing), "settings": settings}


def dataset_settings(options: LabelOptions) -> dict[str, Any]:
    """The options a dataset was built with, as the card shows them (no local paths)."""
    return {"model": options.model if not Path(options.model).expanduser().is_absolute()
            else Path(options.model).name,
            "weights": options.model_identity, "backend": options.backend, "mode": options.mode,
            "language": options.language or "auto", "script": options.script, "text": options.text,
            "test_fraction": options.test_fraction, "format": options.dataset_format,
            "keep_fraction": "all" if options.keep_fraction is None
            else f"{options.keep_fraction:g} per {options.keep_scope}",
            **{k: v for k, v in dataclasses.asdict(options.thresholds).items() if k != "disabled"},
            "disabled filters": ", ".join(sorted(options.thresholds.disabled)) or "none"}


def read_label_records(workspace: Workspace, sources: Sequence[str]) -> list[LabelRecord]:
    records = []
    for sid in sources:
        try:
            records += [LabelRecord.from_dict(row) for row in read_jsonl(workspace.labels_path(sid))]
        except (OSError, ValueError, TypeError) as error:
            raise SourceError(f"labels of {sid} ({workspace.labels_path(sid)}) cannot be read ({error}): "
                              "delete the file and rerun `python -m label`") from None
    return records


def attribution_record(workspace: Workspace, source_id: str) -> SourceRecord:
    """The record that credits a source in the dataset card; SourceError if missing or unreadable."""
    record = read_source_record(workspace, source_id)
    if record is None:
        raise SourceError(f"source record {workspace.source_record_path(source_id)} is missing, so "
                          f"{source_id}'s windows would be published without attribution: rerun "
                          "`python -m harvest` for that source")
    return record


def build_dataset(workspace: Workspace, options: LabelOptions, sources: Sequence[str],
                  log: Any) -> tuple[bool, Path]:
    """Rebuild dataset/ from every source's labels unless the same build is already in place.

    Every source with a row in the dataset must have a readable source record: its
    attribution goes into the card, so an unreadable one fails the build (SourceError
    naming the file) rather than publishing rows nobody is credited for.
    """
    journal = Journal(workspace, "label")
    entries = journal.entries()
    settings = dataset_settings(options)
    params = dataset_params({sid: content_listing(entries[source_unit(sid)].files) for sid in sources}, settings)
    report_path = workspace.dataset_dir / REPORT_NAME
    if journal.is_done(DATASET_UNIT, params) and workspace.dataset_dir.is_dir():
        log.info("dataset already up to date, skipping")
        return False, report_path
    records = read_label_records(workspace, sources)
    if options.keep_fraction is not None:
        apply_keep_fraction(records, options.keep_fraction, options.keep_scope == "corpus")
    kept = [r for r in records if r.kept]
    source_records = [attribution_record(workspace, sid) for sid in sorted({r.source_id for r in kept})]
    flag_counts = collections.Counter(flag for r in records for flag in r.flags)
    languages = sorted({r.language for r in kept if r.language} | ({options.language} if options.language else set()))
    shards: ShardBuild | None = None
    with publish_folder(workspace.dataset_dir, provenance={"params": params, "settings": settings}) as tmp:
        if options.dataset_format == AUDIOFOLDER:
            summary, configs = write_split_folders(workspace, tmp, kept, options.test_fraction), []
        else:
            shards = write_shards(workspace, tmp, kept, options.test_fraction, workspace.dataset_dir, log)
            summary, configs = shard_summary(shards, len(kept)), card_configs(shards.shards)
            (tmp / MANIFEST_NAME).write_text(manifest_text(shards.shards), encoding="utf-8")
        (tmp / "README.md").write_text(dataset_card(summary, source_records, languages,
                                                    settings["model"], dict(flag_counts), len(records),
                                                    settings, records, configs), encoding="utf-8")
        (tmp / REJECTED_NAME).write_text(rejected_csv(records), encoding="utf-8")
        draw_report(records, tmp / REPORT_NAME)
    dataset = workspace.dataset_dir
    if shards is not None:
        log.info(f"dataset shards: {shards.reused} unchanged, {shards.written} written")
        if shards.failed:
            raise DatasetIncomplete(f"dataset published without {len(shards.failed)} source(s) whose audio cannot be read "
                              f"({', '.join(sorted(shards.failed)[:5])}): rerun `python -m segment`, then label")
        hashed, files = [dataset / MANIFEST_NAME, dataset / "README.md"], [dataset / s.file for s in shards.shards]
    else:
        hashed, files = [dataset / "train" / "metadata.csv", dataset / "test" / "metadata.csv",
                         dataset / "README.md"], []
    journal.mark_done(DATASET_UNIT, params, files=files, hashed=hashed,
                      extra={"rows": summary.rows, "rejected": len(records) - len(kept)})
    log.info(f"dataset rebuilt: train {summary.rows['train']} rows ({summary.seconds['train'] / 3600:.3f} h), "
             f"test {summary.rows['test']} rows ({summary.seconds['test'] / 3600:.3f} h), "
             f"{len(records) - len(kept)} windows rejected")
    return True, report_path


def shard_summary(build: ShardBuild, kept: int) -> DatasetSummary:
    """Rows and seconds per split of a Parquet build (what the card and the log report)."""
    rows = {split: sum(s.rows for s in build.shards if s.split == split) for split in ("train", "test")}
    seconds = {split: sum(s.seconds for s in build.shards if s.split == split) for split in ("train", "test")}
    return DatasetSummary(rows=rows, seconds=seconds, left_out=kept - sum(rows.values()))


def rejected_csv(records: Sequence[LabelRecord]) -> str:
    """The rejected windows with their reasons (for a human to audit the filters)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["source_id", "index", "start", "end", "flags", "text", "avg_logprob", "mean_word_prob",
                     "min_word_prob", "no_speech_prob", "compression_ratio", "chars_per_second", "speech_ratio",
                     "reference_cer"])
    for r in records:
        if r.flags:
            writer.writerow([r.source_id, r.index, r.start, r.end, " ".join(r.flags), r.text, r.avg_logprob,
                             _blank(r.mean_word_prob), _blank(r.min_word_prob), r.no_speech_prob,
                             r.compression_ratio, r.chars_per_second, r.speech_ratio, _blank(r.reference_cer)])
    return buffer.getvalue()


def _blank(value: float | None) -> float | str:
    return "" if value is None else value
