"""Library warnings a user cannot act on are dropped where they come from; every other one still shows."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

from faultkit import REPO
from whcore.quiet import quiet_libraries


class _Collect(logging.Handler):
    """Keeps the records a logger hands to its handlers (after the logger's filters)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_only_the_listed_messages_are_dropped(caplog) -> None:  # noqa: ANN001 - pytest fixture
    quiet_libraries()
    quiet_libraries()  # idempotent
    from transformers.utils import logging as transformers_logging

    generation = transformers_logging.get_logger("transformers.generation.utils")  # prints through its own handler
    collect = _Collect()
    generation.addHandler(collect)  # what reaches handlers (transformers' stderr one too), whatever the capture
    try:
        generation.warning("Passing `generation_config` together with generation-related arguments=({'x'})")
        generation.warning("a warning we did not list")
    finally:
        generation.removeHandler(collect)
    assert [r.getMessage() for r in collect.records] == ["a warning we did not list"]
    bnb = logging.getLogger("bitsandbytes.backends.cpu.ops")
    caplog.clear()  # transformers' records reach caplog too when an earlier test turned on its propagation
    with caplog.at_level(logging.WARNING):
        bnb.warning("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'")
        bnb.warning("another bitsandbytes warning")
    assert [r.getMessage() for r in caplog.records] == ["another bitsandbytes warning"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        quiet_libraries()  # catch_warnings reset the filters
        for text in ("`is_gradient_checkpointing` is deprecated and will be removed in v6.", "`other` is deprecated"):
            warnings.warn_explicit(text, FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
    assert [str(w.message) for w in seen] == ["`other` is deprecated"]


def test_finetune_plan_prints_no_library_warning() -> None:
    result = subprocess.run([sys.executable, "-m", "finetune", "plan", "--model", "tiny", "--batch-size", "1",
                             "--checkpointing", "on", "--vram", "4"], capture_output=True, text=True, cwd=REPO,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "fits 4 GiB" in result.stdout
