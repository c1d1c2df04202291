"""The harvest run: local files first (fast, no network), then online sources.

Each online SOURCE is listed in the main thread, lazily, page by page; every
video entry goes to ``jobs`` worker threads as soon as it is listed, each with
its own YoutubeDL, so one long channel is spread over all workers. Per-entry
failures are logged and the run goes on; a per-entry error of an unexpected
kind is one line with its type, never a traceback that ends the run. The
manifest is rebuilt at the end whatever happened. A tripped circuit breaker
stops listing and hands no more entries out; the run still ends with its
summary and manifest.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from tqdm import tqdm

from whcore.atomic import sweep_temp_files
from whcore.journal import Journal, setup_logging, source_unit
from whcore.workspace import Workspace, open_workspace, workspace_lock

from harvest.catalog import Catalog
from harvest.context import HarvestContext
from harvest.decisions import load_rejected, load_unavailable
from harvest.download import PLAYLIST_TYPES, EntryRef, Fetcher, clean_error, ref_from_entry
from harvest.failures import FailureKind, failure_kind
from harvest.feeds import MAX_FEED_BYTES, FeedLicenses, parse_feed_licenses
from harvest.license_watch import NO_LICENSE_FIELD, LicenseWatch
from harvest.listing import Lister, SourceBudget
from harvest.local import harvest_local
from harvest.manifest import load_source_records, rebuild_manifest
from harvest.online import harvest_ref, known_outcome, request_failed
from harvest.options import HarvestOptions
from harvest.outcome import Outcome, RunResult, Status, any_failed, summary_counts
from harvest.politeness import CircuitBreaker
from harvest.sources import LocalSource, MissingSource, UrlSource, classify_all

STAGE = "harvest"
GENERIC_EXTRACTOR = "Generic"  # yt-dlp's extractor for feeds and direct links
MAX_REDIRECTS = 3  # top-level "url" results followed before listing

Submit = Callable[[EntryRef, SourceBudget], None]


def harvest(workspace_dir: str, options: HarvestOptions, verbose: bool = False) -> RunResult:
    """Harvest ``options.sources`` into the workspace; returns one outcome per entry."""
    workspace = open_workspace(workspace_dir, create=True)
    with workspace_lock(workspace, STAGE):
        log = setup_logging(workspace, STAGE, verbose)
        ctx = _context(workspace, options, log)
        log.info(f"harvest run: {len(options.sources)} SOURCE argument(s) into {workspace.root}")
        if options.allow_any_license:
            log.warning("--allow-any-license: the Creative Commons gate is off; every licence is "
                        "recorded in the manifest, check each one before you share the dataset")
        try:
            outcomes = _settle_license_watch(ctx, _harvest_all(ctx))
            _journal_outcomes(ctx.journal, outcomes)
        finally:
            rebuild_manifest(workspace, set(ctx.journal.source_entries()))
        log.info("summary: " + summary_counts(outcomes))
        stopped = ctx.breaker.message() if ctx.breaker.tripped.is_set() else ""
        if stopped:
            log.error(stopped)
        elif any_failed(outcomes):
            log.warning("some entries failed (reasons above); rerun the same command to retry them")
        return RunResult(outcomes, stopped)


def _settle_license_watch(ctx: HarvestContext, outcomes: list[Outcome]) -> list[Outcome]:
    """Rejections held for a missing licence become failures when no watch page had one."""
    dropped = ctx.license_watch.settle()
    if dropped is None:
        return outcomes
    ctx.log.warning(ctx.license_watch.warning())
    return [Outcome(Status.FAILED, o.label, o.source_id, NO_LICENSE_FIELD)
            if o.status is Status.REJECTED and o.label in dropped else o for o in outcomes]


def _journal_outcomes(journal: Journal, outcomes: list[Outcome]) -> None:
    """FAILED / REJECTED / SKIPPED journal lines for ``python -m status`` (already printed above)."""
    for outcome in outcomes:
        unit = source_unit(outcome.source_id) if outcome.source_id else f"entry:{outcome.label}"
        if outcome.status is Status.FAILED:
            journal.mark_failed(unit, outcome.detail, echo=False)
        elif outcome.status in (Status.REJECTED, Status.UNAVAILABLE):
            journal.mark_rejected(f"entry:{outcome.label}", outcome.detail, echo=False)
        elif outcome.status in (Status.DUPLICATE, Status.LATER):
            journal.mark_skipped(f"entry:{outcome.label}", outcome.detail, echo=False)


def _context(workspace: Workspace, options: HarvestOptions, log: Any) -> HarvestContext:
    sweep_temp_files(workspace.sources_dir)
    journal = Journal(workspace, STAGE)
    catalog = Catalog.build(journal, load_source_records(workspace))
    rejected = load_rejected(workspace)
    return HarvestContext(workspace, options, journal, catalog, rejected, load_unavailable(workspace), log,
                          LicenseWatch(rejected), breaker=CircuitBreaker(options.max_blocks))


def unexpected(ctx: HarvestContext, label: str, error: Exception) -> Outcome:
    """A per-entry error harvest did not foresee (a bug or a full disk): one line, the run goes on."""
    reason = f"unexpected {type(error).__name__}: {' '.join(str(error).split())}"
    ctx.log.error(f"failed {label}: {reason}")
    return Outcome(Status.FAILED, label, "", reason)


def _harvest_all(ctx: HarvestContext) -> list[Outcome]:
    outcomes: list[Outcome] = []
    urls: list[UrlSource] = []
    for source in classify_all(ctx.options.sources):
        if isinstance(source, MissingSource):
            ctx.log.error(f"failed {source.label}: {source.reason}")
            outcomes.append(Outcome(Status.FAILED, source.label, "", source.reason))
        elif isinstance(source, LocalSource):
            try:
                outcomes.append(harvest_local(ctx, source))
            except Exception as error:  # noqa: BLE001 - one bad file never ends the run
                outcomes.append(unexpected(ctx, source.label, error))
        else:
            urls.append(source)
    if urls:
        outcomes += _harvest_urls(ctx, urls)
    return outcomes


class _Workers:
    """``jobs`` threads harvesting entries, one Fetcher per thread and kind of source."""

    def __init__(self, ctx: HarvestContext) -> None:
        self._ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=ctx.options.jobs, thread_name_prefix="harvest")
        self._local = threading.local()
        self._fetchers: list[Fetcher] = []
        self._lock = threading.Lock()
        self.futures: list[Future] = []

    def fetcher(self, local_files: bool) -> Fetcher:
        mine = self._local.__dict__.setdefault("fetchers", {})
        if local_files not in mine:
            mine[local_files] = Fetcher(self._ctx, self._ctx.stop, local_files)
            with self._lock:
                self._fetchers.append(mine[local_files])
        return mine[local_files]

    def submit(self, ref: EntryRef, budget: SourceBudget) -> None:
        self.futures.append(self._pool.submit(self._work, ref, budget))

    def _work(self, ref: EntryRef, budget: SourceBudget) -> list[Outcome]:
        try:
            return harvest_ref(self._ctx, self.fetcher(ref.local), ref, budget)
        except Exception as error:  # noqa: BLE001 - one bad entry never ends the run
            return [unexpected(self._ctx, ref.video_id or ref.url, error)]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for fetcher in self._fetchers:
            fetcher.close()


def _harvest_urls(ctx: HarvestContext, urls: list[UrlSource]) -> list[Outcome]:
    workers = _Workers(ctx)
    listers: dict[bool, Fetcher] = {}
    outcomes: list[Outcome] = []
    try:
        for source in urls:
            if ctx.stopping():
                break
            local = source.url.startswith("file:")
            if local not in listers:
                listers[local] = Fetcher(ctx, ctx.stop, local_files=local)
            try:
                listed = _list_source(ctx, listers[local], source, local, workers.submit)
            except Exception as error:  # noqa: BLE001 - one bad SOURCE never ends the run
                listed = unexpected(ctx, source.label, error)
            if listed is not None:
                outcomes.append(listed)
        with tqdm(total=len(workers.futures), unit="entry", desc="harvest", disable=None) as bar:
            for future in workers.futures:
                outcomes += future.result()
                bar.update(1)
    except BaseException:
        ctx.stop.set()  # Ctrl-C: running downloads stop at their next progress report
        raise
    finally:
        workers.close()
        for lister in listers.values():
            lister.close()
    return outcomes


def _list_source(ctx: HarvestContext, fetcher: Fetcher, source: UrlSource, local: bool,
                 submit: Submit) -> Outcome | None:
    """List one URL SOURCE, handing each video entry to ``submit``; an outcome only for the SOURCE itself."""
    key = fetcher.temp_key(source.url)
    if key is not None:
        known = known_outcome(ctx, key, source.label, claim=False)
        if known is not None:
            return known
    try:
        info = _follow_references(fetcher, fetcher.extract(source.url))
    except Exception as error:  # noqa: BLE001 - yt-dlp lets some errors escape unwrapped
        return request_failed(ctx, source.label, "listing", error, key, source.url)
    budget = SourceBudget(ctx.options.limit)
    if info.get("_type") not in PLAYLIST_TYPES:
        submit(ref_from_entry(info, local) or EntryRef(url=source.url, local=local), budget)
        return None
    licenses = _feed_licenses(ctx, fetcher, source.url) if info.get("extractor_key") == GENERIC_EXTRACTOR else None

    def submit_entry(entry: dict[str, Any]) -> None:
        ref = ref_from_entry(entry, local)
        if ref is not None:
            submit(_with_feed_license(ref, licenses), budget)

    def expand_here(entry: dict[str, Any]) -> dict[str, Any] | None:
        ref = ref_from_entry(entry, local)
        if ref is None or entry.get("_type") != "url" or fetcher.return_type(ref) != "playlist":
            return None
        return _follow_references(fetcher, fetcher.extract(ref.url, ref.ie_key))

    lister = Lister(ctx.options.tabs, budget, expand_here, submit_entry, ctx.stopping)
    try:
        lister.walk(info)
    except Exception as error:  # noqa: BLE001 - a lazy page failed: what was listed goes on
        reason = clean_error(error)
        ctx.log.error(f"listing of {source.label} stopped after {lister.listed} entries: {reason}")
        if failure_kind(error) is FailureKind.BLOCKED and ctx.breaker.blocked(reason):
            ctx.stop.set()
        return Outcome(Status.FAILED, source.label, "", f"listing stopped after {lister.listed} entries: {reason}")
    ctx.log.info(f"listed {lister.listed} entries of {source.label}")
    return None


def _feed_licenses(ctx: HarvestContext, fetcher: Fetcher, url: str) -> FeedLicenses | None:
    """The licences a feed states for its episodes (None if the playlist is no feed)."""
    try:
        return parse_feed_licenses(fetcher.read(url, MAX_FEED_BYTES))
    except Exception as error:  # noqa: BLE001 - no licence found is the safe outcome
        ctx.log.debug(f"no feed licences read from {url}: {clean_error(error)}")
        return None


def _with_feed_license(ref: EntryRef, licenses: FeedLicenses | None) -> EntryRef:
    if licenses is None or ref.overrides is None:
        return ref
    stated = licenses.license_for(ref.url)
    if not stated:
        return ref
    return dataclasses.replace(ref, overrides={**ref.overrides, "license": stated})


def _follow_references(fetcher: Fetcher, info: dict[str, Any]) -> dict[str, Any]:
    """Follow a top-level redirect (a channel URL pointing at its videos tab) to what it names."""
    for _ in range(MAX_REDIRECTS):
        if info.get("_type") != "url":
            break
        info = fetcher.extract(info["url"], info.get("ie_key"))
    return info
