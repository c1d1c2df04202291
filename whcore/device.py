"""What a GPU can do, decided in one place from its compute capability and memory.

Training precision, loss scaling, the attention kernel and CTranslate2's
compute type all follow from two facts about a card: its CUDA compute
capability and its memory. Every function here takes those facts as plain
arguments, so the same rules answer for the GPU in this machine, for a card
named on the command line (``finetune plan --gpu rtx-2060``) and in tests
that fake a device; only ``detect_gpu`` reads a real one.

Why these thresholds:

* bfloat16 only from compute capability 8.0 (Ampere). Older cards (Pascal,
  Volta, Turing: GTX 10xx/16xx, RTX 20xx, T4, V100) have no bfloat16 units:
  ``torch.cuda.is_bf16_supported()`` still says yes there unless asked with
  ``including_emulation=False``, and the emulated path is slow and has no
  cuDNN bfloat16 convolutions for Whisper's encoder. Those cards train in
  float16 with a gradient scaler (float16's 5-bit exponent underflows small
  gradients; the scaler multiplies the loss and skips steps that overflow).
* PyTorch's flash attention kernel needs 8.0 and half precision; below that
  (or in float32) scaled-dot-product attention runs the memory-efficient
  kernel, which, like flash, never materialises the sequence x sequence
  matrix (the planner's memory model holds for both).
* CTranslate2 names what it can run on a device
  (``ctranslate2.get_supported_compute_types``): float16 needs a card with
  efficient float16 (7.0+ in practice), int8 needs 6.1+. The first supported
  type of a preference list is taken, so an old card gets int8 or float32
  instead of a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from whcore.errors import UserError

GIB = 2**30
BF16_NATIVE_CC = (8, 0)  # Ampere: bfloat16 tensor cores
FLASH_ATTENTION_CC = (8, 0)  # PyTorch's flash SDPA kernel: sm80 and newer, fp16/bf16 only
CT2_CUDA_PREFERENCE = ("float16", "int8_float16", "int8", "int8_float32", "float32")  # quality, then speed
CT2_CPU_PREFERENCE = ("int8", "int8_float32", "float32")  # int8 is the fastest measured on CPU


@dataclass(frozen=True)
class GpuFacts:
    """The facts the rules need about one GPU."""

    name: str
    compute_capability: tuple[int, int]  # (major, minor), e.g. (7, 5) for Turing
    vram_bytes: int  # total memory of the card

    @property
    def vram_gib(self) -> float:
        return self.vram_bytes / GIB

    def describe(self) -> str:
        major, minor = self.compute_capability
        return f"{self.name} (compute capability {major}.{minor}, {self.vram_gib:g} GiB)"


def _card(name: str, cc: tuple[int, int], gib: float) -> GpuFacts:
    return GpuFacts(name, cc, int(gib * GIB))


# Common cards, by the name a user would type. Memory is the card's nominal size.
KNOWN_GPUS: dict[str, GpuFacts] = {card.name: card for card in (
    _card("gtx-1060", (6, 1), 6), _card("gtx-1080", (6, 1), 8), _card("p100", (6, 0), 16),
    _card("gtx-1650", (7, 5), 4), _card("gtx-1660", (7, 5), 6), _card("rtx-2060", (7, 5), 6),
    _card("rtx-2070", (7, 5), 8), _card("rtx-2080-ti", (7, 5), 11), _card("t4", (7, 5), 16),
    _card("v100", (7, 0), 16), _card("rtx-3050-laptop", (8, 6), 4), _card("rtx-3060-laptop", (8, 6), 6),
    _card("rtx-3060", (8, 6), 12), _card("rtx-3070", (8, 6), 8), _card("rtx-3080", (8, 6), 10),
    _card("rtx-3090", (8, 6), 24), _card("rtx-4060-laptop", (8, 9), 8), _card("rtx-4060", (8, 9), 8),
    _card("rtx-4070", (8, 9), 12), _card("rtx-4090", (8, 9), 24), _card("l4", (8, 9), 24),
    _card("a10", (8, 6), 24), _card("a100-40gb", (8, 0), 40), _card("a100-80gb", (8, 0), 80),
    _card("h100", (9, 0), 80),
)}


def bf16_native(compute_capability: tuple[int, int]) -> bool:
    """True where bfloat16 runs on the card's own units (not emulated)."""
    return tuple(compute_capability) >= BF16_NATIVE_CC


