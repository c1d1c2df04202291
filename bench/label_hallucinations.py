"""What the seed model writes on audio with no speech in it: the source of label's phrase lists.

Runs the seed (``offline-base``) with ``--mode windows`` (every window decoded on its own,
as a window after a cut would be) on non-speech audio that installs offline
(``bench/real_audio.py``: instrumental game and music-on-hold tracks, drum loops, a choir,
vinyl hiss, applause-like claps) plus generated silence of several kinds (digital zero,
dither, mains hum, white, pink and brown noise at several levels), once per
``--languages`` (the language forced, as ``label --language`` would), and prints every
text it wrote, most frequent first, marking those the phrase lists already block. The
lists in ``label/data/hallucinations/`` are grown from this output by hand: a stock
phrase (a sign-off, a subtitle credit) goes in; a plain word that real speech also says
("music", "so") does not, since the no-speech and music rules judge those windows.

    .venv/bin/python bench/label_hallucinations.py [--languages en zh ...] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.append(str(REPO / "bench"))  # after the repo: bench/label.py is not the label package

import numpy as np  # noqa: E402

from label.cli import main as label_main  # noqa: E402
from label.filters import check_blocklist, FilterThresholds, normalise  # noqa: E402
from label_workspace import AudioSource, build_workspace, pink_noise, silence, white_noise  # noqa: E402
from real_audio import applause, debian_root, hiss, loops, music_tracks  # noqa: E402
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.records import SAMPLE_RATE, LabelRecord  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

WINDOW_SECONDS = 10.0
MUSIC_SECONDS = 60.0  # taken from the middle of each track
NOISE_SECONDS = 30.0


def brown_noise(seconds: float, level: float, seed: int) -> np.ndarray:
    walk = np.cumsum(np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)))
    walk -= np.convolve(walk, np.ones(4000) / 4000, mode="same")  # drop the drift, keep the rumble
    return (walk / np.abs(walk).max() * level).astype(np.float32)


def hum(seconds: float, hz: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * (np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(2 * np.pi * 3 * hz * t))).astype(np.float32)


def non_speech_sources(data: Path) -> list[AudioSource]:
    root = debian_root(data)
    sources = []
    for name, audio in music_tracks(root).items():
        middle = len(audio) // 2
        half = int(MUSIC_SECONDS * SAMPLE_RATE) // 2
        sources.append(AudioSource(f"music_{name}", audio[max(0, middle - half):middle + half]))
    sources.append(AudioSource("loops", np.concatenate(list(loops(root, WINDOW_SECONDS).values()))))
    sources.append(AudioSource("hiss", hiss(root, NOISE_SECONDS)))
    sources.append(AudioSource("applause", applause(root, NOISE_SECONDS)))
    generated = [silence(NOISE_SECONDS), white_noise(NOISE_SECONDS, level=0.0005, seed=1),  # dither
                 hum(NOISE_SECONDS, 50.0, 0.02), hum(NOISE_SECONDS, 60.0, 0.2),
                 white_noise(NOISE_SECONDS, level=0.02, seed=2), white_noise(NOISE_SECONDS, level=0.2, seed=3),
                 pink_noise(NOISE_SECONDS, level=0.05, seed=4), pink_noise(NOISE_SECONDS, level=0.3, seed=5),
                 brown_noise(NOISE_SECONDS, 0.1, 6), brown_noise(NOISE_SECONDS, 0.5, 7)]
    sources.append(AudioSource("generated", np.concatenate(generated)))
    return sources


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--languages", nargs="+", default=["en", "zh", "ja", "ko", "de", "fr", "es"])
    parser.add_argument("--workspace", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--data", type=Path, default=None, help="where the Debian packages are kept")
    args = parser.parse_args()
    base = args.workspace or Path(tempfile.mkdtemp(prefix="label-hallucinations-"))
    data = args.data or cache_dir() \
        / "bench-real-audio"
    sources = non_speech_sources(data)
    for language in args.languages:
        root = base / language
        if not (root / "windows").is_dir():
            build_workspace(root, sources, window=WINDOW_SECONDS, overlap=0.0)
        assert label_main(["--workspace", str(root), "--language", language, "--mode", "windows"]) in (0, 1)
        records = [LabelRecord.from_dict(r) for path in sorted((root / "labels").glob("*.jsonl"))
                   for r in read_jsonl(path)]
        texts = collections.Counter(normalise(r.text) for r in records if normalise(r.text))
        print(f"\n[{language}] {len(records)} non-speech windows, {sum(texts.values())} with text, "
              f"{len(texts)} distinct texts (B = already blocked):")
        for text, count in texts.most_common():
            probe = LabelRecord(source_id="s", index=0, start=0.0, end=10.0, path="w.wav", text=text)
            blocked = check_blocklist(probe, FilterThresholds(), language) == "blocklist"
            print(f"  {count:3d} {'B' if blocked else ' '} {text[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
