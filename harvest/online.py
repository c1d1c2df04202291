"""One online entry from reference to finished source.

Order of checks, cheapest first, so a rerun costs no requests for what it
already decided: finished key -> skip (or fetch only its missing subtitles);
refused or unavailable key -> skip; live or members-only in the flat entry ->
skip; same video earlier in this run -> skip; then a polite pause, full
extraction, live check, licence gate, audio download, subtitles, probe,
content-hash dedupe, record, DONE line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from yt_dlp.utils import unsmuggle_url

from whcore.journal import file_sha256, source_unit
from whcore.publish import fsync_dir
from whcore.records import SourceRecord, Subtitle

from harvest.catalog import short_hash
from harvest.context import HarvestContext
from harvest.decisions import REASON_DUPLICATE, REASON_LICENSE, Rejection, Unavailable
from harvest.download import PLAYLIST_TYPES, REFERENCE_TYPES, EntryRef, Fetcher, clean_error, ref_from_entry
from harvest.failures import FailureKind, failure_kind
from harvest.license import describe_license, license_unreadable
from harvest.listing import SourceBudget, iter_entries, tab_selected
from harvest.manifest import write_source_record
from harvest.outcome import Outcome, Status
from harvest.probe import NotAudioError, probe_audio
from harvest.subtitles import clean_tracks, exact_patterns, language_patterns, saved_subtitles

MAX_NESTING = 3  # channel -> tab -> playlist -> video
NOT_YET_LIVE = frozenset({"is_live", "is_upcoming", "post_live"})  # yt-dlp live_status values
NEEDS_LOGIN = frozenset({"subscriber_only", "premium_only", "needs_auth"})  # yt-dlp availability
NEEDS_LOGIN_WORDS = re.compile(r"sign in|members|confirm your age|age-restricted", re.IGNORECASE)
PARAMS_VERSION = 2  # bump when an online source's files change meaning


def online_params(ctx: HarvestContext) -> dict[str, Any]:
    """What shapes an online source's audio (subtitles are tracked apart, per track)."""
    return {"kind": "online", "version": PARAMS_VERSION}


def pending_subtitles(ctx: HarvestContext, source_id: str) -> list[str]:
    """``subtitleslangs`` patterns a finished source still lacks for this run's ``--subs``."""
    if not ctx.options.subtitle_langs:
        return []
    extra = ctx.catalog.extra_of.get(source_id, {})
    covered = set(extra.get("subs", []))
    patterns = list(extra.get("subs_missing", []))
    return patterns + language_patterns(tuple(lang for lang in ctx.options.subtitle_langs if lang not in covered))


def known_outcome(ctx: HarvestContext, key: tuple[str, str], label: str, flat: dict[str, Any] | None = None,
                  claim: bool = True) -> Outcome | None:
    """An outcome for ``key`` without any request, or None if it needs work.

    With ``claim`` the key is also reserved for the caller, so the same video
    met again in this run (two playlists) is skipped, not fetched twice.
    """
    source_id = ctx.catalog.source_id_of(key)
    if source_id is not None and ctx.journal.is_done(source_unit(source_id), online_params(ctx)) \
            and not pending_subtitles(ctx, source_id):
        ctx.log.info(f"skipped {source_id}: already have it ({key[0]} {key[1]})")
        return Outcome(Status.SKIPPED, label, source_id, "already have")
    decided = _decided_earlier(ctx, key, label)
    if decided is not None:
        return decided
    flat_outcome = _judged_from_flat_entry(ctx, key, label, flat or {})
    if flat_outcome is not None:
        return flat_outcome
    if claim and not ctx.catalog.claim(key):
        ctx.log.info(f"skipped {key[1]}: listed again in this run")
        return Outcome(Status.SKIPPED, label, ctx.catalog.source_id_of(key) or "", "listed twice")
    return None


