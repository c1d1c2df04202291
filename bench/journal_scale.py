"""The journal at 100k units: ``python -m status`` and a rerun's "what is done" check.

    .venv/bin/python bench/journal_scale.py              # 100,000 units
    .venv/bin/python bench/journal_scale.py --units 20000

A workspace gets ``units`` sources, each with its source record, its windows
store (``audio.flac`` checked by size, ``windows.jsonl`` by sha256), its labels
file, and the segment and label DONE lines those stages write for them with their
default options (the real params, built by ``segment.run.unit_params`` and
``label.run.source_params``; segment's line keeps the record's signature as segment
does). Then it times, each in a fresh process:

- ``python -m status --workspace WS`` (wall, including interpreter start);
- the check as earlier versions of this bench modelled it: ``Journal(ws, "segment")``
  and ``Journal(ws, "label")`` built and ``is_done`` asked for every unit, and every
  windows manifest digested;
- the baseline in the same run: the same check without the index and with the
  parse cache cleared before each ``Journal`` (what every ``Journal`` cost before:
  label built four per run, each parsing the whole log);
- the floor: a fresh interpreter that only ``os.stat``s every file the DONE lines
  list (what any check that a unit's files are intact must do: 300k files here);
- a real ``python -m segment`` rerun with every source done, and the log it writes;
- label's real rerun up to its first source to label: its options (the model's
  fingerprint included; no model is loaded), then ``segmented_manifests`` and
  ``pending_sources`` as ``label_sources`` calls them, and the log it writes.

The first status run (index removed before it) writes ``logs/.journal-index``;
the second and the rerun check use it. Each is printed with its ratio to the run
without the index measured just before. CPU seconds are printed beside wall
seconds: on a shared, overloaded machine they are the better measure.

The goal is <= 2 s for status and for a rerun's check at 100k units.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHECK = """
import sys, time
import whcore.journal as j
from whcore.workspace import open_workspace
ws = open_workspace(sys.argv[1]); baseline = sys.argv[2] == "baseline"
if baseline:  # no index on disk, no parse cache, no recorded hashes: every Journal parses the whole log
    j._load_index, j._save_index = (lambda path: None), (lambda path, parsed: None)
    j._known_sha256 = lambda path, info=None: None
t = time.perf_counter()
done = 0
for stage, checks in (("segment", True), ("label", True), ("label", False), ("label", False), ("label", False)):
    if baseline:
        j._PARSED.clear()
    journal = j.Journal(ws, stage)
    if checks:
        done += sum(journal.is_done(unit, entry.params) for unit, entry in journal.entries().items())
    if stage == "label" and checks:  # label's params digest every windows manifest
        for sid in journal.source_entries():
            j.file_sha256(ws.windows_manifest_path(sid))
print("DONE", done, "S", time.perf_counter() - t)
"""

LABEL_ARGS = ["--workspace", ".", "--language", "en"]

# label's rerun up to the first source to label: its options (model fingerprint included),
# then segmented_manifests and pending_sources exactly as label_sources calls them
LABEL_RERUN = """
import sys, time
t = time.perf_counter()
from label.cli import build_parser, options_from
from label.run import RunSummary, pending_sources, segmented_manifests
from whcore.journal import Journal, setup_logging
from whcore.workspace import open_workspace
ws = open_workspace(sys.argv[1])
options = options_from(build_parser().parse_args(["--workspace", sys.argv[1], "--language", "en"]))
log = setup_logging(ws, "label")
summary = RunSummary()
imported = time.perf_counter()
manifests = segmented_manifests(ws)
pending = pending_sources(ws, options, Journal(ws, "label"), list(manifests), summary, log, manifests)
print("PENDING", len(pending), "SKIPPED", len(summary.skipped), "IMPORTS_S", round(imported - t, 2),
      "CHECK_S", round(time.perf_counter() - imported, 2))
"""

FLOOR = """
import os, sys
root, units = sys.argv[1], int(sys.argv[2])
for i in range(units):
    sid = f"s{i:06d}"
    for path in (f"windows/{sid}/audio.flac", f"windows/{sid}/windows.jsonl", f"labels/{sid}.jsonl"):
        os.stat(f"{root}/{path}")
