"""``label --ray``: label on a Ray cluster, one model per actor, outputs as a single process writes them.

Why this split of the work: the model is what is expensive to load and what a GPU
holds, so each Ray actor loads it once and then decodes whatever it is sent. The
driver keeps everything that decides the output: it finds the unlabelled sources,
plans each source's model calls (the same 30 s chunk cuts and the same batches a
single process makes, so every model call sees the same inputs and gives the same
numbers), sends groups of those batches to whichever actor is idle (so one long
source is spread over all actors instead of holding one), puts the answers back in
order, finishes the records (``Labeller.finish_records``), and publishes and
journals each source with the single-process code (``publish_labels``). The labels
and the dataset are therefore byte for byte those of ``python -m label``.

Faults: the call of an actor whose process or node dies goes to the next idle
actor, and Ray restarts the dead one (``max_restarts``, on any node with room),
which then rejoins the pool. A killed driver loses only the sources in
flight: the journal holds the finished ones, and a rerun skips them.

Every node must see the workspace at the same path (shared storage) and run the
same code; both are checked before anything is written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import platform
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from label.audio import Timeline
from label.decoding import WindowDecode, batched, batches, decode_batch
from label.longform import ChunkResult, SpeechMap, assign_words, decode_or_skip, plan_chunks, redecode_batches
from label.run import (LabelOptions, Labeller, RunSummary, finish_run, pending_sources, publish_labels,
                       read_window_records, segmented_manifests)
from whcore.atomic import sweep_temp_files
from whcore.errors import SourceError, UserError
from whcore.journal import Journal, source_unit
from whcore.records import SAMPLE_RATE, WindowRecord
from whcore.workspace import Workspace

INSTALL_HINT = "pip install 'whisper-harvest[cluster]'"
# Audio per actor call. Calls are whole model-call batches (4 x 30 s on CPU, 8 x 30 s on GPU), so
# 120 s means one batch per call: the finest split that keeps a single process's batches, and the
# best balance (a call's Ray overhead is milliseconds against seconds of decoding).
LOOPBACK = "127.0.0.1"
DEFAULT_CHUNK_SECONDS = 120.0
ACTOR_RESTARTS = 3  # a dead actor process is restarted (on any node) this many times
POLL_S = 1.0  # how often a call waiting for an actor checks that some are left
NO_ACTOR_WAIT_S = 600.0  # with actors alive but none idle nor busy this long, the run stops
CONNECT_TIMEOUT_S = 5.0  # an address that does not answer TCP in this time is unreachable
CODE_PACKAGES = ("label", "whcore")
ACTOR_NAME = "label-worker"  # actors are named label-worker-0.. in the driver's own namespace  # the code an actor runs: its digest must equal the driver's


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how wide ``label --ray`` runs."""

    address: str | None = None  # a running cluster (host:port, ray://..., auto); None = start a local Ray
    actors: int | None = None  # model actors; None = one per GPU (GPU runs) or per --threads CPUs
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS  # audio per actor call (longer sources are split)


@dataclass(frozen=True)
class WorkerIdentity:
    """What an actor reports before it gets work: where it runs and what it runs."""

    node: str  # its IP address
    node_id: str  # Ray's id of its node (several nodes may share one machine)
    pid: int
    ray_version: str
    python: str
    code: str  # digest of the label/whcore sources it imported
    workspace_problem: str | None  # None: the driver's workspace is visible and the same there


@dataclass
class ClusterStats:
    """Per-actor busy time of a run (the driver's view: call sent to answer received)."""

    wall_s: float = 0.0
    busy_s: dict[int, float] = field(default_factory=dict)
    retried_calls: int = 0

    def idle_share(self) -> float:
        """Idle share of the least busy actor over the labelling wall time (0 when nothing ran)."""
        if not self.busy_s or self.wall_s <= 0:
            return 0.0
        return max(0.0, 1.0 - min(self.busy_s.values()) / self.wall_s)


