"""Which ``--min-snr`` pays: real speech under real-world noise, labelled, scored per estimated SNR.

Real English clips of ``bench/label_quality.py`` (exact transcripts; provenance and
licences there), each one source and one 30 s window as in ``bench/label_music.py``,
in conditions: clean; white noise at 10 and 3 dB; pink noise at 3 dB; a real
instrumental music bed (``bench/real_audio.py``'s Debian tracks) at 3 dB
speech-to-noise (RMS over the clip). Each condition is labelled by the real
harvest -> segment -> label with the defaults (``--language en``), which also
writes every window's ``snr_db`` (``label.snr``, WADA-SNR).

Then, for each candidate threshold, the current filters are applied again to the
stored records with ``--min-snr`` at that value (no decode): share kept and mean
kept CER, per condition and pooled. A threshold pays when it removes windows whose
labels are worse than the ones it keeps, at little cost to clean speech.

    .venv/bin/python bench/label_snr.py [--workspace DIR] [--clips 40]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.append(str(REPO / "bench"))  # after the repo: bench/label.py is not the label package

import numpy as np  # noqa: E402

from label.filters import FilterThresholds, apply_filters  # noqa: E402
from label_music import label  # noqa: E402
from label_quality import cer_of, real_clips, read_labels  # noqa: E402
from label_workspace import AudioSource, build_workspace, decode_file, pink_noise  # noqa: E402
from real_audio import debian_root, music_tracks, rms  # noqa: E402
from whcore.records import SAMPLE_RATE, sanitize_id  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

THRESHOLDS_DB = (-20.0, 0.0, 3.0, 5.0, 8.0, 10.0, 15.0)  # -20: the estimator's floor, i.e. no filter
CONDITIONS = (("clean", None, None), ("white 10 dB", "white", 10.0), ("white 3 dB", "white", 3.0),
              ("pink 3 dB", "pink", 3.0), ("music 3 dB", "music", 3.0))


def noisy(audio: np.ndarray, kind: str | None, snr_db: float | None, seed: int, music: list[np.ndarray]) -> np.ndarray:
    """``audio`` with ``kind`` noise at ``snr_db`` dB (RMS over the whole clip)."""
    if kind is None:
        return audio
    seconds = len(audio) / SAMPLE_RATE
    if kind == "white":
        noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    elif kind == "pink":
        noise = pink_noise(seconds, 1.0, seed)[: len(audio)]
    else:
        track = music[seed % len(music)]
        offset = (seed * 7 * SAMPLE_RATE) % max(1, len(track) - len(audio))
        noise = track[offset:offset + len(audio)]
    noise = noise * (rms(audio) / rms(noise)) / 10 ** (snr_db / 20)
    mixed = audio + noise
    return (mixed / max(1.0, float(np.abs(mixed).max()))).astype(np.float32)


def refilter(records: list, threshold: float) -> list:
    """The stored records with the current filters at ``--min-snr threshold`` (one source per clip)."""
    th = FilterThresholds(min_snr_db=threshold)
    by_source: dict[str, list] = collections.defaultdict(list)
    for record in records:
        by_source[record.source_id].append(dataclasses.replace(record, flags=[]))
    return [r for group in by_source.values() for r in apply_filters(group, th, "en")]


def summary(records: list, truth: dict) -> tuple[float, float, int]:
    """Share kept, mean kept CER, windows kept."""
    kept = [r for r in records if r.kept]
    cer = float(np.mean([cer_of(r, truth) for r in kept])) if kept else float("nan")
    return len(kept) / max(1, len(records)), cer, len(kept)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--clips", type=int, default=40, help="real clips per condition (every k-th of the 80)")
    args = parser.parse_args()
    base = args.workspace or Path(tempfile.mkdtemp(prefix="label-snr-"))
    cache = cache_dir()
    clips = real_clips(cache / "bench-real-speech")
    clips = clips[:: max(1, len(clips) // args.clips)][: args.clips]
    truth = {(sanitize_id(c.path.stem), 0): c.reference for c in clips}
    speech = [decode_file(c.path) for c in clips]
    music = list(music_tracks(debian_root(cache / "bench-real-audio")).values())
    results = {}
    for name, kind, snr in CONDITIONS:
        folder = base / sanitize_id(name.replace(" ", "_"))
        if not (folder / "windows").is_dir():
            sources = [AudioSource(sanitize_id(c.path.stem), noisy(a, kind, snr, i, music))
                       for i, (c, a) in enumerate(zip(clips, speech))]
            build_workspace(folder, sources, window=30.0, overlap=0.0, extra_segment_args=["--min-tail", "0.5"])
        if not (folder / "labels").is_dir() or not read_labels(folder):
            label(folder)
        results[name] = read_labels(folder)
    print(f"\n{len(clips)} real clips per condition; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'condition':<14}{'estimated SNR dB: p10 / median / p90':>40}")
    for name, records in results.items():
        values = [r.snr_db for r in records if r.snr_db is not None]
        print(f"{name:<14}{np.percentile(values, 10):>22.1f} / {np.median(values):5.1f} / {np.percentile(values, 90):5.1f}")
    header = "".join(f"{name:>20}" for name in results) + f"{'pooled':>20}"
    print(f"\n--min-snr  kept share / mean kept CER per condition\n{'':<10}{header}")
    for threshold in THRESHOLDS_DB:
        row, pooled = f"{threshold:<10g}", []
        for name, records in results.items():
            filtered = refilter(records, threshold)
            pooled += filtered
            share, cer, _ = summary(filtered, truth)
            row += f"{share:>12.1%} / {cer:5.3f}"
        share, cer, _ = summary(pooled, truth)
        row += f"{share:>12.1%} / {cer:5.3f}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
