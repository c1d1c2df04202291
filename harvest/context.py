"""The shared state of one harvest run, handed to every per-entry function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whcore.journal import Journal
from whcore.workspace import Workspace

from harvest.catalog import Catalog
from harvest.options import HarvestOptions
from harvest.rejected import RejectedStore


@dataclass(frozen=True)
class HarvestContext:
    """Workspace, journal, catalog and rejection store of the run, and its options."""

    workspace: Workspace
    options: HarvestOptions
    journal: Journal
    catalog: Catalog
    rejected: RejectedStore
    log: Any  # loguru logger bound to the harvest stage