def _decided_earlier(ctx: HarvestContext, key: tuple[str, str], label: str) -> Outcome | None:
    rejection = ctx.rejected.get(*key)
    retry_license = ctx.options.recheck_rejected or ctx.options.allow_any_license
    if rejection is not None and (rejection.reason == REASON_DUPLICATE or not retry_license):
        ctx.log.info(f"skipped {key[1]}: {rejection.reason} rejection on an earlier run "
                     f"({rejection.duplicate_of or describe_license(rejection.license)}); "
                     "--recheck-rejected retries licences")
        return Outcome(Status.SKIPPED, label, rejection.duplicate_of, f"rejected earlier ({rejection.reason})")
    unavailable = ctx.unavailable.get(*key)
    if unavailable is not None and not ctx.options.recheck_unavailable \
            and not (unavailable.needs_login and ctx.options.has_cookies):
        ctx.log.info(f"skipped {key[1]}: unavailable on an earlier run ({unavailable.reason}); "
                     "--recheck-unavailable retries it")
        return Outcome(Status.SKIPPED, label, "", "unavailable earlier")
    return None


def _judged_from_flat_entry(ctx: HarvestContext, key: tuple[str, str], label: str,
                            flat: dict[str, Any]) -> Outcome | None:
    """Live, upcoming and members-only entries are told apart by the listing alone: no request."""
    live = flat.get("live_status")
    if live in NOT_YET_LIVE:
        return _not_yet(ctx, label, f"live_status {live}")
    availability = flat.get("availability")
    if availability in NEEDS_LOGIN and not ctx.options.has_cookies:
        return _unavailable(ctx, key, label, f"{availability} (needs a signed-in account: --cookies)", "",
                            needs_login=True)
    if availability == "private":
        return _unavailable(ctx, key, label, "private video", "", needs_login=False)
    return None


def harvest_ref(ctx: HarvestContext, fetcher: Fetcher, ref: EntryRef, budget: SourceBudget,
                depth: int = 0) -> list[Outcome]:
    """Harvest one entry reference (a playlist met here expands into its entries)."""
    if ctx.stopping():
        return []
    label = ref.video_id or ref.url
    key = ref.key or fetcher.temp_key(ref.url)
    is_video = _is_video(fetcher, ref)
    if key is not None:
        known = known_outcome(ctx, key, label, ref.flat, claim=is_video)
        if known is not None:
            return [known]
    if ref.info is None and not ref.local and ctx.stop.wait(ctx.options.sleep_entry_s):
        return []  # stopped during the polite pause
    try:
        info = ref.info if ref.info is not None else fetcher.extract(ref.url, ref.ie_key)
    except Exception as error:  # noqa: BLE001 - yt-dlp lets some errors escape unwrapped
        return [request_failed(ctx, label, "extraction", error, key, ref.url)]
    ctx.breaker.answered()
    if ref.overrides:
        info = {**info, **ref.overrides}
    kind = info.get("_type", "video")
    if kind in PLAYLIST_TYPES or kind in REFERENCE_TYPES:
        return _expand(ctx, fetcher, info, budget, depth, ref.local)
    video_key = (info.get("extractor_key") or info.get("extractor") or "", str(info.get("id")))
    if video_key != key or not is_video:
        known = known_outcome(ctx, video_key, label, info)
        if known is not None:
            return [known]
    source_id = ctx.catalog.source_id_of(video_key)
    if source_id is not None and ctx.journal.is_done(source_unit(source_id), online_params(ctx)):
        return [refetch_subtitles(ctx, fetcher, info, video_key, source_id)]
    return [harvest_video(ctx, fetcher, info, video_key)]


def _is_video(fetcher: Fetcher, ref: EntryRef) -> bool:
    """Whether ``ref`` is known to be one video before extraction: only video keys are claimed,
    since a channel's tabs share one key (the channel id) and must not shadow each other."""
    if ref.info is not None:
        return ref.info.get("_type", "video") == "video"
    return fetcher.return_type(ref) == "video"


