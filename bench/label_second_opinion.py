"""A non-Whisper second opinion: does agreement with pocketsphinx rank bad English labels better?

Every check model that installs offline is a Whisper, whose mistakes agree with the
seed's. pocketsphinx 5.1.1 (PyPI wheel, ships a US-English acoustic model, language
model and dictionary; an HMM recogniser) makes different ones. On the 80 real clips of
``bench/label_quality.py`` (labelled by ``bench/label_music.py``'s ``speech clean``
condition, or by label here), each clip's label is compared with pocketsphinx's text
for it (agreement = 1 - CER between the two, as ``label --check-model`` scores it), and
the clips are ranked by that agreement, by the seed's mean word probability, and by
the two combined (their mean). Reported: kept CER when keeping the 75 % each ranks
highest, against the seed's mean CER over all clips (issue 11's goal: <= 0.6x).

    .venv/bin/python bench/label_second_opinion.py --workspace DIR   # a labelled one-clip-per-source workspace
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.append(str(REPO / "bench"))  # after the repo: bench/label.py is not the label package

import numpy as np  # noqa: E402

from whcore.window_audio import read_window  # noqa: E402
from label.quality import text_agreement  # noqa: E402
from label_quality import cer_of, real_clips, read_labels  # noqa: E402
from label_signals import top_mean  # noqa: E402
from whcore.records import sanitize_id  # noqa: E402
from whcore.workspace import Workspace  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

GOAL_KEPT, GOAL_RATIO = 0.75, 0.6


def sphinx_text(audio: np.ndarray) -> str:
    """pocketsphinx's default US-English recognition of 16 kHz mono float audio."""
    from pocketsphinx import Decoder

    decoder = sphinx_text.decoder = getattr(sphinx_text, "decoder", None) or Decoder(loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    args = parser.parse_args()
    cache = cache_dir()
    clips = real_clips(cache / "bench-real-speech")
    truth = {(sanitize_id(c.path.stem), 0): c.reference for c in clips}
    records = [r for r in read_labels(args.workspace) if (r.source_id, r.index) in truth]
    workspace = Workspace(args.workspace)
    started = time.perf_counter()
    agreement = [text_agreement(r.text, sphinx_text(read_window(workspace, r)), "en")
                 for r in records]
    seconds = time.perf_counter() - started
    cers = [cer_of(r, truth) for r in records]
    seed = statistics.mean(cers)
    count = round(GOAL_KEPT * len(records))
    word_prob = [-1.0 if r.mean_word_prob is None else r.mean_word_prob for r in records]
    print(f"\n{len(records)} real clips; seed mean CER {seed:.3f}; pocketsphinx took {seconds:.0f} s for "
          f"{sum(r.end - r.start for r in records) / 60:.1f} min of audio (machine shared)")
    print(f"keeping the {count} clips ({GOAL_KEPT:.0%}) each signal ranks highest:")
    for name, signal in (("mean word probability", word_prob), ("agreement with pocketsphinx", agreement),
                         ("mean of the two", [(a + b) / 2 for a, b in zip(agreement, word_prob)]),
                         ("true CER (best possible)", [-c for c in cers])):
        kept = top_mean(signal, cers, count)
        print(f"  {name:<30} kept CER {kept:.3f} = {kept / seed:.2f}x seed (goal <= {GOAL_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
