"""Peak GPU memory of one training step, found by running that step on fake tensors.

A formula for activation memory is a guess that goes stale with every
transformers release; running the real ``WhisperForConditionalGeneration``
forward, loss, backward, gradient clipping and optimizer step is not. Under
``FakeTensorMode`` every tensor has a shape, dtype and storage size but no
data, so the whole step of even whisper-large-v3 runs in seconds on a CPU
with no weights. A ``TorchDispatchMode`` sees every storage the step creates
(rounded up to the CUDA caching allocator's 512-byte block) and every storage
Python frees, which gives the allocated peak that
``torch.cuda.max_memory_allocated`` would report.

Fake tensors live on the CPU device: on a CPU-only torch build a fake
``cuda`` tensor aborts the process at its first autograd node. What differs
between the devices is therefore emulated where it changes memory:

* CUDA autocast runs layer norms, softmax, log-softmax, sums and the losses
  in fp32 (CPU autocast leaves most of them in fp16/bf16), and does not cast
  ``cross_entropy`` as a whole (CPU does). While a simulation for CUDA runs,
  CUDA's rules are registered as the CPU autocast kernels of those operators
  and removed afterwards.
* ``torch.optim.AdamW`` defaults to ``foreach=True`` on CUDA, whose step
  allocates one parameter-sized temporary; the simulation asks for it.
* bitsandbytes' 8-bit AdamW (a CUDA-only library) is stood in for by an
  optimizer with the same state: two uint8 moments plus one fp32 scale per
  256-value block for tensors of >= 4096 values, fp32 moments for smaller
  ones, updated in place as bitsandbytes' fused kernel does.
* Scaled-dot-product attention with fp16/bf16 runs a flash-style kernel on
  both devices (no sequence x sequence matrix, one fp32 log-sum-exp row per
  query kept for backward); eager attention materialises the matrix.

The simulated step is a steady-state one: its forward pass runs beside the
optimizer state and, with accumulation, beside the first micro-batch's
gradients. The CUDA context and the caching allocator's fragmentation are
not tensors; they are reported separately as fixed overheads.
"""

from __future__ import annotations

import contextlib
import math
import warnings
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from finetune.options import OPTIMIZERS

GIB = 2**30
MIB = 2**20
CUDA_BLOCK_BYTES = 512  # the CUDA caching allocator rounds every block up to this
N_FRAMES = 3000  # log-mel frames of Whisper's fixed 30 s input (10 ms hop)
CUDA_CONTEXT_BYTES = int(0.5 * GIB)  # driver context + cuBLAS/cuDNN workspaces: 0.3-0.6 GiB seen
FRAGMENTATION = 0.10  # caching-allocator reserve above the allocated peak: 0-20 % seen
PRECISIONS = ("fp32", "fp16", "bf16")
ATTENTIONS = ("sdpa", "eager")
DEVICES = ("cuda", "cpu")
BNB_BLOCK = 256  # values per fp32 absmax scale in bitsandbytes' blockwise 8-bit state
BNB_MIN_8BIT_SIZE = 4096  # smaller tensors keep fp32 state in bitsandbytes
MAX_LABEL_TOKENS = 448  # Whisper's decoder positions


@dataclass(frozen=True)
class WhisperDims:
    """The shape of one Whisper release (published model configurations)."""

    d_model: int
    encoder_layers: int
    decoder_layers: int
    heads: int
    ffn: int
    vocab: int
    mels: int

    def config(self, attention: str = "sdpa") -> Any:
        """A ``WhisperConfig`` of these dimensions (no weights needed)."""
        from transformers import WhisperConfig

        config = WhisperConfig(
            d_model=self.d_model, encoder_layers=self.encoder_layers, decoder_layers=self.decoder_layers,
            encoder_attention_heads=self.heads, decoder_attention_heads=self.heads,
            encoder_ffn_dim=self.ffn, decoder_ffn_dim=self.ffn, vocab_size=self.vocab,
            num_mel_bins=self.mels, max_source_positions=N_FRAMES // 2,
            max_target_positions=MAX_LABEL_TOKENS)
        config._attn_implementation = attention
        return config