def _expand(ctx: HarvestContext, fetcher: Fetcher, info: dict[str, Any], budget: SourceBudget,
            depth: int, local: bool) -> list[Outcome]:
    """A playlist found only at extraction (a feed item, a playlist of playlists): its entries here."""
    label = info.get("webpage_url") or info.get("url") or info.get("id") or "?"
    if depth >= MAX_NESTING:
        ctx.log.error(f"failed {label}: playlists nested deeper than {MAX_NESTING} levels")
        return [Outcome(Status.FAILED, label, "", "nested too deep")]
    entries = [info] if info.get("_type") in REFERENCE_TYPES else iter_entries(info)
    outcomes: list[Outcome] = []
    try:
        for entry in entries:
            if ctx.stopping():
                break
            if isinstance(entry, dict) and not tab_selected(entry, ctx.options.tabs):
                continue
            ref = ref_from_entry(entry, local)
            if ref is None:
                continue
            if not budget.take():
                break
            outcomes += harvest_ref(ctx, fetcher, ref, budget, depth + 1)
    except Exception as error:  # noqa: BLE001 - a lazy page failed: keep what was listed
        outcomes.append(request_failed(ctx, label, "listing", error, None, label))
    return outcomes


def harvest_video(ctx: HarvestContext, fetcher: Fetcher, info: dict[str, Any],
                  key: tuple[str, str]) -> Outcome:
    """Gate, download, probe, dedupe and record one fully extracted video."""
    label = key[1]
    if info.get("live_status") in NOT_YET_LIVE:
        return _not_yet(ctx, label, f"live_status {info['live_status']}")
    refused = _license_refused(ctx, info, key)
    if refused is not None:
        return refused
    source_id = ctx.catalog.allocate_id(key, key[1], short_hash(f"{key[0]} {key[1]}"))
    try:
        result = fetcher.download_audio(info, source_id)
    except Exception as error:  # noqa: BLE001 - report yt-dlp's reason, go on with the next entry
        return request_failed(ctx, label, "download", error, key, info.get("webpage_url") or "")
    ctx.breaker.answered()
    partial = _downloaded_path(result)
    if partial is None:
        ctx.log.error(f"failed {label}: yt-dlp downloaded no audio file (filtered out or no format with audio)")
        return Outcome(Status.FAILED, label, "", "no audio file")
    if result.get("vcodec") not in (None, "none"):
        ctx.log.info(f"{label}: no audio-only format, took muxed format {result.get('format_id')} "
                     f"({result.get('ext')}); segment decodes any container")
    subtitles, missing = fetch_subtitles(ctx, fetcher, info, source_id, _requested_patterns(ctx))
    return _finish(ctx, info, key, source_id, partial, subtitles, missing)


def _license_refused(ctx: HarvestContext, info: dict[str, Any], key: tuple[str, str]) -> Outcome | None:
    if ctx.options.allow_any_license:
        return None
    license_text = info.get("license")
    ctx.license_watch.saw(info)
    if license_unreadable(info):
        ctx.log.warning(f"failed {key[1]}: licence unreadable, retried next run (the watch page data did "
                        "not load; a missing licence is not taken as a refusal)")
        return Outcome(Status.FAILED, key[1], "", "licence unreadable, retried next run")
    if ctx.gate.accepts(license_text):
        return None
    rejection = Rejection(extractor=key[0], id=key[1], reason=REASON_LICENSE,
                          url=_public_url(info.get("webpage_url") or ""), title=info.get("title") or "",
                          license=license_text or "")
    reason = ctx.gate.reason(license_text)
    if ctx.license_watch.reject(rejection, info):
        ctx.log.info(f"rejected {key[1]}: {reason}")
    else:
        ctx.log.info(f"rejected {key[1]}: no licence field (stored once a watch page of this run shows one)")
    return Outcome(Status.REJECTED, key[1], "", f"licence: {describe_license(license_text)}")


def _requested_patterns(ctx: HarvestContext) -> list[str]:
    return language_patterns(ctx.options.subtitle_langs)


