"""Generate the committed example recording with espeak-ng (dev-time only).

The demo and the end-to-end test need long-form speech with known words that
runs offline. espeak-ng speaks each paragraph; ffmpeg joins them with short
pauses and encodes a small Opus file, the kind of audio-only stream yt-dlp
fetches from YouTube. Run: ``python examples/make_example.py`` (needs Debian's
espeak-ng and ffmpeg); the output is committed so users never need espeak.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "espeak_lecture.opus"
TRANSCRIPT = HERE / "espeak_lecture.txt"
PAUSE_S = 0.8  # silence between paragraphs, seconds

PARAGRAPHS = [
    ("en-us", "Welcome to this short lecture about rivers and the weather. "
              "Rivers carry water from the mountains down to the sea. "
              "Along the way they shape valleys, feed farms and give cities their drinking water."),
    ("en-gb", "The weather changes every day because the sun warms the land and the oceans unevenly. "
              "Warm air rises, cool air sinks, and the wind moves between them. "
              "When moist air cools, clouds form and rain begins to fall."),
    ("en-us", "In spring the snow on the mountains melts, and the rivers grow wide and fast. "
              "Farmers watch the water level closely, because a flood can ruin a whole season. "
              "Engineers build dams and canals to store the water for the dry months of summer."),
    ("en-gb", "Scientists measure the rain with simple instruments called gauges. "
              "They record the temperature, the pressure and the speed of the wind every hour. "
              "With these numbers, computers predict the weather for the next few days."),
    ("en-us", "Thank you for listening to this lecture. "
              "Next time we will talk about forests, mountains and the animals that live there."),
]


def speak(voice: str, text: str, wav: Path) -> None:
    """Synthesise one paragraph to a WAV file at espeak's native 22.05 kHz."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for index, (voice, text) in enumerate(PARAGRAPHS):
            wav = Path(tmp) / f"p{index}.wav"
            speak(voice, text, wav)
            parts.append(wav)
        inputs: list[str] = []
        for wav in parts:
            inputs += ["-i", str(wav)]
        pads = "".join(f"[{i}:a]apad=pad_dur={PAUSE_S}[a{i}];" for i in range(len(parts)))
        joined = "".join(f"[a{i}]" for i in range(len(parts)))
        graph = f"{pads}{joined}concat=n={len(parts)}:v=0:a=1[out]"
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *inputs,
                        "-filter_complex", graph, "-map", "[out]", "-ar", "48000", "-ac", "1",
                        "-c:a", "libopus", "-b:a", "24k", str(OUTPUT)], check=True)
    TRANSCRIPT.write_text("\n\n".join(text for _, text in PARAGRAPHS) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
