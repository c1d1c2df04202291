"""Library messages a user cannot act on, dropped where each one comes from.

Users read every warning as a bug. Each message below is matched on the
logger (or warning module) that emits it *and* its text, so the same library's
other warnings, and every warning of our own, still reach the console:

* transformers' Whisper ``generate()`` passes ``suppress_tokens`` and
  ``begin_suppress_tokens`` to the generic ``generate()`` together with a
  ``generation_config`` and then warns about its own call;
* bitsandbytes tries, on CPUs with AVX-512 BF16, to fetch 4-bit CPU kernels from
  the ``kernels`` package and logs a warning when it is absent; we use only
  its 8-bit AdamW on CUDA;
* peft reads transformers' deprecated ``is_gradient_checkpointing`` property.

Our own code calls the current transformers names, so it raises none of these.
"""

from __future__ import annotations

import logging
import warnings

# (logger name, text the message starts with)
DROPPED_LOG_MESSAGES = (
    ("transformers.generation.utils", "Passing `generation_config` together with generation-related arguments"),
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
)
# (warning category, module that warns, regular expression of the text's start)
DROPPED_WARNINGS = (
    (FutureWarning, r"transformers\.modeling_utils", r"`is_gradient_checkpointing` is deprecated"),
)


class _DropMessage(logging.Filter):
    """Drops one logger's records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def quiet_libraries() -> None:
    """Install the filters (idempotent); the libraries need not be imported yet."""
    for name, prefix in DROPPED_LOG_MESSAGES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropMessage(prefix))
    for category, module, message in DROPPED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