MODEL_DIMS: dict[str, WhisperDims] = {
    "tiny": WhisperDims(384, 4, 4, 6, 1536, 51865, 80),
    "base": WhisperDims(512, 6, 6, 8, 2048, 51865, 80),
    "small": WhisperDims(768, 12, 12, 12, 3072, 51865, 80),
    "medium": WhisperDims(1024, 24, 24, 16, 4096, 51865, 80),
    "large-v2": WhisperDims(1280, 32, 32, 20, 5120, 51865, 80),
    "large-v3": WhisperDims(1280, 32, 32, 20, 5120, 51866, 128),
    "turbo": WhisperDims(1280, 32, 4, 20, 5120, 51866, 128),  # large-v3-turbo: 4 decoder layers
}
MODEL_ALIASES = {"large": "large-v2", "large-v1": "large-v2", "large-v3-turbo": "turbo"}


@dataclass(frozen=True)
class StepSpec:
    """One training step to simulate: model size and every setting that moves its peak."""

    dims: WhisperDims
    batch: int  # inputs per forward/backward (per device)
    label_tokens: int = MAX_LABEL_TOKENS  # decoder length; 448 is the worst case
    precision: str = "fp16"  # autocast dtype over fp32 weights; "fp32" = no autocast
    # (under LoRA the frozen base is held in this dtype, the adapters in fp32)
    gradient_checkpointing: bool = False
    optimizer: str = "adamw"
    attention: str = "sdpa"
    lora: bool = False
    accumulation: int = 1  # micro-batches per optimizer step (beyond 2 the peak is the same)
    device: str = "cuda"  # whose autocast, optimizer and allocator rules to follow

    def __post_init__(self) -> None:
        for value, allowed in ((self.precision, PRECISIONS), (self.optimizer, OPTIMIZERS),
                               (self.attention, ATTENTIONS), (self.device, DEVICES)):
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        if not 1 <= self.label_tokens <= MAX_LABEL_TOKENS or self.batch < 1 or self.accumulation < 1:
            raise ValueError(f"batch, accumulation >= 1 and 1 <= label_tokens <= {MAX_LABEL_TOKENS}")

    @property
    def base_dtype(self) -> str:
        """fp32 master weights for a full fine-tune; a half-precision frozen base under LoRA."""
        return self.precision if self.lora else "fp32"

    def describe(self) -> str:
        return (f"batch {self.batch} x accumulation {self.accumulation}, {self.label_tokens}-token "
                f"labels, {self.precision}, checkpointing {'on' if self.gradient_checkpointing else 'off'}, "
                f"{self.optimizer}, {self.attention} attention{', LoRA' if self.lora else ''}")


