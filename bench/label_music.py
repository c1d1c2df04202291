"""Label on real channels' sounds: music alone, talk over a music bed, claps, hiss, short prompts.

Real recordings only, all installable offline: the 80 real English clips of
``bench/label_quality.py`` (exact transcripts) and the Debian music, loops, hiss,
claps and recorded prompts of ``bench/real_audio.py`` (packages and licences listed
there). Conditions, each its own workspace labelled by the real harvest -> segment ->
label with the defaults and ``--language en``:

* ``speech clean``: each clip one source and one window (``segment --window 30``);
* ``speech + music S dB``: the same clips over a music bed (a different track and
  offset per clip) at S dB speech-to-music (RMS over the speech's active part);
* ``music``: the instrumental tracks cut in 10 s windows (``--music-windows`` per track);
* ``loops``: drum loops, a choir phrase and a piano phrase, each repeated to 10 s;
* ``claps``, ``hiss``: applause-like claps (real snaps at random times), vinyl hiss;
* ``prompts``: real recorded telephone prompts of a few words, each alone in an
  otherwise quiet 10 s window, one source (so the speaking-rate fences apply).

Per condition: windows, share kept, kept CER (where a transcript exists), rejections
by reason. Goals: music alone >= 95 % rejected; speech over music at 10 dB >= 90 % kept
with kept CER <= 1.2x the same clips clean; clean speech and prompts >= 98 % kept.
Then the throughput cost of the new per-window measures (Silero VAD, tonality:
``label.measures``): their time on the clean-speech windows against label's own wall
time on the same workspace (goal <= 15 %).

With ``--refilter`` on a workspace labelled before, nothing is decoded again: every
window's measures are taken anew with the current code and the current filters are
applied to the stored decodes, which is what label would write now for the same text.

    .venv/bin/python bench/label_music.py [--workspace DIR] [--snr 10 0] [--refilter]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.append(str(REPO / "bench"))  # after the repo: bench/label.py is not the label package

import numpy as np  # noqa: E402

from label.audio import read_windows  # noqa: E402
from label.cli import main as label_main  # noqa: E402
from label.measures import measure_windows  # noqa: E402
from label_quality import cer_of, real_clips, read_labels  # noqa: E402
from label_workspace import AudioSource, build_workspace, decode_file  # noqa: E402
from real_audio import applause, debian_root, hiss, loops, mix, music_tracks, prompts  # noqa: E402
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.records import SAMPLE_RATE, WindowRecord, sanitize_id  # noqa: E402
from whcore.workspace import Workspace  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

WINDOW_SECONDS = 10.0
PROMPT_NOISE = 0.0005  # room-tone level around each prompt (about -66 dBFS RMS)
GOAL_MUSIC_REJECTED, GOAL_BED_KEPT, GOAL_BED_CER, GOAL_CLEAN_KEPT, GOAL_COST = 0.95, 0.90, 1.2, 0.98, 0.15


def label(root: Path) -> float:
    """Label ``root`` with the defaults; its wall seconds."""
    started = time.perf_counter()
    assert label_main(["--workspace", str(root), "--language", "en"]) in (0, 1)
    return time.perf_counter() - started


def speech_sources(clips: list, speech: list[np.ndarray], music: list[np.ndarray],
                   snr_db: float | None) -> list[AudioSource]:
    sources = []
    for i, (clip, audio) in enumerate(zip(clips, speech)):
        if snr_db is not None:
            track = music[i % len(music)]
            offset = (i * 7 * SAMPLE_RATE) % max(1, len(track) - len(audio))
            audio = mix(audio, track[offset:], snr_db)
        sources.append(AudioSource(sanitize_id(clip.path.stem), audio))
    return sources


def prompt_source(root: Path, count: int) -> AudioSource:
    rng = np.random.default_rng(0)
    window = int(WINDOW_SECONDS * SAMPLE_RATE)
    pieces = []
    for name, audio in list(prompts(root).items())[:count]:
        piece = (rng.standard_normal(window) * PROMPT_NOISE).astype(np.float32)
        audio = audio[: window - SAMPLE_RATE]
        at = int(rng.integers(SAMPLE_RATE // 2, window - len(audio) - SAMPLE_RATE // 4))
        piece[at:at + len(audio)] += audio
        pieces.append(piece)
    return AudioSource("prompts", np.concatenate(pieces))


def music_sources(tracks: dict[str, np.ndarray], windows_per_track: int) -> list[AudioSource]:
    span = int(windows_per_track * WINDOW_SECONDS * SAMPLE_RATE)
    return [AudioSource(f"music_{sanitize_id(name)}", audio[max(0, len(audio) // 2 - span // 2):][:span])
            for name, audio in tracks.items()]


def kept_without_silero(records: list) -> float:
    """Share the filters keep with the Silero no-speech and music rules switched off (label before them)."""
    from label.filters import FilterThresholds, apply_filters

    th = FilterThresholds(min_vad_voice_seconds=0.0, disabled=frozenset({"music"}))
    by_source: dict[str, list] = collections.defaultdict(list)
    for record in records:
        by_source[record.source_id].append(dataclasses.replace(record, flags=[]))
    trial = [r for group in by_source.values() for r in apply_filters(group, th, "en")]
    return sum(r.kept for r in trial) / max(1, len(trial))


def report(name: str, records: list, truth: dict | None) -> dict:
    kept = [r for r in records if r.kept]
    flags = collections.Counter(flag for r in records for flag in r.flags)
    cer = float(np.mean([cer_of(r, truth) for r in kept])) if truth and kept else float("nan")
    print(f"  {name:<22} {len(records):4d} windows  kept {len(kept) / max(1, len(records)):6.1%} "
          f"(without the Silero rules {kept_without_silero(records):6.1%})  kept CER {cer:.3f}  "
          f"rejected by {dict(flags.most_common())}")
    return {"kept": len(kept) / max(1, len(records)), "cer": cer}


def refiltered(root: Path) -> list:
    """The labels of ``root`` with measures and filters as the current code takes and applies them."""
    from label.filters import FilterThresholds, apply_filters
    from label.quality import chars_per_second, speech_seconds

    workspace, out = Workspace(root), []
    by_source: dict[str, list] = collections.defaultdict(list)
    for record in read_labels(root):
        by_source[record.source_id].append(record)
    for records in by_source.values():
        audio = read_windows(workspace, records)
        for record, samples in zip(records, audio):
            m = measure_windows(lambda rows: [samples], 1)[0]
            record.vad_speech_prob, record.vad_speech_seconds = round(m.vad.speech_prob, 4), m.vad.speech_seconds
            record.vad_voice_seconds, record.tonality = m.vad.voice_seconds, round(m.tonality, 4)
            seconds = speech_seconds(record.end - record.start, record.speech_ratio, m.vad)
            record.chars_per_second = chars_per_second(record.text, seconds, "en")
        out += apply_filters(records, FilterThresholds(), "en")
    return out


def measures_seconds(root: Path) -> float:
    """Seconds ``label.measures`` takes over every window of ``root`` (read included)."""
    workspace = Workspace(root)
    windows = [WindowRecord.from_dict(r) for path in sorted((root / "windows").glob("*/windows.jsonl"))
               for r in read_jsonl(path)]
    started = time.perf_counter()
    measure_windows(lambda rows: read_windows(workspace, [windows[i] for i in rows]), len(windows))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--snr", type=float, nargs="+", default=[10.0, 0.0], help="speech-to-music ratios, dB")
    parser.add_argument("--music-windows", type=int, default=12, help="10 s windows taken from each track")
    parser.add_argument("--prompts", type=int, default=60, help="recorded prompts, one per quiet window")
    parser.add_argument("--clips", type=int, default=None,
                        help="real clips in the speech conditions (every k-th of the 80) [all]")
    parser.add_argument("--only", nargs="+", default=None, metavar="CONDITION",
                        help="run only these conditions (speech clean, speech + music S dB, music, loops, claps, "
                             "hiss, prompts) [all]")
    parser.add_argument("--refilter", action="store_true",
                        help="labelled workspace: re-measure and re-filter the stored decodes, decode nothing")
    args = parser.parse_args()
    base = args.workspace or Path(tempfile.mkdtemp(prefix="label-music-"))
    cache = cache_dir()
    root = debian_root(cache / "bench-real-audio")
    clips = real_clips(cache / "bench-real-speech")
    if args.clips:
        clips = clips[:: max(1, len(clips) // args.clips)][: args.clips]
    truth = {(sanitize_id(c.path.stem), 0): c.reference for c in clips}
    tracks: dict[str, np.ndarray] = {}
    speech: list[np.ndarray] = []

    def prepared() -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        """Decoded clips and tracks, decoded on first need (a --refilter run needs none)."""
        if not tracks:
            tracks.update(music_tracks(root))
            speech.extend(decode_file(clip.path) for clip in clips)
        return speech, tracks

    def speech_condition(snr: float | None) -> Callable[[], list[AudioSource]]:
        return lambda: speech_sources(clips, prepared()[0], list(prepared()[1].values()), snr)

    conditions: list[tuple[str, Callable[[], list[AudioSource]], dict | None, float, list[str]]] = [
        ("speech clean", speech_condition(None), truth, 30.0, ["--min-tail", "0.5"])]
    conditions += [(f"speech + music {snr:g} dB", speech_condition(snr), truth, 30.0, ["--min-tail", "0.5"])
                   for snr in args.snr]
    conditions += [("music", lambda: music_sources(prepared()[1], args.music_windows), None, WINDOW_SECONDS, []),
                   ("loops", lambda: [AudioSource("loops", np.concatenate(list(loops(root, WINDOW_SECONDS).values())))],
                    None, WINDOW_SECONDS, []),
                   ("claps", lambda: [AudioSource("claps", np.concatenate([applause(root, 30.0, seed=s)
                                                                          for s in (1, 2)]))], None, WINDOW_SECONDS, []),
                   ("hiss", lambda: [AudioSource("hiss", hiss(root, 30.0))], None, WINDOW_SECONDS, []),
                   ("prompts", lambda: [prompt_source(root, args.prompts)], None, WINDOW_SECONDS, [])]
    results, wall = {}, {}
    if args.only:
        conditions = [c for c in conditions if c[0] in args.only]
    for name, sources, condition_truth, window, extra in conditions:
        folder = base / sanitize_id(name.replace(" ", "_").replace("+", "and"))
        if args.refilter:
            wall[name] = float("nan")
            results[name] = (folder, refiltered(folder), condition_truth)
            continue
        if not (folder / "windows").is_dir():
            build_workspace(folder, sources(), window=window, overlap=0.0, extra_segment_args=extra)
        wall[name] = label(folder)
        results[name] = (folder, read_labels(folder), condition_truth)
    print(f"\nper condition (real audio; label defaults, --language en; machine shared, load "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    figures = {name: report(name, records, t) for name, (_, records, t) in results.items()}
    clean = figures["speech clean"]
    ok = True
    music_rejected = 1 - figures["music"]["kept"]
    ok &= music_rejected >= GOAL_MUSIC_REJECTED
    print(f"\nmusic alone rejected {music_rejected:.1%} (goal >= {GOAL_MUSIC_REJECTED:.0%})")
    if "speech + music 10 dB" in figures:
        bed = figures["speech + music 10 dB"]
        ratio = bed["cer"] / clean["cer"] if clean["cer"] > 0 else float("nan")
        ok &= bed["kept"] >= GOAL_BED_KEPT and ratio <= GOAL_BED_CER
        print(f"speech over music at 10 dB: kept {bed['kept']:.1%} (goal >= {GOAL_BED_KEPT:.0%}), kept CER "
              f"{ratio:.2f}x clean (goal <= {GOAL_BED_CER})")
    print(f"clean speech kept {clean['kept']:.1%}, prompts kept {figures['prompts']['kept']:.1%} "
          f"(goal >= {GOAL_CLEAN_KEPT:.0%} where the labels are right)")
    if args.refilter:
        print("(re-filtered stored decodes: no label wall time to compare the measures with)")
        return 0 if ok else 1
    folder = results["speech clean"][0]
    cost = measures_seconds(folder)
    share = cost / max(1e-9, wall["speech clean"] - cost)
    ok &= share <= GOAL_COST
    print(f"new measures on the clean-speech windows: {cost:.1f} s against label's {wall['speech clean']:.1f} s "
          f"wall less them = {share:.1%} (goal <= {GOAL_COST:.0%}; same machine, same minutes)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
