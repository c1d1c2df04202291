"""``python -m finetune demo --model DIR``: a Gradio page that transcribes with the model.

Upload a file or record from the microphone. ``DIR`` is a fine-tune output
(transformers folder, with its CTranslate2 copy in ``ct2/``) or any
CTranslate2 folder; ``--backend ct2`` uses faster-whisper, which is faster on
CPU. The same function is exposed as the HTTP API endpoint ``/transcribe``
(``gradio_client.Client(url).predict(handle_file(path), api_name="/transcribe")``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

from finetune.export import CT2_DIR
from whcore.cli import HelpFormatter
from whcore.errors import UserError

API_NAME = "transcribe"
DEFAULT_PORT = 7860


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m finetune demo", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, help="fine-tune output folder or CTranslate2 folder")
    parser.add_argument("--backend", default="auto", choices=("auto", "transformers", "ct2"),
                        help="auto: transformers if DIR has config.json + weights, else CTranslate2")
    parser.add_argument("--language", help="language code [default: the model's generation config, "
                                           "else detected]")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    return parser


def pick_backend(model: Path, backend: str) -> tuple[str, Path]:
    """(backend, folder) to load: transformers folder, or a CTranslate2 folder."""
    has_transformers = (model / "config.json").is_file() and not (model / "model.bin").is_file()
    if backend == "ct2" or (backend == "auto" and not has_transformers):
        for folder in (model, model / CT2_DIR):
            if (folder / "model.bin").is_file():
                return "ct2", folder
        raise UserError(f"--model {model}: no CTranslate2 model.bin in it or in {CT2_DIR}/")
    if not has_transformers:
        raise UserError(f"--model {model}: not a transformers model folder (no config.json)")
    return "transformers", model


def make_transcriber(backend: str, folder: Path, language: str | None) -> Callable[[str], str]:
    """A function from an audio file path to its transcript."""
    if backend == "ct2":
        from faster_whisper import WhisperModel

        model = WhisperModel(str(folder), device="auto", compute_type="default")

        def transcribe_ct2(path: str) -> str:
            segments, _ = model.transcribe(path, language=language, beam_size=1)
            return " ".join(s.text.strip() for s in segments)

        return transcribe_ct2
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(folder))
    kwargs = {"language": language} if language else {}

    def transcribe_hf(path: str) -> str:
        # Timestamps switch on Whisper's own long-form decoding: recordings over 30 s work.
        return asr(path, return_timestamps=True, generate_kwargs=kwargs)["text"].strip()

    return transcribe_hf


def build_app(transcribe: Callable[[str], str], title: str):  # noqa: ANN201 - gradio Blocks
    import gradio as gr

    def on_audio(path: str | None) -> str:
        return transcribe(path) if path else ""

    return gr.Interface(fn=on_audio, title=title, api_name=API_NAME,
                        inputs=gr.Audio(sources=["upload", "microphone"], type="filepath",
                                        label="audio"),
                        outputs=gr.Textbox(label="transcript"), flagging_mode="never")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model = Path(args.model).expanduser().resolve()
    if not model.is_dir():
        raise UserError(f"--model {model} is not a folder; pass a `python -m finetune` output")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the demo needs gradio: pip install 'whisper-harvest[demo]'") from None
    backend, folder = pick_backend(model, args.backend)
    transcribe = make_transcriber(backend, folder, args.language)
    app = build_app(transcribe, f"Whisper demo: {model.name} ({backend})")
    print(f"demo: {backend} model {folder} on http://{args.host}:{args.port}", flush=True)
    app.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0