"""


def done_line(stage: str, unit: str, params: dict, files: dict, extra: dict) -> str:
    """A DONE line exactly as ``Journal.mark_done`` writes it (written here without its per-line fsync)."""
    from whcore.journal import JOURNAL_FORMAT, clear_options, params_digest

    payload = json.dumps({"format": JOURNAL_FORMAT, "params": params_digest(params), "options": clear_options(params),
                          "files": files, "extra": extra}, ensure_ascii=False, sort_keys=True)
    return f"2026-12-03 05:00:00.000 | DONE    | {stage: <8} | {unit} {payload}\n"


def listed(workspace, path: Path, hashed: bool) -> list:  # noqa: ANN001 - a Workspace
    from whcore.journal import file_sha256

    stat = path.stat()
    return [stat.st_size, file_sha256(path), stat.st_mtime_ns] if hashed else [stat.st_size, None]


def segment_options():  # noqa: ANN201 - a SegmentOptions
    """segment's options as ``python -m segment`` builds them from its defaults."""
    from segment.cli import build_parser
    from segment.run import SegmentOptions
    from segment.windows import make_plan

    args = build_parser().parse_args(["--workspace", "."])
    return SegmentOptions(plan=make_plan(args.window, args.overlap, args.min_tail, args.snap), vad_mode=args.vad_mode,
                          jobs=args.jobs, store=args.store)


def build(ws: Path, units: int) -> None:
    """``units`` sources, each with its record, its windows store, its labels and the DONE lines
    segment and label write for them with their default options (the real params)."""
    from label.cli import build_parser
    from label.cli import options_from
    from label.run import dataset_params, dataset_settings, source_params
    from segment.run import record_signature, unit_params
    from whcore.journal import DATASET_UNIT, content_listing, source_unit
    from whcore.records import SourceRecord
    from whcore.workspace import open_workspace

    workspace = open_workspace(ws, create=True)
    seg_options = segment_options()
    label_options = options_from(build_parser().parse_args(LABEL_ARGS))
    workspace.labels_dir.mkdir(parents=True, exist_ok=True)
    workspace.sources_dir.mkdir(parents=True, exist_ok=True)
    labelled: dict[str, dict] = {}
    with open(workspace.log_path, "w", encoding="utf-8") as log:
        for i in range(units):
            sid = f"s{i:06d}"
            record = SourceRecord(source_id=sid, extractor="local", original_id=sid, url=f"file:{sid}.flac",
                                  title=sid, duration=3600.0, license="user-provided",
                                  audio_path=f"sources/audio/{sid}.flac", sha256=f"{i:064x}")
            workspace.source_record_path(sid).write_text(json.dumps(record.to_dict(), indent=1) + "\n")  # as harvest
            folder = workspace.source_windows_dir(sid)
            folder.mkdir(parents=True)
            (folder / "audio.flac").write_bytes(b"f" * 64)
            (folder / "windows.jsonl").write_text(f'{{"source_id": "{sid}"}}\n')
            labels = workspace.labels_path(sid)
            labels.write_text(f'{{"source_id": "{sid}", "text": "x"}}\n')
            files = {f"windows/{sid}/audio.flac": listed(workspace, folder / "audio.flac", False),
                     f"windows/{sid}/windows.jsonl": listed(workspace, folder / "windows.jsonl", True)}
            log.write(done_line("segment", source_unit(sid), unit_params(record, seg_options), files,
                                {"windows": 450, "seconds": 3600.0,
                                 "record": record_signature(str(workspace.source_record_path(sid)))}))
            labelled[sid] = {f"labels/{sid}.jsonl": listed(workspace, labels, True)}
            log.write(done_line("label", source_unit(sid), source_params(label_options, folder / "windows.jsonl"),
                                labelled[sid], {"windows": 450, "kept": 400, "seconds": 3500.0}))
        # the dataset as label's build_dataset journals it (its card stands for the whole folder)
        card = workspace.dataset_dir / "README.md"
        card.parent.mkdir(parents=True)
        card.write_text("---\nconfigs: []\n---\n")
        params = dataset_params({sid: content_listing(files) for sid, files in labelled.items()},
                                dataset_settings(label_options))
        log.write(done_line("label", DATASET_UNIT, params, {"dataset/README.md": listed(workspace, card, True)},
                            {"rows": {"train": 0, "test": 0}, "rejected": 0}))


