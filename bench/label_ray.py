"""``label --ray`` against the single process on one machine: overhead, Ray's memory, balance.

The corpus is skewed on purpose: one long espeak-ng lecture and many short
sources (slices of another lecture), run through the real harvest and segment
once and cached. Each contender is a whole ``python -m label`` process on a
fresh copy of that workspace, timed from start to exit (Ray's startup, the
actors' model loads and the dataset build included, as a user waits for them):

* ``single``: ``python -m label --threads 2`` (the baseline);
* ``ray 2x1``: ``--ray --ray-actors 2 --threads 1``: two actors of one thread
  each on a local Ray, the same two cores;
* ``ray 1x2``: ``--ray --ray-actors 1 --threads 2``: one actor running exactly
  the single process's model calls, so its gap to ``single`` is Ray's own cost.

Printed per contender (median over the rounds, contenders alternating so a
shared machine's load hits all): wall seconds and the ratio to ``single``
(goal for ``ray 2x1``: at most 1.10), and CPU seconds of the whole process tree
(on a shared machine more processes also grab more of the CPUs, so the CPU ratio
is the steadier measure of Ray's cost); labelling wall seconds and the idle share
of the least busy actor, from the driver's log line (goal: at most 15 % on this
corpus); peak resident memory of the whole process tree split into the driver,
the model actors and Ray's own processes (GCS, raylet, idle workers); and
whether labels and dataset equal the single process's byte for byte.

    .venv/bin/python bench/label_ray.py            # 1 x 300 s + 10 x 30 s, 2 rounds
    .venv/bin/python bench/label_ray.py --quick    # 1 x 90 s + 4 x 20 s, 1 round
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_spec = importlib.util.spec_from_file_location("bench_label", ROOT / "bench" / "label.py")
bench_label = sys.modules["bench_label"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_label)  # its speech synthesis (bench/label.py, not the label package)

from whcore.records import SAMPLE_RATE  # noqa: E402

GOAL_OVERHEAD = 1.10  # ray 2x1 wall time at most 10 % above the single process
GOAL_IDLE = 0.15  # the least busy actor idle at most 15 % of the labelling time
SAMPLE_S = 0.5  # process-tree memory and CPU sampling period
TICKS_PER_S = os.sysconf("SC_CLK_TCK")  # unit of /proc/<pid>/stat CPU times
CONTENDERS = {
    "single": ["--threads", "2"],
    "ray 2x1": ["--threads", "1", "--ray", "--ray-actors", "2"],
    "ray 1x2": ["--threads", "2", "--ray", "--ray-actors", "1"],
}
RAY_LINE = re.compile(r"Ray: (\d+) actor\(s\), least busy idle (\d+)% of ([\d.]+) s")
SHORT_VOICES = (("en-gb", 160), ("en-us+m3", 150), ("en+f3", 170))


@dataclass
class Run:
    contender: str
    wall_s: float
    peak_mib: dict[str, float] = field(default_factory=dict)  # driver / actors / ray core, at the tree's peak
    label_wall_s: float | None = None
    idle_share: float | None = None
    identical: bool | None = None
    load: float = 0.0
    # CPU seconds of the whole tree: the label process's own (and its reaped children's) from wait4,
    # every other member's as last sampled (Ray's processes are not reaped by it; up to SAMPLE_S each
    # is missed)
    cpu_s: float = 0.0


def corpus(cache: Path, long_s: float, short_count: int, short_s: float) -> Path:
    """A segmented workspace: one long source and ``short_count`` short ones (built once)."""
    workspace = cache / f"skewed-{int(long_s)}-{short_count}x{int(short_s)}"
    if (workspace / ".ready").is_file():
        return workspace
    shutil.rmtree(workspace, ignore_errors=True)
    media = cache / f"{workspace.name}-media"
    media.mkdir(parents=True, exist_ok=True)
    en = bench_label.SOURCES[0]
    bench_label.encode_opus(bench_label.synthesise(en, long_s), media / "long.opus")
    other = bench_label.SourceSpec("en", SHORT_VOICES)
    speech = bench_label.synthesise(other, short_count * short_s)
    step = int(short_s * SAMPLE_RATE)
    for i in range(short_count):
        bench_label.encode_opus(speech[i * step:(i + 1) * step], media / f"short{i:02d}.opus")
    log = cache / f"{workspace.name}.log"
    bench_label.stage(["-m", "harvest", *map(str, sorted(media.glob("*.opus"))), "--workspace", str(workspace),
                       "--sleep", "0"], log)
    bench_label.stage(["-m", "segment", "--workspace", str(workspace)], log)
    (workspace / ".ready").write_text("ok\n")
    return workspace


def kind(pid: int) -> str:
    """driver / actors / ray core, from a process's command line."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "gone"
    if title.startswith("ray::LabelWorker"):
        return "actors"
    if "-m" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:3]:
        return "driver"
    return "ray core"


def tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def rss_by_kind(pid: int, cpu: dict[int, float]) -> dict[str, float]:
    """Resident MiB of the tree by kind; ``cpu`` gets each member's CPU seconds so far (its own)."""
    out: dict[str, float] = {}
    for member in tree(pid):
        try:
            rss = int(Path(f"/proc/{member}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        cpu[member] = (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime
        out[kind(member)] = out.get(kind(member), 0.0) + rss
    return out


def timed(contender: str, workspace: Path, log: Path) -> Run:
    """One whole label process; memory sampled over its whole process tree (Ray's included)."""
    load = os.getloadavg()[0]
    command = [sys.executable, "-m", "label", "--workspace", str(workspace), "--language", "en",
               *CONTENDERS[contender]]
    with log.open("w") as handle:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        peak: dict[str, float] = {}
        cpu: dict[int, float] = {}
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            sample = rss_by_kind(process.pid, cpu)
            if sum(sample.values()) > sum(peak.values()):
                peak = sample
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {contender} exited {os.waitstatus_to_exitcode(status)}; see {log}")
    run = Run(contender, wall, {k: v for k, v in peak.items() if k != "gone"}, load=load,
              cpu_s=sum(cpu.values()) - cpu.get(process.pid, 0.0) + usage.ru_utime + usage.ru_stime)
    match = RAY_LINE.search(log.read_text(errors="replace"))
    if match:
        run.idle_share, run.label_wall_s = int(match.group(2)) / 100, float(match.group(3))
    return run


def outputs(root: Path) -> dict[str, bytes]:
    paths = sorted((root / "labels").glob("*.jsonl")) + [root / "dataset" / "README.md"] + \
        sorted((root / "dataset").glob("*/metadata.csv"))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in paths}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small corpus, one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of all contenders (default 2, quick 1)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "whisper-harvest-label-ray-bench",
                        help="where the corpus and the runs' workspaces go (outside the repository)")
    args = parser.parse_args()
    shape = (90.0, 4, 20.0) if args.quick else (300.0, 10, 30.0)
    rounds = args.rounds or (1 if args.quick else 2)
    args.cache.mkdir(parents=True, exist_ok=True)
    source = corpus(args.cache, *shape)
    audio_s = shape[0] + shape[1] * shape[2]
    print(f"corpus: 1 source of {shape[0]:.0f} s + {shape[1]} of {shape[2]:.0f} s = {audio_s / 60:.1f} min; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start (the machine may be shared)")
    runs: list[Run] = []
    reference: dict[str, bytes] | None = None
    for number in range(rounds):
        for contender in CONTENDERS:
            workspace = args.cache / "runs" / contender.replace(" ", "_")
            shutil.rmtree(workspace, ignore_errors=True)
            shutil.copytree(source, workspace, symlinks=True)
            run = timed(contender, workspace, args.cache / f"{contender.replace(' ', '_')}-{number}.log")
            produced = outputs(workspace)
            reference = produced if contender == "single" else reference
            run.identical = produced == reference
            runs.append(run)
            memory = ", ".join(f"{k} {v:.0f}" for k, v in sorted(run.peak_mib.items()))
            extra = "" if run.idle_share is None else \
                f"; labelling {run.label_wall_s:.1f} s, least busy actor idle {run.idle_share:.0%}"
            print(f"round {number + 1} {contender:8s}: {run.wall_s:6.1f} s wall, {run.cpu_s:6.1f} CPU-s "
                  f"(load {run.load:.1f}), peak RSS "
                  f"MiB: {memory}{extra}; outputs identical to single: {run.identical}", flush=True)
    return summarise(runs)


def summarise(runs: list[Run]) -> int:
    wall = {c: statistics.median(r.wall_s for r in runs if r.contender == c) for c in CONTENDERS}
    cpu = {c: statistics.median(r.cpu_s for r in runs if r.contender == c) for c in CONTENDERS}
    print("\nmedians:")
    for contender in CONTENDERS:
        mine = [r for r in runs if r.contender == contender]
        idle = [r.idle_share for r in mine if r.idle_share is not None]
        ray_core = [r.peak_mib.get("ray core", 0.0) for r in mine]
        print(f"  {contender:8s}: {wall[contender]:6.1f} s = {wall[contender] / wall['single']:.2f}x single, "
              f"CPU {cpu[contender]:.1f} s = {cpu[contender] / cpu['single']:.2f}x"
              + (f", least busy actor idle {statistics.median(idle):.0%}" if idle else "")
              + (f", Ray's own processes {statistics.median(ray_core):.0f} MiB" if any(ray_core) else "")
              + f", identical outputs in {sum(bool(r.identical) for r in mine)}/{len(mine)} runs")
    overhead = wall["ray 2x1"] / wall["single"]
    idle = statistics.median(r.idle_share for r in runs if r.contender == "ray 2x1" and r.idle_share is not None)
    print(f"goals: ray 2x1 wall <= {GOAL_OVERHEAD:.2f}x single: {overhead:.2f}x "
          f"({'met' if overhead <= GOAL_OVERHEAD else 'NOT met'}); least busy actor idle <= {GOAL_IDLE:.0%}: "
          f"{idle:.0%} ({'met' if idle <= GOAL_IDLE else 'NOT met'})")
    return 0 if overhead <= GOAL_OVERHEAD and idle <= GOAL_IDLE else 1


if __name__ == "__main__":
    sys.exit(main())
