"""`python -m finetune demo`: the Gradio app starts on 127.0.0.1 and transcribes over HTTP."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "finetune"))
from builders import cut_window  # noqa: E402

STARTUP_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"demo exited early ({process.returncode}): {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("demo did not start")


@contextlib.contextmanager
def running_demo(python: str) -> Iterator[str]:
    """``python -m finetune demo`` on the embedded model, up and serving; yields its URL."""
    from whcore.models import ct2_model_dir

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen([python, "-m", "finetune", "demo", "--model", str(ct2_model_dir("offline-base")),
                                "--port", str(port), "--language", "en"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_demo_transcribes_through_http_api(python: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    wav = cut_window(0.0, 10.0, tmp_path / "clip.wav")
    with running_demo(python) as url:
        text = Client(url, verbose=False).predict(handle_file(str(wav)), api_name="/transcribe")
    assert "rivers" in text.lower() and "weather" in text.lower(), text
