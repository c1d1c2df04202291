"""Kill every stage at ten or more random points, rerun, and compare with an uninterrupted run.

The longer sibling of ``tests/test_faults.py`` (same harness, ``tests/faultkit.py``):
one uninterrupted pipeline is the reference (harvest of 20 s of the example recording and
a loopback "YouTube" playlist, segment, label, a two-step finetune); each stage is
then run from a copy of the workspace as it stood before it, SIGKILLed at
``--kills`` seeded random points (alternately a random delay within the reference
run's duration and a random journal line), checked for consistency after every
kill (each latest DONE line's files whole), and finished. Prints, per stage, the
kills that landed, the runs that outran their kill point, and any problem; exits 1
if there was one.

    python bench/faults.py                 # 10 kills per stage
    python bench/faults.py --kills 20 --stages segment label
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
os.environ.setdefault("WHISPER_HARVEST_CACHE", str(ROOT / ".pytest_cache" / "whisper-harvest-cache"))

from faultkit import kill_and_resume, kill_points  # noqa: E402
from test_faults import SEED, Golden, add_tones, finetune_facts, lecture_file, stage_commands  # noqa: E402
from ytfake.server import FakeTube, FakeTubeServer  # noqa: E402

STAGES = ("harvest", "segment", "label", "finetune")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="kills that must land per stage (points that a "
                        "run outruns are drawn again)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--seed", default=str(SEED), help="seed of the kill points")
    args = parser.parse_args()
    tube = FakeTube()
    add_tones(tube)
    failed = False
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp, FakeTubeServer(tube) as server:
        started = time.monotonic()
        commands = stage_commands(server.playlist_url("PL"), lecture_file(Path(tmp) / "media"))
        golden = Golden(commands, Path(tmp)).upto(max(args.stages, key=STAGES.index))
        print(f"reference pipeline: {time.monotonic() - started:.0f} s "
              f"({', '.join(f'{s} {t:.1f} s' for s, t in golden.seconds.items())}); load {os.getloadavg()[0]:.1f}")
        for stage in args.stages:
            rng = random.Random(f"{args.seed}-{stage}")
            points = kill_points(rng, golden.seconds[stage], golden.journal_lines[stage])
            workspace = Path(tmp) / f"killed-{stage}"
            stage_started = time.monotonic()
            report = kill_and_resume(golden.commands[stage], golden.before[stage], workspace, points, args.kills,
                                     golden.expected[stage])
            if stage == "finetune" and not report.problems and finetune_facts(workspace) != finetune_facts(golden.final):
                report.problems.append("final step, losses or evaluations differ from the uninterrupted run")
            failed |= bool(report.problems) or len(report.kills) < args.kills
            print(f"{report.summary()} [{time.monotonic() - stage_started:.0f} s, load {os.getloadavg()[0]:.1f}]")
            for kill in report.kills:
                print(f"    killed {kill}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
