"""whcore.device: what each card gets, decided from faked device properties (no GPU needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from whcore.device import (GIB, KNOWN_GPUS, attention_kernel, bf16_native, ct2_compute_type,
                           ct2_cuda_compute_types, detect_gpu, gpu_by_name, parse_compute_capability,
                           training_precision, uses_grad_scaler)
from whcore.errors import UserError


@pytest.mark.parametrize("cc, precision, scaler, kernel", [
    ((6, 1), "fp16", True, "memory-efficient"),  # Pascal: GTX 10xx
    ((7, 0), "fp16", True, "memory-efficient"),  # Volta: V100
    ((7, 5), "fp16", True, "memory-efficient"),  # Turing: RTX 20xx, GTX 16xx, T4 (torch says bf16 "supported": emulated)
    ((8, 0), "bf16", False, "flash"),  # Ampere A100
    ((8, 6), "bf16", False, "flash"),  # RTX 30xx
    ((9, 0), "bf16", False, "flash"),  # Hopper
])
def test_precision_scaler_and_attention_follow_compute_capability(cc: tuple, precision: str, scaler: bool,
                                                                 kernel: str) -> None:
    assert training_precision(cc) == precision and bf16_native(cc) == (precision == "bf16")
    assert uses_grad_scaler(training_precision(cc)) is scaler
    assert attention_kernel(cc, precision) == kernel
    assert attention_kernel(cc, "fp32") == "memory-efficient"  # flash needs half precision


@pytest.mark.parametrize("cc, expected", [
    ((6, 0), "float32"),  # P100: no int8 (DP4A is 6.1), no fp16 tensor cores
    ((6, 1), "int8"),  # GTX 1080: int8 yes, float16 not efficient
    ((7, 5), "float16"),
    ((8, 6), "float16"),
])
def test_ct2_compute_type_is_the_first_supported_one(cc: tuple, expected: str) -> None:
    assert ct2_compute_type(ct2_cuda_compute_types(cc), "cuda") == expected
    assert "bfloat16" in ct2_cuda_compute_types((8, 0)) and "bfloat16" not in ct2_cuda_compute_types((7, 5))


def test_ct2_compute_type_on_this_cpu_is_what_ctranslate2_reports() -> None:
    import ctranslate2

    supported = set(ctranslate2.get_supported_compute_types("cpu"))
    assert ct2_compute_type(supported, "cpu") == "int8"  # label's CPU default, unchanged
    with pytest.raises(UserError, match="supports none of"):
        ct2_compute_type({"int16"}, "cuda")


def test_detect_gpu_reads_the_device_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert detect_gpu() is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(
        name="NVIDIA GeForce RTX 2060", major=7, minor=5, total_memory=6 * GIB))
    gpu = detect_gpu()
    assert gpu.compute_capability == (7, 5) and gpu.vram_gib == 6.0
    assert training_precision(gpu.compute_capability) == "fp16"


def test_known_cards_and_compute_capability_parsing() -> None:
    assert gpu_by_name("RTX 2060") == KNOWN_GPUS["rtx-2060"] and gpu_by_name("NVIDIA T4").vram_gib == 16
    with pytest.raises(UserError, match="unknown card.*rtx-3060"):
        gpu_by_name("voodoo-2")
    assert parse_compute_capability("7.5") == (7, 5) and parse_compute_capability("8") == (8, 0)
    with pytest.raises(UserError, match="MAJOR.MINOR"):
        parse_compute_capability("turing")


def test_plan_cli_prints_what_a_turing_laptop_card_gets(capsys: pytest.CaptureFixture[str]) -> None:
    from finetune.cli import main

    assert main(["plan", "--model", "tiny", "--compute-capability", "7.5", "--vram", "6",
                 "--label-tokens", "64", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "fp16 autocast + GradScaler over fp32 master weights" in out
    assert "memory-efficient SDPA attention kernel" in out and "compute type float16" in out
    assert "chosen for 6 GiB" in out and ", fp16," in out
    from finetune.plan import build_parser, device_lines, target_gpu

    laptop = target_gpu(build_parser().parse_args(["--gpu", "rtx-3060-laptop"]))
    assert laptop == KNOWN_GPUS["rtx-3060-laptop"]
    lines = "\n".join(device_lines(laptop, training_precision(laptop.compute_capability)))
    assert "compute capability 8.6, 6 GiB" in lines and "bf16 autocast over fp32" in lines and "flash" in lines


def test_gpu_check_refuses_with_one_line_without_cuda(python: str) -> None:
    import subprocess

    from conftest import REPO

    result = subprocess.run([python, str(REPO / "bench" / "gpu_check.py")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU visible" in lines[0]
