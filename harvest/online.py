"""One online entry from reference to finished source.

Order of checks, cheapest first, so a rerun costs no requests for what it
already decided: finished key -> skip; rejected key -> skip; same key earlier
in this run -> skip; then full extraction, licence gate, download, probe,
content-hash dedupe, record, DONE line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yt_dlp.utils import DownloadError, unsmuggle_url

from whcore.journal import file_sha256, source_unit
from whcore.records import SourceRecord

from harvest.catalog import short_hash
from harvest.context import HarvestContext
from harvest.download import PLAYLIST_TYPES, REFERENCE_TYPES, SUBTITLE_FAILURE, EntryRef, Fetcher, \
    clean_error, playlist_entries, ref_from_entry
from harvest.license import describe_license, is_cc_licensed
from harvest.manifest import write_source_record
from harvest.outcome import Outcome, Status
from harvest.probe import NotAudioError, probe_audio
from harvest.rejected import REASON_DUPLICATE, REASON_LICENSE, Rejection
from harvest.subtitles import saved_subtitles

MAX_NESTING = 3  # channel -> tab -> playlist -> video


def online_params(ctx: HarvestContext) -> dict[str, Any]:
    """The options that shape an online source's outputs (journal params)."""
    return {"kind": "online", "subs": sorted(ctx.options.subtitle_langs), "auto_subs": ctx.options.auto_subs}


def known_outcome(ctx: HarvestContext, key: tuple[str, str], label: str, claim: bool = True) -> Outcome | None:
    """An outcome for ``key`` without any request, or None if it needs work.

    With ``claim`` the key is also reserved for the caller, so the same video
    met again in this run (two playlists) is skipped, not fetched twice.
    """
    source_id = ctx.catalog.source_id_of(key)
    if source_id is not None and ctx.journal.is_done(source_unit(source_id), online_params(ctx)):
        ctx.log.info(f"skipped {source_id}: already have it ({key[0]} {key[1]})")
        return Outcome(Status.SKIPPED, label, source_id, "already have")
    rejection = ctx.rejected.get(*key)
    retry_license = ctx.options.recheck_rejected or ctx.options.allow_any_license
    if rejection is not None and (rejection.reason == REASON_DUPLICATE or not retry_license):
        ctx.log.info(f"skipped {key[1]}: {rejection.reason} rejection on an earlier run "
                     f"({rejection.duplicate_of or describe_license(rejection.license)}); "
                     "--recheck-rejected retries licences")
        return Outcome(Status.SKIPPED, label, rejection.duplicate_of, f"rejected earlier ({rejection.reason})")
    if claim and not ctx.catalog.claim(key):
        ctx.log.info(f"skipped {key[1]}: listed again in this run")
        return Outcome(Status.SKIPPED, label, ctx.catalog.source_id_of(key) or "", "listed twice")
    return None


def harvest_ref(ctx: HarvestContext, fetcher: Fetcher, ref: EntryRef, depth: int = 0) -> list[Outcome]:
    """Harvest one entry reference (a nested playlist expands into its entries)."""
    label = ref.video_id or ref.url
    key = ref.key or fetcher.temp_key(ref.url)
    if key is not None:
        known = known_outcome(ctx, key, label)
        if known is not None:
            return [known]
    try:
        info = ref.info if ref.info is not None else fetcher.extract(ref.url, ref.ie_key)
    except Exception as error:  # noqa: BLE001 - yt-dlp lets some errors escape unwrapped
        return [_failed(ctx, label, "extraction", error)]
    if ref.overrides:
        info = {**info, **ref.overrides}
    kind = info.get("_type", "video")
    if kind in PLAYLIST_TYPES or kind in REFERENCE_TYPES:
        return _expand(ctx, fetcher, info, depth)
    video_key = (info.get("extractor_key") or info.get("extractor") or "", str(info.get("id")))
    if video_key != key:
        known = known_outcome(ctx, video_key, label)
        if known is not None:
            return [known]
    return [harvest_video(ctx, fetcher, info, video_key)]


def _expand(ctx: HarvestContext, fetcher: Fetcher, info: dict[str, Any], depth: int) -> list[Outcome]:
    label = info.get("webpage_url") or info.get("url") or info.get("id") or "?"
    if depth >= MAX_NESTING:
        ctx.log.error(f"failed {label}: playlists nested deeper than {MAX_NESTING} levels")
        return [Outcome(Status.FAILED, label, "", "nested too deep")]
    if info.get("_type") in REFERENCE_TYPES:
        refs = [ref_from_entry(info)]
    else:
        refs = [ref_from_entry(entry) for entry in playlist_entries(info, ctx.options.limit)]
    outcomes: list[Outcome] = []
    for ref in refs:
        if ref is not None:
            outcomes += harvest_ref(ctx, fetcher, ref, depth + 1)
    return outcomes