@dataclass(frozen=True)
class MemoryEstimate:
    """The simulated step's memory, in bytes."""

    spec: StepSpec
    peak_allocated: int  # what torch.cuda.max_memory_allocated would report
    weights: int  # parameters and buffers (fp32 master copy; LoRA: half-precision base + fp32 adapters)
    gradients: int  # gradients of the trainable parameters
    optimizer_state: int  # after the first optimizer step
    trainable_params: int
    total_params: int
    # peak of each phase: "setup", "forward" and its regions ("forward:encoder", "forward:decoder",
    # "forward:head", "forward:outputs"), "backward" and its regions ("backward:decoder",
    # "backward:encoder"), "optimizer" (see memory._regions)
    phase_peaks: dict[str, int] = field(default_factory=dict)

    @property
    def activations(self) -> int:
        """Peak minus what is resident at any time: activations, autocast copies, temporaries."""
        return max(0, self.peak_allocated - self.weights - self.gradients - self.optimizer_state)

    @property
    def context(self) -> int:
        return CUDA_CONTEXT_BYTES if self.spec.device == "cuda" else 0

    @property
    def fragmentation(self) -> int:
        return int(self.peak_allocated * FRAGMENTATION) if self.spec.device == "cuda" else 0

    @property
    def total(self) -> int:
        """What the card must hold: allocated peak, allocator reserve and the CUDA context."""
        return self.peak_allocated + self.fragmentation + self.context

    def lines(self) -> list[str]:
        """A human-readable breakdown, one item a line."""
        rows = [(f"weights ({self.spec.base_dtype}{' base + fp32 adapters' if self.spec.lora else ''})",
                 self.weights), ("gradients", self.gradients),
                ("optimizer state", self.optimizer_state),
                ("activations + temporaries at peak", self.activations),
                ("= allocated peak (torch.cuda.max_memory_allocated)", self.peak_allocated)]
        if self.spec.device == "cuda":
            rows += [(f"+ allocator fragmentation ({FRAGMENTATION:.0%} of the peak, fixed)", self.fragmentation),
                     ("+ CUDA context and library workspaces (fixed)", self.context),
                     ("= GPU memory needed", self.total)]
        return [f"  {name:<55}{value / GIB:>8.2f} GiB" for name, value in rows]


class StorageCounter(TorchDispatchMode):
    """Counts the bytes of live tensor storages and their peak.

    Every operator output's storage is counted once, rounded up to
    ``block`` bytes, and uncounted when Python frees it (a weakref finaliser),
    which is exactly when a caching allocator gets the block back.
    """

    def __init__(self, block: int = CUDA_BLOCK_BYTES) -> None:
        super().__init__()
        self.block = block
        self.live: dict[int, int] = {}
        self.now = 0
        self.peak = 0
        self.phase = "setup"
        self.phase_peaks: dict[str, int] = {}

    def set_phase(self, name: str) -> None:
        self.phase = name

    def adopt(self, tensors: list[torch.Tensor]) -> None:
        """Count tensors made before the counter started (the model's weights)."""
        for tensor in tensors:
            self._count(tensor)

    def _count(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.live:
            return
        size = -(-storage.nbytes() // self.block) * self.block
        self.live[key] = size
        self.now += size
        self.peak = max(self.peak, self.now)
        self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0), self.now)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.now -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self._count(item)
        return out


# ---- CUDA's autocast rules, registered as CPU autocast kernels while a simulation runs ----

# Operators CUDA autocast runs in fp32 (inputs cast up). Only those a Whisper training
# step calls; the CPU rules of every other operator match CUDA's for Whisper.
CUDA_FP32_OPS = ("layer_norm", "native_layer_norm", "group_norm", "nll_loss", "nll_loss2d",
                 "pow.Tensor_Scalar", "pow.Tensor_Tensor", "exp", "log", "rsqrt", "logsumexp")
# Operators CUDA autocast gives an fp32 output dtype (no input copy) unless a dtype is passed.
CUDA_FP32_OUTPUT_OPS = ("softmax.int", "log_softmax.int", "sum", "sum.dim_IntList",
                        "cumsum", "prod", "prod.dim_int")


def _lower_to_fp32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16):
        return value.float()
    return value


def _overload(name: str) -> Any:
    packet, _, overload = name.partition(".")
    return getattr(getattr(torch.ops.aten, packet), overload or "default")


def _fp32_kernel(op: Any) -> Any:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", enabled=False):
            return op(*[_lower_to_fp32(a) for a in args], **{k: _lower_to_fp32(v) for k, v in kwargs.items()})
    return kernel


def _fp32_output_kernel(op: Any) -> Any:
    names = [a.name for a in op._schema.arguments]
    dtype_at = names.index("dtype")

    def kernel(*args: Any, **kwargs: Any) -> Any:
        given = args[dtype_at] if len(args) > dtype_at else kwargs.get("dtype")
        lower = args[0].dtype in (torch.float16, torch.bfloat16)
        if lower and given is None:
            args = args[:dtype_at]
            kwargs = {**kwargs, "dtype": torch.float32}
        with torch.autocast("cpu", enabled=False):
            return op(*args, **kwargs)
    return kernel


