"""Whisper's encoder in PyTorch bfloat16, for CPUs whose matrix units compute in bfloat16.

On CPU the encoder is where labelling spends half its time, and most of that is
self-attention over 1500 positions, which CTranslate2 computes in float32 even in
its int8 mode. PyTorch runs the same layers in bfloat16 through oneDNN, which
uses the AMX tiles of recent Intel Xeons: on the 2-core build machine one 30 s
input took 0.35 CPU-s instead of CTranslate2 int8's 1.03 CPU-s. Its output is
also closer to the float32 encoder's (1.4 % relative error against int8's
5.6 %), because the residual stream and layer norms stay in float32 and only the
matrix products round to bfloat16.

The decoder stays in CTranslate2 (``generate`` and ``align`` take an encoder
output as well as features). The weights are read from the CTranslate2 folder
itself, so no second copy of the model is needed. Without bfloat16 matrix units
PyTorch emulates bfloat16 and is slower than CTranslate2, so ``auto`` uses this
encoder only where the CPU reports AMX-BF16.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from whcore.ct2_convert import read_ct2_variables

if TYPE_CHECKING:
    import torch

CPUINFO = Path("/proc/cpuinfo")
LAYER_NORM_EPSILON = 1e-5  # Whisper's nn.LayerNorm default
ENCODERS = ("auto", "ctranslate2", "torch-bf16")
# One input per forward: at 1 the forward adds 15 MiB to the process's peak and costs 0.34
# CPU-s per 30 s input; at 4 it adds 157 MiB for 0.39 CPU-s each (whisper-base, 2 threads,
# AMX): the matrix products are already large enough at one input to keep the tiles busy.
INPUTS_PER_FORWARD = 1


def cpu_has_bf16_matrix_units(cpuinfo: Path | None = None) -> bool:
    """Whether the CPU has AMX-BF16 tiles (Linux: a flag in /proc/cpuinfo)."""
    try:
        with open(cpuinfo or CPUINFO, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        return False
    return False


def resolve_encoder(choice: str, device: str) -> str:
    """``auto`` → ``torch-bf16`` on a CPU with AMX-BF16, else ``ctranslate2``."""
    if choice != "auto":
        return choice
    return "torch-bf16" if device == "cpu" and cpu_has_bf16_matrix_units() else "ctranslate2"


class TorchEncoder:
    """Whisper's audio encoder (two convolutions, sinusoidal positions, pre-norm
    transformer layers) with weights from a CTranslate2 ``model.bin``; matrix
    products in bfloat16, residuals and layer norms in float32."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        variables = read_ct2_variables(model_dir / "model.bin", prefix="encoder/")
        self.heads = int(variables.pop("encoder/num_heads"))
        self.layers = sum(1 for name in variables if name.endswith("self_attention/linear_0/weight"))
        self.weights: dict[str, torch.Tensor] = {}
        while variables:  # converted one at a time, so the float32 copies are not all held at once
            name, array = variables.popitem()
            if array.dtype.kind == "f":
                self.weights[name] = self._tensor(name, array)

    @staticmethod
    def _tensor(name: str, array: np.ndarray) -> "torch.Tensor":
        """Weights and biases of the matrix products in bfloat16; layer norms (``gamma``,
        ``beta``) and positions in float32."""
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return tensor.to(torch.bfloat16) if name.endswith(("/weight", "/bias")) else tensor

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Encoder output ``[batch, frames / 2, d_model]`` (float32) of log-mel features
        ``[batch, n_mels, frames]``."""
        import torch

        with torch.inference_mode():
            return np.concatenate([self._forward(torch.from_numpy(features[i:i + INPUTS_PER_FORWARD])).numpy()
                                   for i in range(0, len(features), INPUTS_PER_FORWARD)])

    def _forward(self, mel: "torch.Tensor") -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        w = self.weights
        x = F.gelu(F.conv1d(mel.to(torch.bfloat16), w["encoder/conv1/weight"], w["encoder/conv1/bias"], padding=1))
        x = F.gelu(F.conv1d(x, w["encoder/conv2/weight"], w["encoder/conv2/bias"], stride=2, padding=1))
        x = x.transpose(1, 2).float() + w["encoder/position_encodings/encodings"][: x.shape[2]]
        batch, frames, width = x.shape
        for i in range(self.layers):
            prefix = f"encoder/layer_{i}"
            h = self._norm(x, f"{prefix}/self_attention/layer_norm")
            qkv = self._linear(h, f"{prefix}/self_attention/linear_0")
            q, k, v = qkv.view(batch, frames, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
            attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, frames, width)
            x = x + self._linear(attended, f"{prefix}/self_attention/linear_1").float()
            h = self._norm(x, f"{prefix}/ffn/layer_norm")
            x = x + self._linear(F.gelu(self._linear(h, f"{prefix}/ffn/linear_0")), f"{prefix}/ffn/linear_1").float()
        return self._norm(x, "encoder/layer_norm")

    def _norm(self, x: "torch.Tensor", name: str) -> "torch.Tensor":
        import torch.nn.functional as F

        return F.layer_norm(x.float(), (x.shape[-1],), self.weights[f"{name}/gamma"], self.weights[f"{name}/beta"],
                            LAYER_NORM_EPSILON)

    def _linear(self, x: "torch.Tensor", name: str) -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        return F.linear(x.to(torch.bfloat16), self.weights[f"{name}/weight"], self.weights[f"{name}/bias"])