def fetch_subtitles(ctx: HarvestContext, fetcher: Fetcher, info: dict[str, Any], source_id: str,
                    patterns: list[str]) -> tuple[list[Subtitle], list[str]]:
    """Save the tracks ``patterns`` select; returns them and the patterns still missing."""
    if not patterns:
        return [], []
    cleaned, dropped = clean_tracks(info)
    if dropped:
        ctx.log.warning(f"{source_id}: ignored subtitle tracks with unsafe language codes {dropped!r}")
    try:
        result = fetcher.download_subtitles(cleaned, source_id, patterns, ctx.options.auto_subs)
    except Exception as error:  # noqa: BLE001 - subtitles never cost the audio
        ctx.log.warning(f"{source_id}: subtitles could not be fetched ({clean_error(error)}); "
                        "kept the audio without them, a rerun fetches only them")
        return [], patterns
    saved, missing = saved_subtitles(ctx.workspace, result)
    if missing:
        ctx.log.warning(f"{source_id}: subtitle tracks {', '.join(missing)} could not be fetched; "
                        "kept the audio without them, a rerun fetches only them")
    return saved, exact_patterns(missing)


def refetch_subtitles(ctx: HarvestContext, fetcher: Fetcher, info: dict[str, Any], key: tuple[str, str],
                      source_id: str) -> Outcome:
    """A source we have, missing subtitle tracks: fetch only those and update its record."""
    record = SourceRecord.read(ctx.workspace.source_record_path(source_id))
    added, missing = fetch_subtitles(ctx, fetcher, info, source_id, pending_subtitles(ctx, source_id))
    by_language = {subtitle.language: subtitle for subtitle in record.subtitles}
    by_language.update({subtitle.language: subtitle for subtitle in added})
    record.subtitles = list(by_language.values())
    _commit(ctx, record, key, ctx.workspace.absolute(record.audio_path), missing)
    ctx.log.info(f"updated {source_id}: {len(added)} subtitle tracks added, {len(missing)} still missing")
    return Outcome(Status.UPDATED, key[1], source_id, "subtitles")


def _finish(ctx: HarvestContext, info: dict[str, Any], key: tuple[str, str], source_id: str,
            partial: Path, subtitles: list[Subtitle], missing: list[str]) -> Outcome:
    label = key[1]
    try:
        probe = probe_audio(partial)
    except NotAudioError as error:
        partial.unlink(missing_ok=True)
        ctx.log.error(f"failed {label}: corrupt media: {error}")
        return Outcome(Status.FAILED, label, "", f"corrupt media: {error}")
    sha256 = file_sha256(partial)
    with ctx.catalog.lock:
        duplicate = ctx.catalog.duplicate_of(sha256)
        if duplicate is not None and duplicate != source_id:
            partial.unlink(missing_ok=True)
            for subtitle in subtitles:
                ctx.workspace.absolute(subtitle.path).unlink(missing_ok=True)
            ctx.rejected.add(Rejection(extractor=key[0], id=key[1], reason=REASON_DUPLICATE,
                                       url=_public_url(info.get("webpage_url") or ""),
                                       title=info.get("title") or "", duplicate_of=duplicate, sha256=sha256))
            ctx.log.info(f"skipped {label}: duplicate of source {duplicate} (same audio sha256)")
            return Outcome(Status.DUPLICATE, label, duplicate, f"duplicate of {duplicate}")
        audio = _publish_audio(ctx, partial, source_id)
        record = _record(ctx, info, key, source_id, audio, sha256, probe.duration, subtitles)
        _commit(ctx, record, key, audio, missing)
        ctx.rejected.clear(*key)
        ctx.unavailable.clear(*key)
    ctx.log.info(f"downloaded {source_id}: {record.title!r} ({probe.codec}, {probe.duration or 0:.1f} s, "
                 f"licence {describe_license(record.license)!r}, {len(record.subtitles)} subtitle tracks)")
    return Outcome(Status.DOWNLOADED, label, source_id, "downloaded")


def _publish_audio(ctx: HarvestContext, partial: Path, source_id: str) -> Path:
    """Move the probed download to ``audio/<source_id>.<ext>`` and drop other formats' leftovers."""
    audio_dir = ctx.workspace.audio_dir
    audio_dir.mkdir(parents=True, exist_ok=True)
    audio = audio_dir / f"{source_id}{partial.suffix.lower()}"
    os.replace(partial, audio)
    fsync_dir(audio_dir)
    for leftover in partial.parent.glob(f"{source_id}.f*"):
        leftover.unlink(missing_ok=True)
    return audio


