"""Chinese script conversion with OpenCC (``--script s2twp`` etc.).

Whisper writes Chinese mostly in Simplified characters whatever the speaker's
region; OpenCC converts with phrase-level rules (``s2twp`` also swaps
Mainland words for Taiwan ones), which character tables alone get wrong.
"""

from __future__ import annotations

from functools import lru_cache

import opencc

from whcore.errors import UserError

SCRIPTS = ("s2t", "s2tw", "s2twp", "s2hk", "t2s", "tw2s", "tw2sp", "hk2s", "t2tw", "t2hk", "jp2t", "t2jp")
NO_SCRIPT = "none"


@lru_cache(maxsize=None)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def validate_script(config: str) -> str:
    if config != NO_SCRIPT and config not in SCRIPTS:
        raise UserError(f"--script {config} is not an OpenCC conversion: use one of "
                        f"{', '.join((NO_SCRIPT,) + SCRIPTS)}")
    return config


def convert_script(text: str, config: str) -> str:
    """``text`` converted by the OpenCC ``config`` (unchanged for ``none``)."""
    if config == NO_SCRIPT or not text:
        return text
    return _converter(config).convert(text)