def _cross_entropy_kernel(self: torch.Tensor, target: torch.Tensor, weight: Any = None,
                          reduction: int = 1, ignore_index: int = -100, label_smoothing: float = 0.0) -> Any:
    """CUDA has no autocast rule for cross_entropy: its parts (log_softmax, nll_loss) get theirs."""
    if label_smoothing:
        raise NotImplementedError("label smoothing is not simulated")
    log_probs = torch.ops.aten.log_softmax.int(self, 1, self.dtype)
    return torch.ops.aten.nll_loss_nd(log_probs, target, weight, reduction, ignore_index)


@contextlib.contextmanager
def cuda_autocast_rules() -> Iterator[None]:
    """Make CPU autocast cast like CUDA autocast for the operators Whisper uses."""
    library = torch.library.Library("aten", "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
        for name in CUDA_FP32_OPS:
            library.impl(name, _fp32_kernel(_overload(name)), "AutocastCPU")
        for name in CUDA_FP32_OUTPUT_OPS:
            library.impl(name, _fp32_output_kernel(_overload(name)), "AutocastCPU")
        library.impl("cross_entropy_loss", _cross_entropy_kernel, "AutocastCPU")
    try:
        yield
    finally:
        library._destroy()


# ---- optimizers -------------------------------------------------------------------------------

class BlockwiseAdam8bitState(torch.optim.Optimizer):
    """Stand-in for bitsandbytes.optim.AdamW8bit with its memory layout (not its maths).

    bitsandbytes needs CUDA; what the planner needs is its state size and the
    fact that its fused kernel updates in place without temporaries.
    """

    def __init__(self, params: Any, lr: float = 1e-5) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # noqa: ARG002 - optimizer API
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    if param.numel() >= BNB_MIN_8BIT_SIZE:
                        blocks = math.ceil(param.numel() / BNB_BLOCK)
                        state["m"] = torch.zeros_like(param, dtype=torch.uint8)
                        state["v"] = torch.zeros_like(param, dtype=torch.uint8)
                        state["scales"] = torch.zeros(2, blocks, dtype=torch.float32, device=param.device)
                    else:
                        state["m"] = torch.zeros_like(param)
                        state["v"] = torch.zeros_like(param)
                param.add_(param.grad, alpha=-group["lr"])


def make_optimizer(spec: StepSpec, params: list, lr: float = 1e-5) -> torch.optim.Optimizer:
    """The optimizer the trainer would build, with the target device's defaults."""
    if spec.optimizer == "adamw_8bit":
        return BlockwiseAdam8bitState(params, lr=lr)
    if spec.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False)
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=spec.device == "cuda")


# ---- the step -------------------------------------------------------------------------------

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def enable_activation_checkpointing(model: Any) -> None:
    """Gradient checkpointing, non-reentrant, under the name this transformers calls it.

    transformers 5 renamed ``gradient_checkpointing_enable`` and warns on every call of
    the old name; older 5.x releases have only the old one.
    """
    settings = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=settings)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=settings)


def build_model(spec: StepSpec) -> Any:
    """The real Whisper model of ``spec.dims``, prepared as the trainer prepares it."""
    from transformers import WhisperForConditionalGeneration

    default = torch.get_default_dtype()
    torch.set_default_dtype(AUTOCAST_DTYPES.get(spec.base_dtype, torch.float32))
    try:
        model = WhisperForConditionalGeneration(spec.dims.config(spec.attention))
    finally:
        torch.set_default_dtype(default)
    if spec.gradient_checkpointing:
        model.config.use_cache = False
        enable_activation_checkpointing(model)
    if spec.lora:
        model = _apply_lora_on_fake(model)
    model.train()
    return model