def harvest_video(ctx: HarvestContext, fetcher: Fetcher, info: dict[str, Any],
                  key: tuple[str, str]) -> Outcome:
    """Gate, download, probe, dedupe and record one fully extracted video."""
    label = key[1]
    license_text = info.get("license")
    if not ctx.options.allow_any_license and not is_cc_licensed(license_text):
        ctx.rejected.add(Rejection(extractor=key[0], id=key[1], reason=REASON_LICENSE,
                                   url=info.get("webpage_url") or "", title=info.get("title") or "",
                                   license=license_text or ""))
        ctx.log.info(f"rejected {label}: licence {describe_license(license_text)!r} is not Creative Commons")
        return Outcome(Status.REJECTED, label, "", f"licence: {describe_license(license_text)}")
    source_id = ctx.catalog.allocate_id(key, key[1], short_hash(f"{key[0]} {key[1]}"))
    try:
        result = _download(ctx, fetcher, info, source_id)
    except Exception as error:  # noqa: BLE001 - report yt-dlp's reason, go on with the next entry
        return _failed(ctx, label, "download", error)
    audio = _downloaded_path(result)
    if audio is None:
        ctx.log.error(f"failed {label}: yt-dlp downloaded no audio file (filtered out or no audio-only format)")
        return Outcome(Status.FAILED, label, "", "no audio file")
    return _finish(ctx, result, key, source_id, audio)


def _download(ctx: HarvestContext, fetcher: Fetcher, info: dict[str, Any], source_id: str) -> dict[str, Any]:
    """Download audio and subtitles; if only the subtitles fail, keep the audio without them."""
    try:
        return fetcher.download(info, source_id)
    except DownloadError as error:
        if not ctx.options.subtitle_langs or SUBTITLE_FAILURE not in str(error):
            raise
        ctx.log.warning(f"{source_id}: {clean_error(error)}; keeping the audio without subtitles")
        return fetcher.download(info, source_id, subtitles=False)


def _finish(ctx: HarvestContext, info: dict[str, Any], key: tuple[str, str], source_id: str,
            audio: Path) -> Outcome:
    label = key[1]
    try:
        probe = probe_audio(audio)
    except NotAudioError as error:
        audio.unlink(missing_ok=True)
        ctx.log.error(f"failed {label}: corrupt media: {error}")
        return Outcome(Status.FAILED, label, "", f"corrupt media: {error}")
    sha256 = file_sha256(audio)
    with ctx.catalog.lock:
        duplicate = ctx.catalog.duplicate_of(sha256)
        if duplicate is not None and duplicate != source_id:
            audio.unlink(missing_ok=True)
            ctx.rejected.add(Rejection(extractor=key[0], id=key[1], reason=REASON_DUPLICATE,
                                       url=info.get("webpage_url") or "", title=info.get("title") or "",
                                       duplicate_of=duplicate, sha256=sha256))
            ctx.log.info(f"skipped {label}: duplicate of source {duplicate} (same audio sha256)")
            return Outcome(Status.DUPLICATE, label, duplicate, f"duplicate of {duplicate}")
        record = _record(ctx, info, key, source_id, audio, sha256, probe.duration)
        record_path = write_source_record(ctx.workspace, record)
        subtitle_files = [ctx.workspace.absolute(s.path) for s in record.subtitles]
        ctx.journal.mark_done(source_unit(source_id), online_params(ctx), files=[audio, *subtitle_files],
                              hashed=[record_path], extra={"extractor": key[0], "id": key[1],
                                                           "seconds": record.duration})
        ctx.catalog.add(record, key)
        if ctx.rejected.get(*key) is not None:
            ctx.rejected.discard(*key)
    ctx.log.info(f"downloaded {source_id}: {record.title!r} ({probe.codec}, {probe.duration or 0:.1f} s, "
                 f"licence {describe_license(record.license)!r}, {len(record.subtitles)} subtitle tracks)")
    return Outcome(Status.DOWNLOADED, label, source_id, "downloaded")


def _record(ctx: HarvestContext, info: dict[str, Any], key: tuple[str, str], source_id: str,
            audio: Path, sha256: str, probed_duration: float | None) -> SourceRecord:
    return SourceRecord(
        source_id=source_id, extractor=key[0], original_id=key[1],
        url=unsmuggle_url(info.get("webpage_url") or info.get("original_url") or "")[0],
        title=info.get("title") or "", uploader=info.get("uploader") or "",
        channel=info.get("channel") or "", channel_id=info.get("channel_id") or "",
        duration=info.get("duration") or probed_duration, upload_date=info.get("upload_date") or "",
        license=info.get("license") or "", language=info.get("language") or "",
        audio_path=ctx.workspace.relative(audio), sha256=sha256,
        subtitles=saved_subtitles(ctx.workspace, info))


def _downloaded_path(info: dict[str, Any]) -> Path | None:
    for download in info.get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    return None


def _failed(ctx: HarvestContext, label: str, step: str, error: BaseException) -> Outcome:
    reason = clean_error(error)
    ctx.log.error(f"failed {label}: {step}: {reason}")
    return Outcome(Status.FAILED, label, "", reason)
