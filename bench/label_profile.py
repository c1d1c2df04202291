"""Where ``python -m label``'s time goes: one in-process run with a stopwatch on each step.

Runs label's own ``main`` on a copy of a prepared workspace (``bench/label.py``
builds them) with timers wrapped around the calls that matter: imports, model
load, window reading, log-mel features, encoder, language detection, decoder,
word alignment, mapping words to windows, filters, dataset build and report.
Time not inside any timer is the rest (Python glue, journal, progress bar).
Wall and CPU seconds (all threads of the process) are both printed: on a shared
machine the CPU seconds say more about the work itself.
Nested timers are reported on their own lines and are not subtracted from the
outer one (``encode`` includes ``features``), so the shares of the top-level
rows add up to the whole.

    .venv/bin/python bench/label_profile.py WORKSPACE --language en [--cprofile out.prof]
"""

from __future__ import annotations

import argparse
import collections
import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPENT: dict[str, float] = collections.defaultdict(float)  # wall seconds
CPU: dict[str, float] = collections.defaultdict(float)  # process CPU seconds (all threads)
CALLS: collections.Counter[str] = collections.Counter()
TOP_LEVEL = ("imports", "model load", "read windows", "encode", "language detection", "decode",
             "word alignment", "words to windows", "filters and records", "dataset build")


def timer(bucket: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[bucket] += time.perf_counter() - started
            CPU[bucket] += time.process_time() - cpu
            CALLS[bucket] += 1
    return timed


def wrap(owner: Any, name: str, bucket: str) -> None:
    """Time ``owner.name`` (a module function or a class method) under ``bucket``, if it exists."""
    if hasattr(owner, name):
        setattr(owner, name, timer(bucket, getattr(owner, name)))


def instrument() -> None:
    """Wrap every step label takes; names missing in this version of label are skipped."""
    import label.audio as audio
    import label.backend_ct2 as ct2
    import label.decoding as decoding
    import label.longform as longform
    import label.run as run

    wrap(ct2.Ct2Engine, "__init__", "model load")
    wrap(ct2.Ct2Engine, "features", "  features (log-mel, in encode)")
    wrap(ct2.Ct2Engine, "encode", "encode")
    wrap(ct2.Ct2Engine, "detect_language", "language detection")
    wrap(ct2.Ct2Engine, "language_probs", "language detection")
    wrap(ct2.Ct2Engine, "decode", "decode")
    wrap(ct2.Ct2Engine, "align_words", "word alignment")
    wrap(ct2, "_words_from_alignment", "  words from alignment (Python, in alignment)")
    wrap(getattr(audio, "Timeline", None), "__getitem__", "read windows")
    for module in (run, longform, decoding):
        wrap(module, "read_windows", "read windows")
        wrap(module, "reassemble", "read windows")
        wrap(module, "words_to_windows", "words to windows")
    wrap(run, "apply_filters", "filters and records")
    wrap(run, "label_record", "filters and records")
    wrap(run, "build_dataset", "dataset build")
    wrap(run, "draw_report", "  report.png (in dataset build)")
    wrap(run, "write_split_folders", "  split folders (in dataset build)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path, help="a prepared workspace (copied; the original is untouched)")
    parser.add_argument("--language", default=None)
    parser.add_argument("--cprofile", type=Path, default=None, help="also write a cProfile dump here")
    parser.add_argument("label_args", nargs="*", help="more label arguments (after --)")
    args = parser.parse_args()
    copy = Path(tempfile.mkdtemp(prefix="label-profile-")) / "ws"
    shutil.copytree(args.workspace, copy, symlinks=True)
    imports_started, imports_cpu = time.perf_counter(), time.process_time()
    from label.cli import main as label_main

    SPENT["imports"] += time.perf_counter() - imports_started
    CPU["imports"] += time.process_time() - imports_cpu
    instrument()
    argv = ["--workspace", str(copy), *(["--language", args.language] if args.language else []), *args.label_args]
    started, cpu_started = time.perf_counter(), time.process_time()
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        code = profiler.runcall(label_main, argv)
        profiler.dump_stats(str(args.cprofile))
    else:
        code = label_main(argv)
    total = time.perf_counter() - started + SPENT["imports"]
    total_cpu = time.process_time() - cpu_started + CPU["imports"]
    shutil.rmtree(copy.parent, ignore_errors=True)
    print(f"label exit {code}; {total:.2f} s wall, {total_cpu:.2f} s CPU from import to exit "
          f"(+{imports_started - STARTED:.2f} s interpreter and bench set-up before it)")
    print(f"  {'step':46s} {'wall':>8s} {'share':>6s} {'CPU':>8s} {'share':>6s}")
    top, top_cpu = sum(SPENT[b] for b in TOP_LEVEL), sum(CPU[b] for b in TOP_LEVEL)
    for bucket in sorted(SPENT, key=lambda b: (b.startswith(" "), -CPU[b])):
        print(f"  {bucket:46s} {SPENT[bucket]:7.2f}s {100 * SPENT[bucket] / total:5.1f}% {CPU[bucket]:7.2f}s "
              f"{100 * CPU[bucket] / total_cpu:5.1f}%  ({CALLS[bucket] or 1} calls)")
    print(f"  {'rest (Python glue, journal, progress)':46s} {total - top:7.2f}s {100 * (total - top) / total:5.1f}% "
          f"{total_cpu - top_cpu:7.2f}s {100 * (total_cpu - top_cpu) / total_cpu:5.1f}%")
    return code


if __name__ == "__main__":
    sys.exit(main())