def training_precision(compute_capability: tuple[int, int]) -> str:
    """Autocast precision for training on this card: ``bf16`` where native, else ``fp16``."""
    return "bf16" if bf16_native(compute_capability) else "fp16"


def uses_grad_scaler(precision: str) -> bool:
    """float16 needs loss scaling (its small exponent range); bfloat16 and float32 do not."""
    return precision == "fp16"


def attention_kernel(compute_capability: tuple[int, int] | None, precision: str) -> str:
    """The SDPA kernel PyTorch picks: ``flash``, ``memory-efficient`` or, on CPU, ``cpu-flash``."""
    if compute_capability is None:
        return "cpu-flash"
    if tuple(compute_capability) >= FLASH_ATTENTION_CC and precision in ("fp16", "bf16"):
        return "flash"
    return "memory-efficient"


def ct2_compute_type(supported: Iterable[str], device: str) -> str:
    """CTranslate2's compute type for ``device``: the first of the preference list it supports."""
    available = set(supported)
    preference = CT2_CUDA_PREFERENCE if device == "cuda" else CT2_CPU_PREFERENCE
    for kind in preference:
        if kind in available:
            return kind
    raise UserError(f"CTranslate2 supports none of {', '.join(preference)} on {device} "
                    f"(it offers {', '.join(sorted(available)) or 'nothing'})")


def ct2_cuda_compute_types(compute_capability: tuple[int, int]) -> set[str]:
    """What CTranslate2 4.x would report for a card of this capability (for planning without
    the card): float16 from 7.0 (fp16 tensor cores), int8 from 6.1, bfloat16 from 8.0."""
    cc = tuple(compute_capability)
    types = {"float32"}
    fp16, bf16, int8 = cc >= (7, 0), cc >= BF16_NATIVE_CC, cc[0] > 6 or cc == (6, 1)
    if fp16:
        types |= {"float16"}
    if bf16:
        types |= {"bfloat16"}
    if int8:
        types |= {"int8", "int8_float32"} | ({"int8_float16"} if fp16 else set()) \
            | ({"int8_bfloat16"} if bf16 else set())
    return types


def ct2_supported_compute_types(device: str, index: int = 0) -> set[str]:
    """What CTranslate2 says it can run on ``device``."""
    import ctranslate2

    try:
        return set(ctranslate2.get_supported_compute_types(device, index))
    except RuntimeError as error:  # no driver, no device, wrong CUDA: one line, not a traceback
        raise UserError(f"--device {device}: CTranslate2 cannot use it ({str(error).strip()[:200]}); "
                        "use --device cpu or auto") from None


def gpu_by_name(name: str) -> GpuFacts:
    """A known card by name (case and spaces ignored), or a UserError listing the names."""
    key = name.strip().lower().replace(" ", "-").removeprefix("nvidia-").removeprefix("geforce-")
    card = KNOWN_GPUS.get(key)
    if card is None:
        raise UserError(f"--gpu {name!r}: unknown card; known: {', '.join(KNOWN_GPUS)} "
                        "(or give --compute-capability and --vram)")
    return card


def parse_compute_capability(text: str) -> tuple[int, int]:
    """``"7.5"`` -> (7, 5)."""
    major, dot, minor = text.strip().partition(".")
    if not (major.isdigit() and (minor.isdigit() or not dot)):
        raise UserError(f"--compute-capability {text!r}: give MAJOR.MINOR, e.g. 7.5 (RTX 20xx, T4) or 8.6")
    return int(major), int(minor or 0)


def detect_gpu(index: int = 0) -> GpuFacts | None:
    """The facts of CUDA device ``index``, or None where PyTorch sees no CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(index)
    return GpuFacts(properties.name, (properties.major, properties.minor), int(properties.total_memory))