def timed(command: list[str], stderr: bool = False) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, what a busy shared machine does not inflate) and stdout
    (with ``stderr``, stdout and stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode not in (0, 1):
        raise RuntimeError(out.stderr[-2000:])
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, out.stdout + (out.stderr if stderr else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "journal")
    args = parser.parse_args()
    ws = args.workdir / f"ws-{args.units}"
    built_log = ws / "logs" / "log.built"  # the log as built: the reruns below append to log.txt
    if not built_log.exists():
        shutil.rmtree(ws, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build-only", str(ws), str(args.units)], check=True,
                       env=os.environ | {"PYTHONPATH": str(REPO)})
        print(f"built {args.units} sources x 2 DONE lines in {time.perf_counter() - start:.0f} s")
        shutil.copyfile(ws / "logs" / "log.txt", built_log)
    shutil.copyfile(built_log, ws / "logs" / "log.txt")
    log_mb = (ws / "logs" / "log.txt").stat().st_size / 1e6
    (ws / "logs" / ".journal-index").unlink(missing_ok=True)
    first_status_s, first_status_cpu, _ = timed([sys.executable, "-m", "status", "--workspace", str(ws)])
    status_s, status_cpu, _ = timed([sys.executable, "-m", "status", "--workspace", str(ws)])
    check_s, check_cpu, out = timed([sys.executable, "-c", CHECK, str(ws), "cached"])
    base_s, base_cpu, base_out = timed([sys.executable, "-c", CHECK, str(ws), "baseline"])
    floor_s, floor_cpu, _ = timed([sys.executable, "-c", FLOOR, str(ws.resolve()), str(args.units)])
    log_before = (ws / "logs" / "log.txt").stat().st_size
    segment_s, segment_cpu, _ = timed([sys.executable, "-m", "segment", "--workspace", str(ws)])
    segment_log = (ws / "logs" / "log.txt").stat().st_size - log_before
    label_s, label_cpu, label_out = timed([sys.executable, "-c", LABEL_RERUN, str(ws)])
    label_log = (ws / "logs" / "log.txt").stat().st_size - log_before - segment_log
    whole_s, whole_cpu, whole_out = timed([sys.executable, "-m", "label", *LABEL_ARGS[:1], str(ws), *LABEL_ARGS[2:]],
                                          stderr=True)
    if "dataset already up to date" not in whole_out:
        raise RuntimeError(f"label's rerun did not find everything done:\n{whole_out[-3000:]}")
    inner, base_inner = float(out.split("S")[-1]), float(base_out.split("S")[-1])
    print(f"{args.units} units ({2 * args.units} DONE lines, log {log_mb:.0f} MB); machine shared, one run each")
    print(f"python -m status, first (no index):      {first_status_s:6.2f} s wall, {first_status_cpu:6.2f} s CPU")
    print(f"python -m status, with the index:        {status_s:6.2f} s wall, {status_cpu:6.2f} s CPU "
          f"({first_status_cpu / status_cpu:.1f}x less CPU, {first_status_s / status_s:.1f}x less wall)")
    print(f"baseline (no index, parsed per Journal): {base_s:6.2f} s wall, {base_cpu:6.2f} s CPU, "
          f"{base_inner:.2f} s in-process")
    print(f"rerun check (index, parsed once):        {check_s:6.2f} s wall, {check_cpu:6.2f} s CPU, "
          f"{inner:.2f} s in-process ({base_cpu / check_cpu:.1f}x less CPU, {base_s / check_s:.1f}x less wall)")
    print(f"python -m segment, a rerun with all done: {segment_s:6.2f} s wall, {segment_cpu:6.2f} s CPU, "
          f"log +{segment_log / 1e3:.0f} kB")
    print(f"label's rerun up to its first source:     {label_s:6.2f} s wall, {label_cpu:6.2f} s CPU, "
          f"log +{label_log / 1e3:.0f} kB ({label_out.strip()})")
    print(f"python -m label, a rerun with all done:   {whole_s:6.2f} s wall, {whole_cpu:6.2f} s CPU "
          "(model not loaded: nothing to label; the dataset check included)")
    print(f"floor: interpreter + os.stat of the {3 * args.units} listed files: {floor_s:6.2f} s wall, "
          f"{floor_cpu:6.2f} s CPU")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--build-only":
        sys.path[0] = str(REPO)  # not bench/, whose label.py would stand for the label package
        build(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
