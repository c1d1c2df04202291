"""A window's speech-to-noise ratio, estimated blind from its waveform (WADA-SNR).

DNSMOS P.835 would rate a window's quality, but on this CPU its ONNX model
takes 0.3-0.6 s per 10 s window (the ``speechmos`` wheel's wrapper 5.6 s):
as much as labelling the window. WADA-SNR (Kim & Stern, "Robust
signal-to-noise ratio estimation based on waveform amplitude distribution
analysis", Interspeech 2008) costs about a millisecond: clean speech's
amplitudes follow a Gamma distribution of shape 0.4, Gaussian noise's do not,
and the statistic ``G = log(mean |x|) - mean(log |x|)`` of their sum moves
monotonically from the noise's value to the speech's as the SNR rises. The
table mapping G to dB is the estimator's definition; it is computed here from
the model itself (Gamma(0.4) speech plus Gaussian noise at each SNR, a fixed
seed), as the paper derives it, not copied.

Additive noise, hum and a music bed lower it; the window's level does not
(the statistic is scale-free). Silence between words counts as low-level
speech, as in the original estimator.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SPEECH_GAMMA_SHAPE = 0.4  # the amplitude distribution of clean speech in the WADA model
TABLE_DB = np.arange(-20.0, 101.0, 1.0)  # SNRs the table spans; estimates are clipped to it
TABLE_SAMPLES = 1 << 16  # Monte Carlo samples per table entry (G to within ~4e-3; 0.2 s once per process)
TABLE_SEED = 20080922  # Interspeech 2008, for a table that never changes between runs
EPSILON = 1e-10


def g_statistic(audio: np.ndarray) -> float:
    """log(mean |x|) - mean(log |x|) of ``audio`` scaled to a peak of 1 (scale-free)."""
    magnitude = np.abs(np.asarray(audio, dtype=np.float64))
    peak = float(magnitude.max()) if len(magnitude) else 0.0
    if peak <= 0:
        return float("nan")
    magnitude = np.maximum(magnitude / peak, EPSILON)
    return float(np.log(max(EPSILON, magnitude.mean())) - np.log(magnitude).mean())


@lru_cache(maxsize=1)
def g_table() -> np.ndarray:
    """G of Gamma(0.4) speech plus unit Gaussian noise at each of ``TABLE_DB`` (increasing)."""
    rng = np.random.default_rng(TABLE_SEED)
    speech = rng.gamma(SPEECH_GAMMA_SHAPE, size=TABLE_SAMPLES) * rng.choice((-1.0, 1.0), size=TABLE_SAMPLES)
    speech /= np.sqrt(np.mean(speech ** 2))
    noise = rng.standard_normal(TABLE_SAMPLES)
    noise /= np.sqrt(np.mean(noise ** 2))
    table = np.array([g_statistic(speech * 10 ** (db / 20) + noise) for db in TABLE_DB])
    return np.maximum.accumulate(table)  # monotone, as the model is (sampling noise aside)


def wada_snr(audio: np.ndarray) -> float | None:
    """Estimated speech-to-noise ratio of ``audio`` in dB, clipped to -20..100; None for silence."""
    g = g_statistic(audio)
    if np.isnan(g):
        return None
    return float(np.interp(g, g_table(), TABLE_DB))
