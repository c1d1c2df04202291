"""What happened to each entry, and the end-of-run summary table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    DOWNLOADED = "downloaded"  # new source in place (downloaded or local file linked)
    UPDATED = "updated"  # a source we had got the subtitle tracks it was missing
    SKIPPED = "skipped"  # already have it (this run or an earlier one)
    DUPLICATE = "duplicate"  # same audio as an existing source under another id
    REJECTED = "rejected"  # licence gate said no (now or on an earlier run)
    UNAVAILABLE = "unavail"  # private, removed, members-only, age-gated (remembered)
    LATER = "later"  # live now or upcoming: skipped by rule, a later run takes it
    FAILED = "failed"  # an error; the reason is in the log, a rerun retries it


SUMMARY_ORDER = (Status.DOWNLOADED, Status.UPDATED, Status.SKIPPED, Status.DUPLICATE, Status.REJECTED,
                 Status.UNAVAILABLE, Status.LATER, Status.FAILED)


@dataclass(frozen=True)
class Outcome:
    """The fate of one entry (a video, a feed item or a local file)."""

    status: Status
    label: str  # what the user would recognise: URL, path or id
    source_id: str  # the source it became or duplicates; "" if none
    detail: str  # short reason


def summary_table(outcomes: list[Outcome]) -> str:
    """A small fixed-width table of counts, then the failures with their reasons."""
    counts = Counter(outcome.status for outcome in outcomes)
    lines = ["status      count", "----------  -----"]
    lines += [f"{status.value:<10}  {counts.get(status, 0):>5}" for status in SUMMARY_ORDER]
    lines.append(f"{'total':<10}  {len(outcomes):>5}")
    failures = [o for o in outcomes if o.status is Status.FAILED]
    if failures:
        lines.append("failures:")
        lines += [f"  {o.label}: {o.detail}" for o in failures]
    return "\n".join(lines)


def summary_counts(outcomes: list[Outcome]) -> str:
    """The counts on one line, for the journal."""
    counts = Counter(outcome.status for outcome in outcomes)
    return ", ".join(f"{status.value} {counts.get(status, 0)}" for status in SUMMARY_ORDER)


def any_failed(outcomes: list[Outcome]) -> bool:
    """True if some entry failed (every other status is done or skipped by rule)."""
    return any(outcome.status is Status.FAILED for outcome in outcomes)


@dataclass(frozen=True)
class RunResult:
    """Every entry's outcome, and why the run stopped early ("" if it did not)."""

    outcomes: list[Outcome]
    stopped: str = ""  # the circuit breaker's line when the site blocked us
