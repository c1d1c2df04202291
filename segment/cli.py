"""``python -m segment``: cut every harvested source into 16 kHz mono windows."""

from __future__ import annotations

from typing import Sequence

from whcore.cli import exit_code, make_parser, non_negative_float, positive_float, positive_int
from whcore.journal import Journal, setup_logging
from whcore.records import FLAC_FORMAT, STORE_FORMATS
from whcore.workspace import open_workspace, workspace_lock

from segment.run import STAGE, SegmentOptions, segment_workspace
from segment.vad import DEFAULT_VAD_MODE
from segment.windows import make_plan

DESCRIPTION = """\
Decode each source in <workspace>/sources/ with ffmpeg to 16 kHz mono 16-bit
PCM as a stream, store it once as <workspace>/windows/<source_id>/audio.flac
(lossless) and cut it into windows: one record per window (start, end, its
offset in audio.flac, RMS level, speech ratio) in windows.jsonl. Label, the
dataset and finetune cut each window from audio.flac when they read it. With
--format wav each window is written as its own file instead,
windows/<source_id>/<source_id>_<start_ms>_<end_ms>.wav.

Window rule: window k starts at k*(window-overlap) seconds and is exactly
--window seconds long (to the sample). The last window ends at the end of the
audio: after the last full window, one shorter window from the next start to
the end is written only if it adds at least --min-tail seconds of audio not
already in the previous window, so no window lies wholly inside another. A
source shorter than --window gives one window of its whole length if it is at
least --min-tail long, else none. With --snap, each cut (except the very start
and end) moves to the quietest 10 ms within +-SNAP seconds, so windows vary
slightly in length and overlap by at least overlap - 2*snap.

A rerun skips sources already cut with the same options; other options re-cut
them (the log says which option changed). Bad sources are logged in one line
each and the run goes on. Exit code: 0 when every source is cut or skipped by
rule (already cut, shorter than --min-tail), 1 when some failed, 2 for bad
arguments or a workspace in use."""


def build_parser():  # noqa: ANN201 - argparse.ArgumentParser
    parser = make_parser("python -m segment", DESCRIPTION)
    parser.add_argument("--window", type=positive_float, default=10.0, help="window length, seconds")
    parser.add_argument("--overlap", type=non_negative_float, default=2.0,
                        help="seconds shared by consecutive windows (must be less than --window)")
    parser.add_argument("--min-tail", type=positive_float, default=1.0,
                        help="fewest seconds of new audio the last, shorter window must add to be written")
    parser.add_argument("--snap", type=positive_float, default=None, metavar="SECONDS",
                        help="move each cut to the quietest point within +-SECONDS; off when left out")
    parser.add_argument("--vad-mode", type=int, choices=range(4), default=DEFAULT_VAD_MODE,
                        help="webrtcvad aggressiveness for the speech ratio: 0 keeps most, 3 drops most "
                             "non-speech")
    parser.add_argument("--format", choices=STORE_FORMATS, default=FLAC_FORMAT, dest="store",
                        help="flac: each source once as one lossless FLAC plus a window index (about half "
                             "the bytes of WAV windows, one file per source); wav: one 16 kHz WAV file per window")
    parser.add_argument("--jobs", type=positive_int, default=2,
                        help="sources decoded at once (one ffmpeg process each)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = make_plan(args.window, args.overlap, args.min_tail, args.snap)
    options = SegmentOptions(plan=plan, vad_mode=args.vad_mode, jobs=args.jobs, store=args.store)
    workspace = open_workspace(args.workspace)
    with workspace_lock(workspace, STAGE):
        log = setup_logging(workspace, STAGE, args.verbose)
        journal = Journal(workspace, STAGE)
        outcomes = segment_workspace(workspace, options, journal, log)
    done = [o for o in outcomes if o.status == "done"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    failed = [o for o in outcomes if o.status == "failed"]
    log.info(f"segment finished: {len(done)} sources cut ({sum(o.windows for o in done)} windows), "
             f"{len(skipped)} skipped, {len(failed)} failed; windows in {workspace.windows_dir}")
    if failed:
        log.error(f"{len(failed)} source(s) failed: {', '.join(o.source_id for o in failed)}; "
                  f"see {workspace.log_path}")
    return exit_code(len(failed))
