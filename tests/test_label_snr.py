"""The speech-to-noise estimate (label/snr.py, WADA-SNR) and the ``low_snr`` filter it feeds."""

from __future__ import annotations

import numpy as np
import pytest

from label.filters import FilterThresholds, apply_filters
from label.snr import TABLE_DB, g_table, wada_snr
from whcore.records import LabelRecord

TOLERANCE_DB = 5.0  # the estimator's spread on real clips at 0-10 dB (bench/label_snr.py): +-3 dB


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Ten seconds of espeak-ng speech, pauses included."""
    from label_workspace import espeak, fit

    return fit(espeak("Rivers carry water from the mountains down to the sea, and they shape the valleys "
                      "on the way, while the towns along their banks grow into cities."), 10.0)


def with_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``audio`` plus white noise at ``snr_db`` below its RMS over the frames that hold sound."""
    active = audio[np.abs(audio) > 1e-3]
    rms = float(np.sqrt(np.mean(active ** 2)))
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * rms / 10 ** (snr_db / 20)
    return (audio + noise).astype(np.float32)


def test_the_table_rises_from_noise_to_speech():
    table = g_table()
    assert len(table) == len(TABLE_DB) and np.all(np.diff(table) >= 0)
    gaussian_g = np.log(np.sqrt(2 / np.pi)) + (np.euler_gamma + np.log(2)) / 2  # G of pure Gaussian noise
    assert abs(table[0] - gaussian_g) < 0.02


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_the_estimate_follows_the_true_ratio(speech, snr_db):
    assert abs(wada_snr(with_noise(speech, snr_db)) - snr_db) <= TOLERANCE_DB


def test_the_estimate_orders_windows_and_ignores_their_level(speech):
    estimates = [wada_snr(with_noise(speech, snr)) for snr in (-5.0, 5.0, 15.0, 25.0)]
    assert estimates == sorted(estimates)
    noisy = with_noise(speech, 5.0)
    assert wada_snr(noisy * 0.05) == pytest.approx(wada_snr(noisy), abs=0.01)
    assert wada_snr(speech) > 30.0  # clean synthetic speech
    assert wada_snr(np.zeros(16000, dtype=np.float32)) is None
    assert wada_snr(np.random.default_rng(3).standard_normal(160000)) < -10.0  # noise alone


def test_low_snr_rejects_buried_speech_and_spares_unmeasured_windows():
    def flags(snr_db: float | None, threshold: float) -> list[str]:
        record = LabelRecord(source_id="s", index=0, start=0.0, end=10.0, path="w.wav",
                             text="Rivers carry water from the mountains down to the sea.", language="en",
                             language_prob=0.9, avg_logprob=-0.2, no_speech_prob=0.05, compression_ratio=1.2,
                             chars_per_second=14.0, speech_ratio=0.8, mean_word_prob=0.9, min_word_prob=0.6,
                             word_count=11, snr_db=snr_db)
        return apply_filters([record], FilterThresholds(min_snr_db=threshold), "en")[0].flags

    assert flags(2.0, 5.0) == ["low_snr"]
    assert flags(5.0, 5.0) == [] and flags(40.0, 5.0) == []
    assert flags(None, 5.0) == []  # not measured (an old record) or digital silence
    assert flags(-20.0, FilterThresholds().min_snr_db) == []  # off by default (bench/label_snr.py)