def import_ray() -> Any:
    """The ``ray`` module, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise UserError(f"label --ray needs Ray, which is not installed ({error}): {INSTALL_HINT}") from None
    return ray


def code_digest() -> str:
    """sha256 of the label and whcore sources this process imported (a worker with other code
    would label differently)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in CODE_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(f"{package}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def workspace_fingerprint(workspace: Workspace, sources: Sequence[str]) -> list[tuple[str, int]]:
    """(relative path, size) of the sources' window manifests: what a worker must see too."""
    paths = [workspace.windows_manifest_path(sid) for sid in sources]
    return [(workspace.relative(p), p.stat().st_size if p.is_file() else -1) for p in paths]


def workspace_problem(root: Path, expected: Sequence[tuple[str, int]]) -> str | None:
    """Why ``root`` on this node is not the driver's workspace (None if it looks the same)."""
    if not root.is_dir():
        return f"{root} does not exist"
    for relative, size in expected:
        path = root / relative
        found = path.stat().st_size if path.is_file() else -1
        if found != size:
            return f"{path} is {'missing' if found < 0 else f'{found} bytes, not {size}'}"
    return None


class LabelWorker:
    """One model on one Ray actor: decodes the model calls the driver plans, nothing else.

    It reads window audio from the shared workspace itself (only the plans and the
    decodes travel through Ray) and writes nothing.
    """

    def __init__(self, root: str, options: LabelOptions) -> None:
        self.workspace = Workspace(Path(root))
        self.options = options
        self.labeller = Labeller(self.workspace, options, logging.getLogger("label.worker"))
        self._windows: tuple[str, list[WindowRecord]] | None = None

    def identity(self, expected: Sequence[tuple[str, int]]) -> WorkerIdentity:
        import ray

        return WorkerIdentity(node=ray.util.get_node_ip_address(), node_id=ray.get_runtime_context().get_node_id(),
                              pid=os.getpid(), ray_version=ray.__version__,
                              python=platform.python_version(), code=code_digest(),
                              workspace_problem=workspace_problem(self.workspace.root, expected))

    def ping(self) -> bool:
        return True

    def windows(self, source_id: str) -> list[WindowRecord]:
        if self._windows is None or self._windows[0] != source_id:
            self._windows = (source_id, read_window_records(self.workspace, source_id))
        return self._windows[1]

    def engine(self, check: bool) -> Any:
        return self.labeller.check_engine if check else self.labeller.engine

    def language(self, source_id: str) -> str:
        return self.labeller.source_language(self.windows(source_id))

    def decode_spans(self, source_id: str, span_batches: Sequence[Sequence[tuple[int, int]]], language: str,
                     check: bool) -> list[list[ChunkResult]]:
        """Long-form chunk decodes, one list per batch (each batch one model call, as in one process)."""
        windows = self.windows(source_id)
        timeline, speech = Timeline(self.workspace, windows), SpeechMap(windows, self.labeller.silent_below)
        engine = self.engine(check)
        return [decode_or_skip(engine, timeline, spans, language, speech) for spans in span_batches]

    def decode_rows(self, source_id: str, row_batches: Sequence[Sequence[int]], language: str,
                    check: bool) -> list[list[WindowDecode]]:
        """Windows decoded alone, one list per batch of rows (``--mode windows``, long-form re-decodes)."""
        read, engine = self.labeller.reader(self.windows(source_id)), self.engine(check)
        return [decode_batch(engine, read(rows), language) for rows in row_batches]

    def decode_source(self, source_id: str, language: str) -> list[WindowDecode]:
        """A whole source's decodes (the transformers backend batches inside its own engine)."""
        windows = self.windows(source_id)
        return self.labeller.engine.decode_windows(self.labeller.reader(windows), len(windows), language,
                                                   lambda seconds: None)


class ActorPool:
    """Model actors handed out one call at a time, so work goes to whichever is idle.

    A call whose actor dies (its process, or its node) fails at once and goes to the
    next idle actor; the dead one rejoins the pool when Ray has restarted it, which
    may be never (a lost node whose actors find no room elsewhere). Ray's own
    per-call retry is off on purpose: it would wait for that restart."""

    def __init__(self, ray: Any, actors: Sequence[Any], log: Any) -> None:
        self.ray, self.log = ray, log
        self.alive = dict(enumerate(actors))
        self.idle: asyncio.Queue[int] = asyncio.Queue()
        for index in self.alive:
            self.idle.put_nowait(index)
        self.busy = 0
        self.stats = ClusterStats(busy_s={index: 0.0 for index in self.alive})
        self._rejoining: set[asyncio.Task] = set()

    async def next_idle(self) -> int:
        """An idle live actor; a UserError once none is left or none has come back for a while."""
        waited = 0.0
        while True:
            if not self.alive:
                raise UserError("every Ray actor died for good (see the worker logs in the Ray temp folder); "
                                "finished sources are journalled: rerun to resume")
            try:
                index = await asyncio.wait_for(self.idle.get(), timeout=POLL_S)
            except asyncio.TimeoutError:
                waited = waited + POLL_S if self.busy == 0 else 0.0
                if waited >= NO_ACTOR_WAIT_S:
                    raise UserError(f"no Ray actor has been available for {NO_ACTOR_WAIT_S:.0f} s (nodes lost and "
                                    "no room to restart their actors?): finished sources are journalled; "
                                    "rerun when the cluster has room") from None
                continue
            if index in self.alive:
                return index

    async def call(self, method: str, *args: Any) -> Any:
        """``method(*args)`` on an idle actor; on another one if that actor dies meanwhile."""
        while True:
            index = await self.next_idle()
            started = time.monotonic()
            self.busy += 1
            try:
                result = await getattr(self.alive[index], method).remote(*args)
            except self.ray.exceptions.RayActorError as error:
                self.log.warning(f"Ray actor {index} died during {method} of {args[0]} ({first_line(error)}): "
                                 "the call goes to another actor")
                self.stats.retried_calls += 1
                rejoin = asyncio.ensure_future(self.rejoin(index))
                self._rejoining.add(rejoin)
                rejoin.add_done_callback(self._rejoining.discard)
                continue
            finally:
                self.busy -= 1
            self.stats.busy_s[index] += time.monotonic() - started
            self.log.debug(f"actor {index}: {method} {args[0]} in {time.monotonic() - started:.1f} s")
            self.idle.put_nowait(index)
            return result

    async def rejoin(self, index: int) -> None:
        """Back into the pool once Ray has restarted the actor; dropped if it cannot be."""
        try:
            await self.alive[index].ping.remote()
        except self.ray.exceptions.RayActorError:
            self.log.warning(f"Ray actor {index} is gone for good")
            self.alive.pop(index, None)
            return
        self.idle.put_nowait(index)


@dataclass
class Driver:
    """Plans each source's model calls, sends them to the pool, finishes and publishes the source."""

    workspace: Workspace
    options: LabelOptions
    cluster: ClusterOptions
    pool: ActorPool
    log: Any

    def __post_init__(self) -> None:
        self.labeller = Labeller(self.workspace, self.options, self.log)  # never loads a model here
        self.journal = Journal(self.workspace, "label")

    @property
    def batch_size(self) -> int:
        return self.options.engine.batch_size

    def groups(self, items: Sequence[Any], seconds_of: Any) -> list[list[Any]]:
        """Consecutive items in groups of about ``chunk_seconds`` of audio (one actor call each)."""
        out: list[list[Any]] = []
        total = self.cluster.chunk_seconds
        for item in items:
            if total >= self.cluster.chunk_seconds:
                out.append([])
                total = 0.0
            out[-1].append(item)
            total += seconds_of(item)
        return out

    async def decode_rows(self, source_id: str, windows: Sequence[WindowRecord], row_batches: list[list[int]],
                          language: str, check: bool) -> list[list[WindowDecode]]:
        groups = self.groups(row_batches, lambda rows: sum(windows[i].duration for i in rows))
        answers = await asyncio.gather(*(self.pool.call("decode_rows", source_id, group, language, check)
                                         for group in groups))
        return [batch for answer in answers for batch in answer]

    async def decode_longform(self, source_id: str, windows: Sequence[WindowRecord], language: str,
                              check: bool) -> list[WindowDecode]:
        """``label.longform.decode_longform`` with its model calls spread over the actors."""
        timeline = Timeline(self.workspace, windows)
        plan = await asyncio.to_thread(lambda: list(batched(plan_chunks(timeline), self.batch_size)))
        groups = self.groups(plan, lambda spans: sum(b - a for a, b in spans) / SAMPLE_RATE)
        answers = await asyncio.gather(*(self.pool.call("decode_spans", source_id, group, language, check)
                                         for group in groups))
        decodes = list(assign_words((batch for answer in answers for batch in answer), windows))
        todo = redecode_batches(windows, decodes, self.batch_size)
        redone = await self.decode_rows(source_id, windows, todo, language, check)
        for rows, batch in zip(todo, redone):
            for i, decode in zip(rows, batch):
                decodes[i] = dataclasses.replace(decode, redecoded=True)
        return decodes

    async def decode(self, source_id: str, windows: Sequence[WindowRecord], language: str,
                     check: bool) -> list[WindowDecode]:
        """What ``Labeller.decode_with`` (or the transformers engine) returns, computed on the actors."""
        if self.options.backend == "transformers":
            return await self.pool.call("decode_source", source_id, language)
        if self.options.mode == "windows":
            row_batches = [list(rows) for rows in batches(len(windows), self.batch_size)]
            answers = await self.decode_rows(source_id, windows, row_batches, language, check)
            return [decode for batch in answers for decode in batch]
        return await self.decode_longform(source_id, windows, language, check)

    async def label_source(self, source_id: str) -> None:
        windows = read_window_records(self.workspace, source_id)
        language = self.options.language or ""
        decodes: list[WindowDecode] = []
        checks: list[WindowDecode] | None = None
        if windows:
            if self.options.language is None:
                language = await self.pool.call("language", source_id)
                self.log.info(f"{source_id}: detected language {language}")
            parts = [self.decode(source_id, windows, language, check=False)]
            if self.options.check_model_dir is not None:
                parts.append(self.decode(source_id, windows, language, check=True))
            decodes, *rest = await asyncio.gather(*parts)
            checks = rest[0] if rest else None
        records = self.labeller.finish_records(source_id, windows, language, decodes, checks)
        publish_labels(self.workspace, self.options, self.journal, source_id, records, self.log)

    async def run(self, sources: Sequence[str], summary: RunSummary) -> None:
        """Label ``sources``, longest first (the long ones are split, the short ones fill the gaps).

        A few more sources than actors are in flight, so finished sources are journalled
        as the run goes (a killed driver loses little) and actors never wait for work."""
        window_count = {sid: len(read_window_records(self.workspace, sid)) for sid in sources}
        gate = asyncio.Semaphore(2 * len(self.pool.alive) + 1)

        async def one(source_id: str) -> None:
            async with gate:
                try:
                    await self.label_source(source_id)
                except SourceError as error:
                    self.journal.mark_failed(source_unit(source_id), f"not labelled: {error}")
                    summary.failed.append(source_id)
                    return
                summary.labelled.append(source_id)

        await asyncio.gather(*(one(sid) for sid in sorted(sources, key=lambda s: -window_count[s])))


def check_address(address: str) -> None:
    """A UserError naming ``address`` unless something answers TCP there (Ray itself would retry
    for a minute before failing)."""
    if address == "auto" or address.startswith("ray://") and ":" not in address[6:]:
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise UserError(f"Ray head {address} is unreachable ({error.strerror or error}): start it with "
                        "`ray start --head` there, or fix the address") from None


def connect(ray: Any, cluster: ClusterOptions, local_cpus: int, log: Any) -> bool:
    """Connect to the cluster (or start a local Ray); True if this call started or joined it
    (and must disconnect), False if the process was already connected."""
    if ray.is_initialized():
        return False
    settings = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if cluster.address is None:
            temp = Path(tempfile.gettempdir()) / f"wh-ray-{os.getuid()}"  # Ray's socket paths must stay short
            log.info(f"starting a local Ray ({local_cpus} CPUs, temp folder {temp})")
            # a local Ray serves this machine only: every Ray port on loopback, not on the
            # address Ray would otherwise pick from the default route
            ray.init(num_cpus=local_cpus, _temp_dir=str(temp), _node_ip_address=LOOPBACK, **settings)
        else:
            check_address(cluster.address)
            log.info(f"connecting to the Ray cluster at {cluster.address}")
            ray.init(address=cluster.address, **settings)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        where = cluster.address or "a local Ray"
        raise UserError(f"cannot start or join {where}: {first_line(error)}") from None
    return True


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def actor_count(ray: Any, options: LabelOptions, cluster: ClusterOptions) -> int:
    """--ray-actors, else one per GPU (GPU runs) or one per --threads CPUs of the cluster."""
    if cluster.actors is not None:
        return cluster.actors
    resources = ray.cluster_resources()
    if options.engine.device == "cuda":
        return max(1, int(resources.get("GPU", 0)))
    return max(1, int(resources.get("CPU", 1)) // max(1, options.engine.cpu_threads))


def start_actors(ray: Any, workspace: Workspace, options: LabelOptions, count: int) -> list[Any]:
    """``count`` model actors: one GPU each on a GPU run (Ray sets CUDA_VISIBLE_DEVICES to it)."""
    gpu = options.engine.device == "cuda"
    if gpu:
        options = dataclasses.replace(options, engine=dataclasses.replace(options.engine, device_index=0))
    remote = ray.remote(LabelWorker)
    return [remote.options(name=f"{ACTOR_NAME}-{i}", num_cpus=1, num_gpus=1 if gpu else 0,
                           max_restarts=ACTOR_RESTARTS, max_task_retries=0
                           ).remote(str(workspace.root), options) for i in range(count)]


def identity_problem(who: WorkerIdentity, ray_version: str, python: str, code: str) -> str | None:
    """Why a worker cannot label for this driver (other Ray, Python or code; no workspace), or None."""
    where = f"Ray worker {who.node} (pid {who.pid})"
    if who.ray_version != ray_version or who.python.rsplit(".", 1)[0] != python.rsplit(".", 1)[0]:
        return (f"{where} runs Ray {who.ray_version} on Python {who.python}, the driver Ray {ray_version} on "
                f"Python {python}: install the same versions on every node ({INSTALL_HINT})")
    if who.code != code:
        return (f"{where} runs other whisper-harvest code (digest {who.code}, driver {code}): install the "
                "same version on every node")
    if who.workspace_problem is not None:
        return (f"{where} does not see the workspace: {who.workspace_problem}; mount the shared storage "
                "at the same path on every node")
    return None


def check_workers(ray: Any, actors: Sequence[Any], expected: Sequence[tuple[str, int]], log: Any) -> None:
    """A UserError naming the first worker that runs other code or Ray, or cannot see the workspace."""
    mine = code_digest()
    try:
        identities = ray.get([a.identity.remote(expected) for a in actors], timeout=600)
    except ray.exceptions.GetTimeoutError:
        raise UserError("the Ray actors did not start within 10 min: does the cluster have the "
                        "CPUs/GPUs asked for (see `ray status`)?") from None
    except ray.exceptions.RayError as error:
        raise UserError(f"a Ray actor failed to start: {first_line(error)} (is whisper-harvest installed "
                        "on every node?)") from None
    for who in identities:
        problem = identity_problem(who, ray.__version__, platform.python_version(), mine)
        if problem is not None:
            raise UserError(problem)
    log.info(f"{len(identities)} model actor(s) on {len({i.node_id for i in identities})} node(s)")


def label_on_ray(workspace: Workspace, options: LabelOptions, cluster: ClusterOptions, log: Any) -> RunSummary:
    """``label_sources`` with the decoding on Ray actors (same outputs)."""
    ray = import_ray()
    summary = RunSummary()
    manifests = segmented_manifests(workspace)
    sources = list(manifests)
    pending = pending_sources(workspace, options, Journal(workspace, "label"), sources, summary, log, manifests)
    if pending:
        local_cpus = cluster.actors or max(1, (os.cpu_count() or 1) // max(1, options.engine.cpu_threads))
        joined = connect(ray, cluster, local_cpus, log)
        actors: list[Any] = []
        try:
            actors = start_actors(ray, workspace, options, actor_count(ray, options, cluster))
            check_workers(ray, actors, workspace_fingerprint(workspace, pending), log)
            workspace.labels_dir.mkdir(parents=True, exist_ok=True)  # only now: a failed check writes nothing
            sweep_temp_files(workspace.labels_dir)
            pool = ActorPool(ray, actors, log)
            started = time.monotonic()
            asyncio.run(Driver(workspace, options, cluster, pool, log).run(pending, summary))
            pool.stats.wall_s = time.monotonic() - started
            log.info(f"Ray: {len(actors)} actor(s), least busy idle {pool.stats.idle_share():.0%} of "
                     f"{pool.stats.wall_s:.1f} s, {pool.stats.retried_calls} call(s) moved to another actor")
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            if joined:
                ray.shutdown()
    finish_run(workspace, options, sources, summary, log)
    return summary
