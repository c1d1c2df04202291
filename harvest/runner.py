"""The harvest run: local files first (fast, no network), then online sources.

Online sources are listed flat in the main thread (one request per playlist
page), then their entries are harvested by ``jobs`` worker threads, each
with its own YoutubeDL. Per-entry failures are logged and the run goes on;
the manifest is rebuilt at the end whatever happened.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tqdm import tqdm

from whcore.atomic import sweep_temp_files
from whcore.journal import Journal, setup_logging, source_unit
from whcore.workspace import Workspace, open_workspace, workspace_lock

from harvest.catalog import Catalog
from harvest.context import HarvestContext
from harvest.download import PLAYLIST_TYPES, EntryRef, Fetcher, clean_error, playlist_entries, ref_from_entry
from harvest.feeds import MAX_FEED_BYTES, parse_feed_licenses
from harvest.local import harvest_local
from harvest.manifest import load_source_records, rebuild_manifest
from harvest.online import harvest_ref, known_outcome
from harvest.options import HarvestOptions
from harvest.outcome import Outcome, Status, processed_any, summary_counts
from harvest.rejected import RejectedStore
from harvest.sources import LocalSource, MissingSource, UrlSource, classify_all

STAGE = "harvest"
GENERIC_EXTRACTOR = "Generic"  # yt-dlp's extractor for feeds and direct links
MAX_REDIRECTS = 3  # top-level "url" results followed before listing


def harvest(workspace_dir: str, options: HarvestOptions, verbose: bool = False) -> list[Outcome]:
    """Harvest ``options.sources`` into the workspace; returns one outcome per entry."""
    workspace = open_workspace(workspace_dir, create=True)
    with workspace_lock(workspace, STAGE):
        log = setup_logging(workspace, STAGE, verbose)
        ctx = _context(workspace, options, log)
        log.info(f"harvest run: {len(options.sources)} SOURCE argument(s) into {workspace.root}")
        if options.allow_any_license:
            log.warning("--allow-any-license: the Creative Commons gate is off; every licence is "
                        "recorded in the manifest, check each one before you share the dataset")
        outcomes = _harvest_all(ctx)
        _journal_outcomes(ctx.journal, outcomes)
        rebuild_manifest(workspace, set(ctx.journal.source_entries()))
        log.info("summary: " + summary_counts(outcomes))
        if not processed_any(outcomes):
            log.error("nothing could be processed: every SOURCE failed (see the errors above)")
        return outcomes


def _journal_outcomes(journal: Journal, outcomes: list[Outcome]) -> None:
    """FAILED / REJECTED / SKIPPED journal lines for ``python -m status`` (already printed above)."""
    for outcome in outcomes:
        unit = source_unit(outcome.source_id) if outcome.source_id else f"entry:{outcome.label}"
        if outcome.status is Status.FAILED:
            journal.mark_failed(unit, outcome.detail, echo=False)
        elif outcome.status is Status.REJECTED or outcome.detail.startswith("rejected earlier"):
            journal.mark_rejected(f"entry:{outcome.label}", outcome.detail, echo=False)
        elif outcome.status is Status.DUPLICATE:
            journal.mark_skipped(f"entry:{outcome.label}", outcome.detail, echo=False)


def _context(workspace: Workspace, options: HarvestOptions, log: Any) -> HarvestContext:
    sweep_temp_files(workspace.sources_dir)
    journal = Journal(workspace, STAGE)
    catalog = Catalog.build(journal, load_source_records(workspace))
    return HarvestContext(workspace, options, journal, catalog, RejectedStore.load(workspace), log)


def _harvest_all(ctx: HarvestContext) -> list[Outcome]:
    outcomes: list[Outcome] = []
    urls: list[UrlSource] = []
    for source in classify_all(ctx.options.sources):
        if isinstance(source, MissingSource):
            ctx.log.error(f"failed {source.label}: {source.reason}")
            outcomes.append(Outcome(Status.FAILED, source.label, "", source.reason))
        elif isinstance(source, LocalSource):
            outcomes.append(harvest_local(ctx, source))
        else:
            urls.append(source)
    if urls:
        outcomes += _harvest_urls(ctx, urls)
    return outcomes


def _harvest_urls(ctx: HarvestContext, urls: list[UrlSource]) -> list[Outcome]:
    lister = Fetcher(ctx)
    try:
        refs, outcomes = _list_sources(ctx, lister, urls)
    finally:
        lister.close()
    return outcomes + _harvest_refs(ctx, refs)


def _list_sources(ctx: HarvestContext, fetcher: Fetcher,
                  urls: list[UrlSource]) -> tuple[list[EntryRef], list[Outcome]]:
    """Flat-list every URL source into entry references (no per-entry extraction)."""
    refs: list[EntryRef] = []
    outcomes: list[Outcome] = []
    for source in urls:
        key = fetcher.temp_key(source.url)
        known = known_outcome(ctx, key, source.label, claim=False) if key is not None else None
        if known is not None:
            outcomes.append(known)
            continue
        try:
            info = _follow_references(fetcher, fetcher.extract(source.url))
        except Exception as error:  # noqa: BLE001 - yt-dlp lets some errors escape unwrapped
            reason = clean_error(error)
            ctx.log.error(f"failed {source.label}: {reason}")
            outcomes.append(Outcome(Status.FAILED, source.label, "", reason))
            continue
        if info.get("_type") in PLAYLIST_TYPES:
            listed = [ref for ref in map(ref_from_entry, playlist_entries(info, ctx.options.limit)) if ref]
            if info.get("extractor_key") == GENERIC_EXTRACTOR:
                listed = _with_feed_licenses(ctx, fetcher, source.url, listed)
            ctx.log.info(f"listed {len(listed)} entries of {source.label}")
            refs += listed
        else:
            refs.append(ref_from_entry(info) or EntryRef(url=source.url))
    return refs, outcomes


def _with_feed_licenses(ctx: HarvestContext, fetcher: Fetcher, url: str, refs: list[EntryRef]) -> list[EntryRef]:
    """Give each feed episode the licence its feed states (if the playlist is a feed at all)."""
    try:
        licenses = parse_feed_licenses(fetcher.read(url, MAX_FEED_BYTES))
    except Exception as error:  # noqa: BLE001 - no licence found is the safe outcome
        ctx.log.debug(f"no feed licences read from {url}: {clean_error(error)}")
        return refs
    if licenses is None:
        return refs
    updated = []
    for ref in refs:
        stated = licenses.license_for(ref.url)
        if stated and ref.overrides is not None:
            ref = dataclasses.replace(ref, overrides={**ref.overrides, "license": stated})
        updated.append(ref)
    return updated


def _follow_references(fetcher: Fetcher, info: dict[str, Any]) -> dict[str, Any]:
    """Follow a top-level redirect (a channel URL pointing at its videos tab) to what it names."""
    for _ in range(MAX_REDIRECTS):
        if info.get("_type") != "url":
            break
        info = fetcher.extract(info["url"], info.get("ie_key"))
    return info


def _harvest_refs(ctx: HarvestContext, refs: list[EntryRef]) -> list[Outcome]:
    """Harvest entries with ``jobs`` threads, one YoutubeDL per thread."""
    local = threading.local()
    fetchers: list[Fetcher] = []
    stop = threading.Event()

    def work(ref: EntryRef) -> list[Outcome]:
        if stop.is_set():
            return []
        if not hasattr(local, "fetcher"):
            local.fetcher = Fetcher(ctx, stop)
            fetchers.append(local.fetcher)
        return harvest_ref(ctx, local.fetcher, ref)

    outcomes: list[Outcome] = []
    pool = ThreadPoolExecutor(max_workers=ctx.options.jobs, thread_name_prefix="harvest")
    try:
        with tqdm(total=len(refs), unit="entry", desc="harvest", disable=None) as bar:
            for result in pool.map(work, refs):
                outcomes += result
                bar.update(1)
    except BaseException:
        stop.set()  # Ctrl-C: running downloads stop at their next progress report
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for fetcher in fetchers:
            fetcher.close()
    return outcomes