def _commit(ctx: HarvestContext, record: SourceRecord, key: tuple[str, str], audio: Path,
            missing: list[str]) -> None:
    """Write the record, then the DONE line that vouches for it (the journal's order)."""
    record_path = write_source_record(ctx.workspace, record)
    subtitle_files = [ctx.workspace.absolute(s.path) for s in record.subtitles]
    extra = {"extractor": key[0], "id": key[1], "subs": list(ctx.options.subtitle_langs),
             "subs_missing": missing, "seconds": record.duration or 0.0}
    previous = ctx.catalog.extra_of.get(record.source_id, {})
    extra["subs"] = sorted(set(extra["subs"]) | set(previous.get("subs", [])))
    ctx.journal.mark_done(source_unit(record.source_id), online_params(ctx), files=[audio, *subtitle_files],
                          hashed=[record_path], extra=extra)
    ctx.catalog.add(record, key, extra)


def _public_url(url: str) -> str:
    """A URL fit for the manifest: a local ``file://`` path shrinks to its file name."""
    url = unsmuggle_url(url)[0]
    if url.startswith("file:"):
        return Path(unquote(urlparse(url).path)).name
    if url.startswith("/"):
        return Path(url).name
    return url


def _record(ctx: HarvestContext, info: dict[str, Any], key: tuple[str, str], source_id: str, audio: Path,
            sha256: str, probed_duration: float | None, subtitles: list[Subtitle]) -> SourceRecord:
    return SourceRecord(
        source_id=source_id, extractor=key[0], original_id=_public_url(key[1]),
        url=_public_url(info.get("webpage_url") or info.get("original_url") or ""),
        title=info.get("title") or "", uploader=info.get("uploader") or "",
        channel=info.get("channel") or "", channel_id=info.get("channel_id") or "",
        duration=info.get("duration") or probed_duration, upload_date=info.get("upload_date") or "",
        license=info.get("license") or "", language=info.get("language") or "",
        audio_path=ctx.workspace.relative(audio), sha256=sha256, subtitles=subtitles)


def _downloaded_path(info: dict[str, Any]) -> Path | None:
    for download in info.get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    return None


def _not_yet(ctx: HarvestContext, label: str, reason: str) -> Outcome:
    ctx.log.info(f"later {label}: {reason}; live and upcoming videos are taken by a run after they end")
    return Outcome(Status.LATER, label, "", reason)


def _unavailable(ctx: HarvestContext, key: tuple[str, str] | None, label: str, reason: str, url: str,
                 needs_login: bool) -> Outcome:
    if key is not None:
        ctx.unavailable.add(Unavailable(extractor=key[0], id=key[1], reason=reason, url=_public_url(url),
                                        needs_login=needs_login))
    ctx.log.info(f"unavailable {label}: {reason} (remembered; --recheck-unavailable retries it)")
    return Outcome(Status.UNAVAILABLE, label, "", reason)


def request_failed(ctx: HarvestContext, label: str, step: str, error: BaseException,
                   key: tuple[str, str] | None, url: str) -> Outcome:
    """One failed request, judged by its kind: a block feeds the breaker, the rest is remembered or retried."""
    reason = clean_error(error)
    kind = failure_kind(error)
    if kind is FailureKind.BLOCKED:
        ctx.log.error(f"failed {label}: {step}: blocked by the site: {reason}")
        if ctx.breaker.blocked(reason):
            ctx.stop.set()
        return Outcome(Status.FAILED, label, "", f"blocked: {reason}")
    ctx.breaker.answered()
    if kind is FailureKind.NOT_YET:
        return _not_yet(ctx, label, reason)
    if kind is FailureKind.UNAVAILABLE:
        return _unavailable(ctx, key, label, reason, url, needs_login=NEEDS_LOGIN_WORDS.search(reason) is not None)
    ctx.log.error(f"failed {label}: {step}: {reason}")
    return Outcome(Status.FAILED, label, "", reason)
