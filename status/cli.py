"""``python -m status``: per stage, what is done, failed, rejected, skipped, and what a rerun would redo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from whcore.cli import EXIT_OK, make_parser
from whcore.errors import UserError
from whcore.workspace import Workspace

from status.report import SECONDS_PER_HOUR, WorkspaceStatus, workspace_status

DESCRIPTION = """\
Read <workspace>/logs/log.txt and print, per stage (harvest, segment, label,
finetune), how many units are done, failed, rejected (licence gate) and skipped
by a rule, the hours of audio done, and the list of units a rerun would redo
with the reason: failed last time, a listed file missing or altered, made with
other options than the stage's latest run, or not done yet although the previous
stage finished it. Reads only; safe while a stage runs."""
MAX_LISTED = 50  # rerun lines printed before "... and N more"


def build_parser():  # noqa: ANN201 - argparse.ArgumentParser
    parser = make_parser("python -m status", DESCRIPTION)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser


def render(status: WorkspaceStatus) -> str:
    """The human table, then the rerun list."""
    lines = [f"workspace {status.root}: {status.journal_lines} journal lines"
             + (f", {status.torn_lines} torn by a kill (never counted)" if status.torn_lines else ""),
             f"{'stage':<9} {'done':>6} {'failed':>7} {'rejected':>9} {'skipped':>8} {'hours':>8}"]
    for stage in status.stages:
        lines.append(f"{stage.stage:<9} {stage.done:>6} {stage.failed:>7} {stage.rejected:>9} {stage.skipped:>8} "
                     f"{stage.seconds / SECONDS_PER_HOUR:>8.3f}")
        lines += [f"{'':<9} {note}" for note in stage.notes]
    if not status.redo:
        lines.append("a rerun would redo nothing")
        return "\n".join(lines)
    lines.append(f"a rerun would redo {len(status.redo)} unit(s):")
    lines += [f"  {r.stage:<9} {r.unit}: {r.reason}" for r in status.redo[:MAX_LISTED]]
    if len(status.redo) > MAX_LISTED:
        lines.append(f"  ... and {len(status.redo) - MAX_LISTED} more (--json lists all)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workspace = Workspace(Path(args.workspace).expanduser().resolve())
    if not workspace.log_path.is_file():
        raise UserError(f"{workspace.log_path} does not exist: pass --workspace DIR of a workspace a stage "
                        "has run in")
    status = workspace_status(workspace)
    print(json.dumps(status.to_dict(), ensure_ascii=False, indent=1) if args.json else render(status))
    return EXIT_OK
