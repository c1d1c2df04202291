"""What keeps a rerun's "what is done" check fast at 100k sources, and exactly as strict.

The digests spliced from a pre-encoded template must be the digests of the full params
(and of the params earlier versions wrote, or every workspace would be redone); the
skip lines of a big rerun are counted, not written one by one.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

from label.run import LabelOptions, source_params
from segment.run import SegmentOptions, unit_params
from segment.windows import make_plan
from whcore.journal import ParamsDigester, params_digest
from whcore.records import SourceRecord
from whcore.skips import SHOWN_PER_RUN, SkipLines


def random_value(rng: random.Random, depth: int = 0):  # noqa: ANN201 - any JSON value
    choices = [lambda: rng.random() * 10 ** rng.randint(-3, 6), lambda: rng.randint(-5, 10 ** 9), lambda: None,
               lambda: rng.choice([True, False]),
               lambda: "".join(rng.choice('ab"\\/\n\té€漢\x00 ') for _ in range(rng.randint(0, 12)))]
    if depth < 2:
        choices += [lambda: [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
                    lambda: {f"k{rng.randint(0, 9)}": random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}]
    return rng.choice(choices)()


def test_spliced_digests_equal_the_digest_of_the_full_params() -> None:
    rng = random.Random(7)
    for _ in range(300):
        base = {f"{rng.choice('abwz')}{i}": random_value(rng) for i in range(rng.randint(0, 8))}
        keys = tuple(rng.sample(["windows", "audio", "sha256", "a0", "zz"], rng.randint(1, 3)))
        digester = ParamsDigester(base, keys)
        values = {key: random_value(rng) for key in keys}
        params = digester.params(**values)
        assert dict(params) == {**base, **values}
        assert params.digest == digester.digest(**values) == params_digest(dict(params))
        assert digester.digest_values(tuple(values[key] for key in keys)) == params.digest
    with pytest.raises(TypeError):
        ParamsDigester({"a": 1}, ("windows",)).digest(audio="x")


def test_contents_digest_equals_the_digest_of_the_listings_as_dicts() -> None:
    from whcore.journal import contents_digest
    from whcore.journal_table import flat_contents

    rng = random.Random(11)
    names = ["labels/a.jsonl", "labels/b.jsonl", "windows/é\"x/windows.jsonl", "/abs/path"]
    for _ in range(300):
        listings = {}
        for _ in range(rng.randint(0, 6)):
            flat: list = []
            for _ in range(rng.choice([1, 1, 2, 3])):  # duplicates too: the dict keeps the last
                size = rng.choice([rng.randint(0, 10 ** 12), rng.random(), True, "12"])
                flat += [rng.choice(names), size, rng.choice([None, "ab" * 32, random_value(rng)]),
                         rng.choice([None, rng.randint(0, 10 ** 18)])]
            listings[rng.choice(["s1", "s2", "é", 'q"', "s" * 20])] = tuple(flat)
        assert contents_digest(listings) == params_digest({k: flat_contents(f) for k, f in listings.items()})


def test_label_and_segment_params_digest_as_earlier_versions_wrote_them(tmp_path: Path) -> None:
    """The dicts below are what source_params and unit_params built before the template: a change
    here would make every rerun redo every source of every existing workspace."""
    manifest = tmp_path / "windows.jsonl"
    manifest.write_text('{"source_id": "x"}\n')
    options = LabelOptions(model_identity="ct2:abcd", language="es")
    thresholds = dataclasses.asdict(options.thresholds)
    thresholds["disabled"] = sorted(options.thresholds.disabled)
    import hashlib
    earlier = {"model": options.model, "model_dir": str(options.model_dir), "weights": options.model_identity,
               "language": "es", "mode": options.mode, "backend": options.backend, "script": options.script,
               "text": options.text, "filters": thresholds, "beam_size": 1, "compute_type": "", "encoder": "",
               "task": "transcribe", "probe": options.language_probe_windows,
               "check_model": options.check_model_identity,
               "windows": hashlib.sha256(manifest.read_bytes()).hexdigest()}
    assert params_digest(source_params(options, manifest)) == params_digest(earlier)
    assert dict(source_params(options, str(manifest))) == earlier

    record = SourceRecord("talk", "local", "talk", "file:talk.m4a", audio_path="sources/audio/talk.m4a",
                          sha256="ab" * 32)
    for store in ("flac", "wav"):
        options = SegmentOptions(plan=make_plan(10.0, 2.0, 1.0), vad_mode=2, store=store)
        earlier = {"window_s": 10.0, "overlap_s": 2.0, "min_tail_s": 1.0, "snap_s": 0.0, "vad_mode": 2,
                   "rate_hz": 16000, "audio": record.audio_path, "sha256": record.sha256, "format": 1,
                   **({"store": "flac"} if store == "flac" else {})}
        assert params_digest(unit_params(record, options)) == params_digest(earlier)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


@pytest.mark.parametrize("skipped", [0, 3, SHOWN_PER_RUN, SHOWN_PER_RUN + 1, 1000])
def test_a_big_rerun_lists_the_first_skips_and_counts_the_rest(skipped: int) -> None:
    log = Lines()
    skips = SkipLines(log, "already labelled")
    for i in range(skipped):
        skips.line(f"s{i}: already labelled, skipping")
    skips.close()
    shown = min(skipped, SHOWN_PER_RUN)
    assert log.lines[:shown] == [f"s{i}: already labelled, skipping" for i in range(shown)]
    if skipped > SHOWN_PER_RUN:
        assert log.lines[shown:] == [f"... and {skipped - shown} more sources already labelled "
                                     f"(not listed one by one; {skipped} skipped in all)"]
    else:
        assert len(log.lines) == shown
    assert json.dumps(log.lines)  # plain strings


@pytest.mark.parametrize("skipped", [0, 3, SHOWN_PER_RUN, SHOWN_PER_RUN + 1, 1000])
@pytest.mark.parametrize("before", [0, 5, SHOWN_PER_RUN + 2])
def test_skips_counted_at_once_read_as_skips_counted_one_by_one(skipped: int, before: int) -> None:
    one_by_one, at_once = Lines(), Lines()
    for log, many in ((one_by_one, False), (at_once, True)):
        skips = SkipLines(log, "already segmented")
        for i in range(before):
            skips.line(f"first {i}")
        made: list[int] = []
        if many:
            skips.lines(list(range(skipped)), lambda i: made.append(i) or f"s{i} skipped")
        else:
            for i in range(skipped):
                skips.line(f"s{i} skipped")
        skips.close()
        if many:  # only the lines shown are formatted
            assert made == list(range(min(skipped, max(0, SHOWN_PER_RUN - before))))
    assert at_once.lines == one_by_one.lines


def test_done_values_reader_reads_logged_and_newly_marked_lines(tmp_path: Path) -> None:
    from whcore.journal import Journal, setup_logging, source_unit
    from whcore.journal_table import ValuePicker
    from whcore.workspace import open_workspace

    picker = ValuePicker(("b", "z", "a"))
    keys = ("a", "b", "c")
    assert picker(keys, (1, 2, 3)) == (2, None, 1) and picker(keys, (4, 5, 6)) == (5, None, 4)
    assert picker(None, ()) == (None, None, None) and ValuePicker(("c",))(keys, (1, 2, 3)) == (3,)

    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "segment")
    first = Journal(workspace, "segment")
    first.mark_done(source_unit("old"), {"audio": "a.m4a", "sha256": "1" * 64, "window_s": 10.0},
                    extra={"record": "1:2:3", "windows": 7})
    journal = Journal(workspace, "segment")  # "old" comes from the log
    journal.mark_done(source_unit("new"), {"sha256": "2" * 64, "window_s": 10.0}, extra={"seconds": 9.5})
    read = journal.done_values_reader(("record", "seconds", "windows"), ("audio", "sha256"))
    assert read(source_unit("old")) == (("1:2:3", None, 7), ("a.m4a", "1" * 64))
    assert read(source_unit("new")) == ((None, 9.5, None), (None, "2" * 64))
    assert read(source_unit("never")) is None


def test_stale_temps_are_swept_by_name_as_the_glob_matched_them(tmp_path: Path) -> None:
    from whcore.publish import TEMP_PREFIX, sweep_stale

    names = [f"{TEMP_PREFIX}999999999-x-dataset", f"{TEMP_PREFIX}-dataset", f"{TEMP_PREFIX}dataset",
             f"{TEMP_PREFIX}999999998-other", "dataset", f"x{TEMP_PREFIX}1-dataset"]
    for name in names:
        (tmp_path / name).mkdir()
    assert sweep_stale(tmp_path, "dataset") == 2  # what glob(".tmp-*-dataset") matched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
    assert sweep_stale(tmp_path) == 2  # ".tmp-*": the rest of the temps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", f"x{TEMP_PREFIX}1-dataset"]


@pytest.mark.parametrize("line_format", ["digest", "listing"])
def test_status_tells_when_labels_changed_since_the_dataset_was_built(tmp_path: Path, line_format: str) -> None:
    """The dataset's DONE line keeps a digest of its label files, not a listing of all of them
    (10 MB per build at 100k sources); status still tells a stale dataset, and names the
    sources labelled since. Lines of earlier versions (the listing) are read as before."""
    import time

    from label.run import dataset_params
    from status.report import dataset_redo
    from whcore.journal import DATASET_UNIT, Journal, content_listing, setup_logging, source_unit, stage_log
    from whcore.workspace import open_workspace

    workspace = open_workspace(tmp_path, create=True)
    setup_logging(workspace, "label")
    journal = Journal(workspace, "label")
    workspace.labels_dir.mkdir(parents=True, exist_ok=True)

    def label(sid: str, text: str) -> dict:
        path = workspace.labels_path(sid)
        path.write_text(json.dumps({"text": text}) + "\n")
        return content_listing(journal.mark_done(source_unit(sid), {"model": "m"}, hashed=[path]).files)

    built = {sid: label(sid, sid) for sid in ("a", "b")}
    if line_format == "digest":
        journal.mark_done(DATASET_UNIT, dataset_params(built, {"format": "parquet"}))
        line = workspace.log_path.read_text(encoding="utf-8").splitlines()[-1]
        assert "labels/a.jsonl" not in line and '"sources": 2' in line
    else:
        journal.mark_done(DATASET_UNIT, {"labels": built, "settings": {"format": "parquet"}})

    def redo() -> list[str]:
        log = stage_log(workspace.log_path, "label")
        return [r.reason for r in dataset_redo(log, log.latest_done_rows())]

    assert redo() == []
    time.sleep(0.01)  # the journal's times have millisecond resolution
    label("b", "B")
    assert redo() == ["labels changed since it was built: source:b"]