def _apply_lora_on_fake(model: Any) -> Any:
    """``apply_lora`` on a fake-tensor model.

    peft moves each new adapter to its base layer's device and dtype with
    ``Module.to``; for fake parameters that is a tensor swap, which fake tensors
    refuse. The adapters are created on the base layer's device (CPU) in fp32
    already, so ``Module.to`` is a no-op while they are built.
    """
    from unittest import mock

    from finetune.lora import apply_lora

    with mock.patch.object(torch.nn.Module, "to", lambda self, *args, **kwargs: self):
        return apply_lora(model)


def micro_batch(spec: StepSpec) -> dict[str, torch.Tensor]:
    """Inputs shaped like the featurizer's: 30 s of log-mel and ``label_tokens`` labels."""
    return {"input_features": torch.randn(spec.batch, spec.dims.mels, N_FRAMES),
            "labels": torch.randint(0, spec.dims.vocab - 1000, (spec.batch, spec.label_tokens))}


def forward_backward(model: Any, spec: StepSpec, counter: StorageCounter | None) -> None:
    """One micro-batch as the trainer runs it under accelerate (autocast, fp32 outputs)."""
    from accelerate.utils import convert_to_fp32

    batch = micro_batch(spec)
    if counter:
        counter.set_phase("forward")
    dtype = AUTOCAST_DTYPES.get(spec.precision)
    with _regions(model, counter):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            outputs = model(**batch)
        if counter:
            counter.set_phase("forward:outputs")  # autocast's weight copies are freed here
    if dtype is not None:  # accelerate's prepared forward returns fp32 outputs
        outputs = convert_to_fp32(outputs)
    loss = outputs.loss / spec.accumulation
    del outputs, batch
    if counter:
        counter.set_phase("backward")
    loss.backward()


