"""The speaking-rate rule on continuous read text full of numbers, URLs and symbols.

Builds one hour of continuous speech: Debian's licence texts (``/usr/share/common-licenses``:
Apache-2.0, GPL-3, MPL-2.0, Artistic, LGPL-2.1, GFDL-1.3, CC0-1.0, read by espeak-ng
en-us at 165 words per minute; version numbers, section numbers, years, URLs and
"50%"-like figures throughout), takes it in with the real harvest and segment (10 s
windows, 2 s overlap), labels it with the defaults, then re-applies the rate rule two
ways to the same decodes and audio:

* **written**: characters as written over webrtcvad's speech share of the window
  (floored at 0.2), the rule before this change;
* **spoken**: characters of the spoken form (``label.spoken``) over the seconds Silero
  VAD heard speech in (``label.vad_neural``), the rule now.

Every window is correctly transcribed speech (the labels are printed for the rejected
ones), so each rate rejection is a false one. Goal: >= 98 % of windows kept.

The same comparison runs on the 80 real clips of ``bench/label_quality.py`` back to back
as one 7.6 min source (its part 3): real speakers, whose pace varies far more than
espeak's, so the fences found there are the ones real sources get.

    .venv/bin/python bench/label_rate.py [--workspace DIR]
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

from whcore.window_audio import read_window  # noqa: E402
from label.cli import main as label_main  # noqa: E402
from label.filters import FilterThresholds, apply_filters  # noqa: E402
from label.quality import MIN_SPEECH_SHARE, chars_per_second, speech_seconds  # noqa: E402
from label.vad_neural import vad_figures  # noqa: E402
from label_memory import speak_hour  # noqa: E402
from label_workspace import build_workspace_from_files  # noqa: E402
from whcore.atomic import read_jsonl  # noqa: E402
from whcore.records import LabelRecord  # noqa: E402
from whcore.workspace import Workspace  # noqa: E402
from whcore.model_cache import cache_dir  # noqa: E402

LICENCES = ("Apache-2.0", "GPL-3", "MPL-2.0", "Artistic", "LGPL-2.1", "GFDL-1.3", "CC0-1.0")
GOAL_KEPT = 0.98


def licence_hour(folder: Path) -> Path:
    """One hour of espeak-ng reading the licence texts, 16 kHz mono (kept and reused)."""
    hour = folder / "licences_hour.wav"
    if hour.is_file():
        return hour
    text = folder / "licences.txt"
    text.write_text("\n".join(Path("/usr/share/common-licenses", name).read_text(encoding="utf-8")
                              for name in LICENCES), encoding="utf-8")
    return speak_hour(text, hour)


FACTORS = (1.5, 2.0, 2.5, 3.0)  # Tukey fence widths tried


def rejections(records: list[LabelRecord], rate: dict[int, float], language: str,
               factor: float | None = None) -> list[LabelRecord]:
    """The windows the rate rule rejects when each window's rate is ``rate[index]`` (every other
    filter applied as label applies it), with the fences ``factor`` IQR wide (default: label's)."""
    trial = [dataclasses.replace(r, flags=[], chars_per_second=rate[r.index]) for r in records]
    th = FilterThresholds() if factor is None else FilterThresholds(rate_iqr_factor=factor)
    apply_filters(trial, th, language)
    return [r for r in trial if "speaking_rate" in r.flags]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--parts", nargs="+", default=["licences", "real"], choices=["licences", "real"])
    args = parser.parse_args()
    base = args.workspace or Path(tempfile.mkdtemp(prefix="label-rate-"))
    base.mkdir(parents=True, exist_ok=True)
    ok = True
    if "licences" in args.parts:
        root = base / "ws"
        if not (root / "windows").is_dir():
            build_workspace_from_files(root, [licence_hour(base)], window=10.0, overlap=2.0)
        ok &= compare(root, "continuous read licence text") >= GOAL_KEPT
    if "real" in args.parts:
        sys.path.append(str(REPO / "bench"))  # after the repo: bench/label.py is not the label package
        from label_quality import build_back_to_back, real_clips

        root = base / "real-long"
        if not (root / "windows").is_dir():
            cache = cache_dir()
            build_back_to_back(root, real_clips(cache / "bench-real-speech"))
        compare(root, "80 real clips back to back")
    return 0 if ok else 1


def compare(root: Path, what: str) -> float:
    """Label ``root`` (unless labelled), print the rate rule's rejections both ways; the share label kept."""
    if not list((root / "labels").glob("*.jsonl")):
        assert label_main(["--workspace", str(root), "--language", "en"]) in (0, 1)
    records = [LabelRecord.from_dict(r) for path in sorted((root / "labels").glob("*.jsonl")) for r in read_jsonl(path)]
    workspace = Workspace(root)
    written, spoken = {}, {}
    for r in records:
        seconds = r.end - r.start
        written[r.index] = sum(not c.isspace() for c in r.text) / (seconds * min(1.0, max(r.speech_ratio,
                                                                                           MIN_SPEECH_SHARE)))
        vad = vad_figures(read_window(workspace, r))
        spoken[r.index] = chars_per_second(r.text, speech_seconds(seconds, r.speech_ratio, vad), "en")
    flags = collections.Counter(f for r in records for f in r.flags)
    print(f"\n{len(records)} windows of {what}; label's flags: {dict(flags)}; "
          f"kept {sum(r.kept for r in records) / len(records):.1%} (goal >= {GOAL_KEPT:.0%}; machine shared, "
          f"load {os.getloadavg()[0]:.1f})")
    for name, rate in (("written / webrtcvad share (before)", written), ("spoken / Silero seconds (now)", spoken)):
        rejected = rejections(records, rate, "en")
        values = sorted(rate.values())
        print(f"  {name}: {len(rejected)} of {len(records)} rejected for speaking_rate "
              f"({len(rejected) / len(records):.1%}); rates median {values[len(values) // 2]:.1f} chars/s")
        for r in rejected[:12]:
            print(f"    #{r.index} {rate[r.index]:.1f}/s {r.text[:90]!r}")
        print("    by fence width: " + ", ".join(f"{k:g} IQR {len(rejections(records, rate, 'en', k))}"
                                            for k in FACTORS))
    return sum(r.kept for r in records) / len(records)


if __name__ == "__main__":
    sys.exit(main())
