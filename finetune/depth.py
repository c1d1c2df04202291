"""A deep model's simulated step, from the same step simulated at depth 1 and 2.

Simulating a training step on fake tensors costs time in proportion to the
operators it runs, so whisper-small (12 + 12 layers) takes several seconds per
configuration on a laptop CPU and whisper-large-v3 (32 + 32) four times that;
``finetune plan`` simulates up to a dozen configurations. Every quantity the
simulation reports is a sum over tensors, and the encoder's (decoder's)
layers are identical: each one adds the same weights, gradients, optimizer
state and saved activations. So each quantity, and the peak of each region of
the step (``finetune.memory._regions``: encoder, decoder, head and loss in the
forward, decoder and encoder in the backward, the optimizer), is a linear
function of the two depths,

    q(e, d) = q(1, 1) + (e - 1) * [q(2, 1) - q(1, 1)] + (d - 1) * [q(1, 2) - q(1, 1)]

and three shallow simulations give the deep one: 3-7x less work for small to
large-v3. Models whose encoder and decoder are equally deep (all but turbo)
need two: q(L) = q(1) + (L - 1) * [q(2) - q(1)]. The step's peak is the largest
region peak: which region holds it changes with depth (backward for one or two
layers of whisper-small, forward from three on), so it is not itself linear.

``tests/test_finetune_memory.py`` checks the extrapolation against full
simulations of whisper-tiny cut to equal and to turbo-like depths, across
precisions, optimizers, checkpointing, LoRA and batches (within 4 KiB; seen
0-2 KiB); ``bench/plan.py`` checks whole plans of small to large-v3.
"""

from __future__ import annotations

from dataclasses import replace

from finetune.memory import MemoryEstimate, StepSpec, simulate

SHALLOWEST = 1  # fewest layers a simulated encoder or decoder may have


def at_depth(spec: StepSpec, encoder_layers: int, decoder_layers: int) -> StepSpec:
    """``spec`` with its model cut to the given numbers of layers."""
    return replace(spec, dims=replace(spec.dims, encoder_layers=encoder_layers, decoder_layers=decoder_layers))


def _line(values: list[int], encoder_steps: int, decoder_steps: int) -> int:
    """q(1, 1) + e_steps * dq/de + d_steps * dq/dd from [q(1,1), q(2,1), q(1,2)] (or [q(1), q(2)])."""
    if len(values) == 2:  # equal depths: encoder_steps == decoder_steps
        return values[0] + encoder_steps * (values[1] - values[0])
    return values[0] + encoder_steps * (values[1] - values[0]) + decoder_steps * (values[2] - values[0])


def simulate_deep(spec: StepSpec) -> MemoryEstimate:
    """``simulate(spec)``, computed from simulations of the same step at depth 1 and 2."""
    encoder, decoder = spec.dims.encoder_layers, spec.dims.decoder_layers
    if max(encoder, decoder) <= SHALLOWEST + 1:  # no cheaper than simulating it
        return simulate(spec)
    if encoder == decoder:
        depths = [(1, 1), (2, 2)]
    else:
        depths = [(1, 1), (2, 1), (1, 2)]
    shallow = [simulate(at_depth(spec, e, d)) for e, d in depths]
    steps = (encoder - SHALLOWEST, decoder - SHALLOWEST)

    def deep(values: list[int]) -> int:
        return _line(values, *steps)

    phase_peaks = {phase: deep([s.phase_peaks[phase] for s in shallow]) for phase in shallow[0].phase_peaks
                   if all(phase in s.phase_peaks for s in shallow)}
    return MemoryEstimate(
        spec,
        # the peak moves between phases with depth (backward at 1-2 layers of small, forward
        # from 3): each phase's peak is linear, the step's is their maximum
        peak_allocated=max(phase_peaks.values(), default=deep([s.peak_allocated for s in shallow])),
        weights=deep([s.weights for s in shallow]),
        gradients=deep([s.gradients for s in shallow]),
        optimizer_state=deep([s.optimizer_state for s in shallow]),
        trainable_params=deep([s.trainable_params for s in shallow]),
        total_params=deep([s.total_params for s in shallow]),
        phase_peaks=phase_peaks)
