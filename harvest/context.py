"""The shared state of one harvest run, handed to every per-entry function."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from whcore.journal import Journal
from whcore.workspace import Workspace

from harvest.catalog import Catalog
from harvest.decisions import DecisionStore
from harvest.license import LicenseGate
from harvest.license_watch import LicenseWatch
from harvest.options import HarvestOptions
from harvest.politeness import CircuitBreaker


@dataclass(frozen=True)
class HarvestContext:
    """Workspace, journal, catalog and decision stores of the run, its options and its stop switches."""

    workspace: Workspace
    options: HarvestOptions
    journal: Journal
    catalog: Catalog
    rejected: DecisionStore  # of Rejection
    unavailable: DecisionStore  # of Unavailable
    log: Any  # loguru logger bound to the harvest stage
    license_watch: LicenseWatch  # holds licence-less rejections until the run has seen a licence field
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    stop: threading.Event = field(default_factory=threading.Event)  # Ctrl-C or breaker: finish now

    @property
    def gate(self) -> LicenseGate:
        return LicenseGate(self.options.accepted_licenses)

    def stopping(self) -> bool:
        return self.stop.is_set() or self.breaker.tripped.is_set()
