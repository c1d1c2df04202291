"""Can CTranslate2 run on this GPU? One encoder batch, tried before the first source.

CTranslate2's CUDA build loads cuBLAS 12 and cuDNN 9 only when it first
needs them. A machine whose driver shows a GPU but lacks those libraries
passes ``ctranslate2.get_cuda_device_count()`` and fails at the first encode,
and a missing cuDNN can abort the process outright rather than raise. So the
smoke test encodes one batch in a child process, and a failure becomes one
line naming what is missing and how to install it. With ``--device auto``
the run then labels on the CPU with a warning; with ``--device cuda`` it
stops with that line.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

SMOKE_TIMEOUT_S = 300  # model load + one encode; a large model on a slow disk takes a while
CUDA_LIBS_INSTALL = ("pip install nvidia-cublas-cu12 'nvidia-cudnn-cu12==9.*' and put their lib folders on "
                     "LD_LIBRARY_PATH (README: On a GPU)")
LIBRARY_NAMES = {"cublas": "cuBLAS 12", "cudnn": "cuDNN 9", "cudart": "the CUDA 12 runtime",
                 "libcuda.so": "the NVIDIA driver"}


def smoke_test(model_dir: Path, device: str, device_index: int, compute_type: str) -> str | None:
    """None when one batch encodes on ``device``; else one line saying what failed and the fix."""
    command = [sys.executable, "-m", "label.cuda_check", str(model_dir), device, str(device_index), compute_type]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"CTranslate2 did not encode one batch on {device} within {SMOKE_TIMEOUT_S} s"
    if result.returncode == 0:
        return None
    return describe_failure(result.stderr or result.stdout, device, result.returncode)


def describe_failure(output: str, device: str, returncode: int) -> str:
    """One line from the child's output: the missing library and how to install it, if named."""
    text = output.lower()
    missing = [name for key, name in LIBRARY_NAMES.items() if key in text]
    if missing:
        return (f"CTranslate2 cannot run on {device}: {' and '.join(missing)} missing or not loadable; "
                f"{CUDA_LIBS_INSTALL}")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1][:200] if lines else f"exit status {returncode}"
    return f"CTranslate2 cannot run on {device} ({last}); if CUDA libraries are missing: {CUDA_LIBS_INSTALL}"


def checked_options(options: Any, asked_device: str, cpu_engine: Any, log: Any) -> Any:
    """``options`` after the smoke test of its CUDA engine: unchanged when it passes; on failure
    a UserError for ``--device cuda``, or a warning and ``cpu_engine`` for ``--device auto``."""
    from whcore.errors import UserError

    engine = options.engine
    if engine.device != "cuda" or options.backend != "ct2":
        return options
    problem = smoke_test(engine.model_dir, "cuda", engine.device_index, engine.compute_type)
    if problem is None:
        log.info(f"GPU check passed: one batch encoded on cuda:{engine.device_index} ({engine.compute_type})")
        return options
    if asked_device == "cuda":
        raise UserError(problem)
    log.warning(f"{problem}; labelling on the CPU instead (--device cpu to skip this check)")
    return dataclasses.replace(options, engine=cpu_engine)


def main(argv: list[str]) -> int:
    """The child: load the model on the device and encode one batch of silence."""
    import ctranslate2
    import numpy as np

    model_dir, device, index, compute_type = argv
    model = ctranslate2.models.Whisper(model_dir, device=device, device_index=int(index),
                                       compute_type=compute_type)
    features = ctranslate2.StorageView.from_array(np.zeros((1, model.n_mels, 3000), dtype=np.float32))
    model.encode(features, to_cpu=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
