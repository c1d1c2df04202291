"""How fast ``finetune plan`` answers, and that depth extrapolation changes none of its answers.

    .venv/bin/python bench/plan.py                         # small/6, medium/8, turbo/8, large-v3/12 GiB
    .venv/bin/python bench/plan.py --cases small:6

For each (model, GiB) case, in this process (imports and warm-up paid before
timing): the planner with every configuration simulated at full depth (the
baseline, what ``finetune plan`` did before ``finetune.depth``) and with
depth extrapolation (now), each from a cold cache; CPU seconds, the ratio, and
whether the chosen configuration and every considered configuration's memory
agree. Then the user's command, ``python -m finetune plan --model small
--vram 6``, in a fresh process: wall and CPU seconds (the issue's goal is
<= 15 s on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from finetune import planner  # noqa: E402
from finetune.memory import GIB, StepSpec, dims_for_name, simulate  # noqa: E402

DEFAULT_CASES = ("small:6", "medium:8", "turbo:8", "large-v3:12")
GOAL_SECONDS = 15.0


def plan_once(name: str, vram: float, full_depth: bool) -> tuple[planner.PlanResult, float]:
    """The planner's answer for ``name`` on ``vram`` GiB and the CPU seconds it took (cold cache)."""
    planner.estimate.cache_clear()
    started = time.process_time()
    if full_depth:
        with mock.patch.object(planner, "simulate_deep", simulate):
            result = planner.choose(dims_for_name(name), vram, bnb_available=True)
    else:
        result = planner.choose(dims_for_name(name), vram, bnb_available=True)
    return result, time.process_time() - started


def needs(result: planner.PlanResult) -> dict[StepSpec, int | None]:
    return {c.spec: (c.estimate.total if c.estimate else None) for c in result.considered}


def cli_seconds() -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m finetune plan --model small --vram 6`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "finetune", "plan", "--model", "small", "--vram", "6"], cwd=REPO,
                   check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic() - started, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), help="MODEL:GiB pairs")
    args = parser.parse_args()
    plan_once("tiny", 4, full_depth=False)  # imports and first-use costs, outside every timing
    print(f"{'case':<14}{'full depth CPU s':>18}{'extrapolated CPU s':>20}{'ratio':>8}  same plan, same needs")
    for case in args.cases:
        name, vram = case.split(":")
        full, full_s = plan_once(name, float(vram), full_depth=True)
        deep, deep_s = plan_once(name, float(vram), full_depth=False)
        same_choice = full.chosen.spec == deep.chosen.spec
        drift = max((abs(a - b) for spec, a in needs(full).items()
                     if a is not None and (b := needs(deep).get(spec)) is not None), default=0)
        print(f"{case:<14}{full_s:>18.1f}{deep_s:>20.1f}{full_s / deep_s:>7.1f}x  "
              f"{'yes' if same_choice and needs(full).keys() == needs(deep).keys() else 'NO'}, "
              f"largest difference {drift / GIB * 1024:.3f} MiB; chose {deep.chosen.spec.describe()}")
    wall, cpu = cli_seconds()
    print(f"\npython -m finetune plan --model small --vram 6: {wall:.1f} s wall, {cpu:.1f} CPU-s "
          f"(goal <= {GOAL_SECONDS:g} s: {'met' if wall <= GOAL_SECONDS else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
