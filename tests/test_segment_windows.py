"""Window planning and the streaming cutter, on synthetic sample arrays (no ffmpeg).

The tail rule is checked on lengths around every window/hop boundary, and the
streaming cutter must place windows exactly where the pure planner does and
hand out exactly those samples, however the stream happens to be chunked.
"""

from __future__ import annotations

import numpy as np
import pytest

from segment.stream import cut_stream, ring_capacity
from segment.vad import StreamVad, rms_db
from segment.windows import WindowPlan, make_plan, plan_windows, quietest_cut
from whcore.errors import UserError

RATE = 16000
PLAN = make_plan(10, 2, 1)  # the defaults: 160000-sample windows, 128000-sample hop, 16000 min tail
W, HOP, TAIL = PLAN.window, PLAN.hop, PLAN.min_tail


def chunked(signal: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    chunks, position, i = [], 0, 0
    while position < len(signal):
        size = sizes[i % len(sizes)]
        chunks.append(signal[position:position + size])
        position += size
        i += 1
    return chunks


def ramp(total: int) -> np.ndarray:
    """Samples whose value is their own position (mod 2^16): any misplaced sample shows."""
    return (np.arange(total) % 65536 - 32768).astype(np.int16)


def test_plan_from_defaults_is_sample_exact() -> None:
    assert (W, HOP, TAIL, PLAN.snap) == (160000, 128000, 16000, 0)
    odd = make_plan(7.3, 1.15, 0.5)
    assert (odd.window, odd.hop, odd.min_tail) == (116800, 98400, 8000)


@pytest.mark.parametrize("total, expected", [
    (TAIL - 1, []),
    (TAIL, [(0, TAIL)]),
    (W - 1, [(0, W - 1)]),
    (W, [(0, W)]),
    (W + 1, [(0, W)]),
    (W + TAIL - 1, [(0, W)]),
    (W + TAIL, [(0, W), (HOP, W + TAIL)]),
    (HOP + W - 1, [(0, W), (HOP, HOP + W - 1)]),
    (HOP + W, [(0, W), (HOP, HOP + W)]),
    (HOP + W + TAIL - 1, [(0, W), (HOP, HOP + W)]),
    (HOP + W + TAIL, [(0, W), (HOP, HOP + W), (2 * HOP, HOP + W + TAIL)]),
    (2 * HOP + W, [(0, W), (HOP, HOP + W), (2 * HOP, 2 * HOP + W)]),
])
def test_tail_rule_around_boundaries(total: int, expected: list[tuple[int, int]]) -> None:
    assert plan_windows(total, PLAN) == expected


@pytest.mark.parametrize("total", [1, TAIL - 1, TAIL, W, W + 7, 5 * HOP + W + 3, 3600 * RATE + 351])
def test_tail_rule_invariants(total: int) -> None:
    windows = plan_windows(total, PLAN)
    for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
        assert s2 - s1 == HOP
        assert not (s1 <= s2 and e2 <= e1) and not (s2 <= s1 and e1 <= e2)  # none inside another
    for start, end in windows[:-1]:
        assert end - start == W
    if windows:
        last_start, last_end = windows[-1]
        assert last_end - last_start <= W
        new_audio = last_end - (windows[-2][1] if len(windows) > 1 else 0)
        assert new_audio >= TAIL
        assert total - last_end < TAIL  # only less than min-tail of audio is ever left out
    else:
        assert total < TAIL


@pytest.mark.parametrize("plan", [PLAN, make_plan(7.5, 2.25, 0.3), make_plan(3, 0, 1)])
@pytest.mark.parametrize("total", [0, 5, TAIL, W + TAIL, 6 * HOP + W + TAIL + 17, 9 * RATE + 1])
def test_stream_cuts_match_plan_for_any_chunking(plan: WindowPlan, total: int) -> None:
    signal = ramp(total)
    expected = plan_windows(total, plan)
    for sizes in ([total or 1], [1000], [4096, 13, 77777], [plan.window + plan.hop]):
        cuts = [(c.index, c.start, c.end, c.samples.copy()) for c in cut_stream(chunked(signal, sizes), plan, max(sizes))]
        assert [(s, e) for _, s, e, _ in cuts] == expected
        assert [i for i, *_ in cuts] == list(range(len(expected)))
        for _, start, end, samples in cuts:
            assert np.array_equal(samples, signal[start:end])


def test_ring_holds_about_one_window() -> None:
    """Memory bound: the ring never grows past window + chunk samples, whatever the length."""
    chunk = 4096
    signal = ramp(3 * 60 * RATE)
    gen = cut_stream(chunked(signal, [chunk]), PLAN, chunk)
    for cut in gen:
        ring_array = cut.samples.base
        assert ring_array is not None and ring_array.size <= ring_capacity(PLAN, chunk)
    assert ring_capacity(PLAN, chunk) <= W + HOP


@pytest.mark.parametrize("window, overlap, min_tail, snap, message", [
    (10, 10, 1, None, "--overlap 10 must be smaller than --window 10"),
    (10, 12, 1, None, "must be smaller than --window"),
    (0, 0, 1, None, "--window 0 must be greater than 0"),
    (-5, 0, 1, None, "--window -5 must be greater than 0"),
    (10, -1, 1, None, "--overlap -1 must not be negative"),
    (10, 2, 0, None, "--min-tail 0 must be greater than 0"),
    (10, 2, 1, 0, "--snap 0 must be greater than 0"),
    (10, 2, 1, 4, "--snap 4 must be less than half"),
])
def test_bad_options_are_one_clear_line(window: float, overlap: float, min_tail: float, snap: float | None,
                                        message: str) -> None:
    with pytest.raises(UserError, match=message.replace("+", r"\+")) as caught:
        make_plan(window, overlap, min_tail, snap)
    assert "\n" not in str(caught.value)


def quiet_gaps_signal(total: int, gaps: list[int], gap_len: int = 800) -> np.ndarray:
    """Loud noise with short digital-silence gaps centred at ``gaps``."""
    rng = np.random.default_rng(7)
    signal = (rng.standard_normal(total) * 8000).clip(-32000, 32000).astype(np.int16)
    for centre in gaps:
        signal[centre - gap_len // 2:centre + gap_len // 2] = 0
    return signal


def test_snap_moves_cuts_into_nearby_silence() -> None:
    plan = make_plan(10, 2, 1, 0.5)
    total = 3 * HOP + W + 2 * RATE
    nominal = plan_windows(total, PLAN)
    # A silent gap 0.3 s after every inner cut (starts and ends), 0.4 s before the tail start.
    gaps = sorted({s + int(0.3 * RATE) for s, _ in nominal[1:-1]} | {e + int(0.3 * RATE) for _, e in nominal[:-1]}
                  | {nominal[-1][0] - int(0.4 * RATE)})
    signal = quiet_gaps_signal(total, gaps)
    reference = None
    for sizes in ([5000], [123457, 99]):
        cuts = [(c.start, c.end) for c in cut_stream(chunked(signal, sizes), plan, max(sizes))]
        reference = reference or cuts
        assert cuts == reference, "snapped cuts must not depend on how the stream is chunked"
    assert reference[0][0] == 0 and reference[-1][1] == total
    for (start, end), (nominal_start, nominal_end) in zip(reference, nominal):
        assert abs(start - nominal_start) <= plan.snap and abs(end - nominal_end) <= plan.snap
        for cut in (start, end):
            if 0 < cut < total:
                assert not signal[cut - 80:cut + 80].any(), f"cut at {cut} is not in a silent gap"
    for (s1, e1), (s2, _) in zip(reference, reference[1:]):
        assert e1 - s2 >= PLAN.overlap - 2 * plan.snap
        assert s2 > s1


def test_snap_keeps_cuts_in_silence_or_flat_audio() -> None:
    """Ties (digital silence) go to the nominal position: snapping never moves a cut for nothing."""
    silence = np.zeros(40000, dtype=np.int16)
    assert quietest_cut(silence, 0, 20000, 8000, None) == 20000
    assert quietest_cut(silence, 0, 39000, 8000, 40000) == 39000


def test_stream_vad_and_rms() -> None:
    assert rms_db(np.zeros(1000, dtype=np.int16)) == -120.0
    full = np.full(1000, 32767, dtype=np.int16)
    assert rms_db(full) == pytest.approx(0.0, abs=0.01)
    half = (np.sin(np.arange(16000) / 5) * 16384).astype(np.int16)
    assert rms_db(half) == pytest.approx(-9.03, abs=0.05)
    vad = StreamVad(2)
    vad.feed(np.zeros(16000, dtype=np.int16))
    assert vad.speech_ratio(0, 16000) == 0.0
    with pytest.raises(ValueError):
        vad.speech_ratio(0, 20000)