@contextlib.contextmanager
def _regions(model: Any, counter: StorageCounter | None) -> Iterator[None]:
    """Names the step's regions as phases of ``counter``: the encoder, the decoder and the
    head (projection and loss) in the forward, the decoder and the encoder in the backward.

    Within a region of identical layers memory peaks in its first or its last
    layer, so each region's peak is linear in the model's depth, while the
    step's peak is the largest of them, and which region holds it changes with
    depth. Keeping them apart is what lets ``finetune.depth`` extrapolate a deep
    model exactly. Module pre-hooks mark the forward's regions; hooks on the
    encoder's and decoder's output tensors fire when the backward reaches them.
    Neither allocates anything.
    """
    if counter is None:
        yield
        return
    from transformers.models.whisper.modeling_whisper import WhisperDecoder, WhisperEncoder

    regions = {WhisperEncoder: "encoder", WhisperDecoder: "decoder"}

    def enter(name: str) -> Any:
        return lambda *_: counter.set_phase(name)

    def mark_backward(name: str) -> Any:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state
            if hidden.requires_grad:
                hidden.register_hook(lambda _grad: counter.set_phase(f"backward:{name}"))
        return hook

    handles = [model.get_output_embeddings().register_forward_pre_hook(enter("forward:head"))]
    for module in model.modules():
        name = regions.get(type(module))
        if name:
            handles.append(module.register_forward_pre_hook(enter(f"forward:{name}")))
            handles.append(module.register_forward_hook(mark_backward(name)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def train_step(model: Any, spec: StepSpec, counter: StorageCounter | None = None) -> Any:
    """Run one steady-state optimizer step of ``model``; returns the optimizer.

    The optimizer state is created first by a step on zero gradients (what
    the first real step leaves behind), so the measured step runs its
    forward and backward beside that state, as every step after the first
    does. With accumulation, every micro-batch after the first runs beside
    the gradients accumulated so far, which is the peak; that is simulated
    by one micro-batch over the zero gradients left in place, not by running
    two (same peak, to the byte, on all 26 settings of whisper-tiny tried, at
    half the forward/backward cost: ``python -m finetune plan`` runs several).
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(spec, trainable)
    for param in trainable:
        param.grad = torch.zeros_like(param)
    optimizer.step()
    optimizer.zero_grad(set_to_none=spec.accumulation == 1)
    forward_backward(model, spec, counter)
    if counter:
        counter.set_phase("optimizer")
    torch.nn.utils.clip_grad_norm_(trainable, 1.0, foreach=spec.device == "cuda")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return optimizer


def _storage_bytes(tensors: Any, block: int) -> int:
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage._cdata] = -(-storage.nbytes() // block) * block
    return sum(seen.values())


def simulate(spec: StepSpec) -> MemoryEstimate:
    """The memory of ``spec``'s training step, by running it on fake tensors."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    block = CUDA_BLOCK_BYTES if spec.device == "cuda" else 1
    rules = cuda_autocast_rules() if spec.device == "cuda" else contextlib.nullcontext()
    with rules, FakeTensorMode(allow_non_fake_inputs=True):
        model = build_model(spec)  # outside the counter: its per-operator cost would double this
        params = list(model.parameters())
        resident = [*params, *model.buffers()]
        with StorageCounter(block) as counter:
            counter.adopt(resident)
            optimizer = train_step(model, spec, counter)
        trainable = [p for p in params if p.requires_grad]
        weights = _storage_bytes(resident, block)
        gradients = _storage_bytes(trainable, block)  # grads have the parameters' sizes
        state = _storage_bytes([v for s in optimizer.state.values() for v in s.values()
                                if isinstance(v, torch.Tensor) and v.dim() > 0], block)
        total = sum(p.numel() for p in params)
        n_trainable = sum(p.numel() for p in trainable)
    return MemoryEstimate(spec, counter.peak, weights, gradients, state, n_trainable, total,
                          dict(counter.phase_peaks))


def with_batch(spec: StepSpec, batch: int) -> StepSpec:
    return replace(spec, batch=batch)


def measure_cpu_peak(spec: StepSpec) -> int:
    """The allocated peak of ``spec``'s step run for real on the CPU (bytes).

    Read from the CPU allocator's own events (the profiler's memory records),
    not from ``StorageCounter``, so it checks the simulation independently.
    """
    from torch.profiler import ProfilerActivity, profile

    if spec.device != "cpu":
        raise ValueError("only a CPU step can be run for real here; pass a spec with device='cpu'")
    torch.manual_seed(0)
    model = build_model(spec)
    resident = _storage_bytes([*model.parameters(), *model.buffers()], 1)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        train_step(model, spec)
    events = sorted((e.start_ns(), e.nbytes()) for e in profiler.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    now = peak = 0
    for _, change in events:
        now += change
        peak = max(peak, now)
    return resident + peak


def dims_from_config(config: Any) -> WhisperDims:
    """The dimensions of a loaded model's ``WhisperConfig``."""
    return WhisperDims(config.d_model, config.encoder_layers, config.decoder_layers,
                       config.encoder_attention_heads, config.encoder_ffn_dim, config.vocab_size,
                       config.num_mel_bins)


ENGLISH_ONLY_VOCAB = 51864  # the ".en" models drop the language tokens but one


def dims_for_name(name: str) -> WhisperDims | None:
    """Dimensions of a release named ``tiny`` … ``large-v3``, ``turbo``, optionally as
    ``openai/whisper-<name>`` and with ``.en``; None for any other name."""
    short = name.strip().lower().removeprefix("openai/").removeprefix("whisper-")
    english_only = short.endswith(".en")
    short = MODEL_ALIASES.get(short.removesuffix(".en"), short.removesuffix(".en"))
    dims = MODEL_DIMS.get(short)
    if dims is None or not english_only:
        return dims
    return replace(dims, vocab=ENGLISH_ONLY_VOCAB)
