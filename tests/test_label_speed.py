"""What label does to run faster must not change what it hears: the cached int8 copy of a
float model gives bit-identical encoder output, tokens and word times to CTranslate2's own
int8 quantisation on load, and chunks the VAD found silent are skipped without changing the
text of any window with speech."""

from __future__ import annotations

import numpy as np
from faster_whisper import WhisperModel, decode_audio

from label.audio import Timeline, read_windows
from label.backend_ct2 import Ct2Engine, EngineOptions, int8_model_dir, quantize_rows
from label.encoder_torch import TorchEncoder, cpu_has_bf16_matrix_units, resolve_encoder
from label.longform import decode_longform
from label_workspace import AudioSource, build_workspace, espeak, fit, silence
from whcore.atomic import read_jsonl
from whcore.ct2_convert import read_ct2_variables
from whcore.models import ct2_model_dir
from whcore.records import SAMPLE_RATE, WindowRecord
from whcore.text import character_error_rate
from whcore.workspace import Workspace


def engine_on(model_dir, load_dir) -> Ct2Engine:
    """A Ct2Engine on CTranslate2's own encoder whose weights come from ``load_dir`` exactly as
    given (no int8 copy)."""
    return Ct2Engine(EngineOptions(model_dir=model_dir, encoder="ctranslate2"), load_dir=load_dir)


def test_quantize_rows_is_ctranslate2s_rule():
    weight = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 1.0, -0.5]], dtype=np.float32)
    quantized, scale = quantize_rows(weight)
    assert quantized.dtype == np.int8 and scale.dtype == np.float32
    assert quantized.tolist() == [[64, -127, 32], [0, 0, 0], [127, 64, -32]]  # 63.5 -> 64, 31.75 -> 32
    assert np.allclose(scale, [127.0, 1.0, 63.5])


def test_int8_copy_decodes_exactly_like_the_float_model(example_audio):
    source = ct2_model_dir("offline-base")
    copy = int8_model_dir(source)
    assert copy != source and (copy / "model.bin").stat().st_size < (source / "model.bin").stat().st_size * 0.6
    assert int8_model_dir(source) == copy  # made once, then found
    assert int8_model_dir(copy) == copy  # int8 weights (e.g. finetune's export) are loaded as they are
    audio = decode_audio(str(example_audio), sampling_rate=SAMPLE_RATE)
    clips = [audio[:30 * SAMPLE_RATE], audio[30 * SAMPLE_RATE:60 * SAMPLE_RATE]]
    results = []
    for load_dir in (source, copy):
        engine = engine_on(source, load_dir)
        encoded = engine.encode(clips)
        decoded = engine.decode(encoded, "en", engine.detect_language(encoded))
        words = engine.align_words(encoded, "en", [d.tokens for d in decoded], [3000, 3000])
        results.append((np.asarray(encoded).copy(), decoded, words))
    (enc_a, dec_a, words_a), (enc_b, dec_b, words_b) = results
    assert np.array_equal(enc_a, enc_b)
    assert [d.tokens for d in dec_a] == [d.tokens for d in dec_b] and dec_a[0].text
    assert [d.no_speech_prob for d in dec_a] == [d.no_speech_prob for d in dec_b]
    assert words_a == words_b


def test_torch_bf16_encoder_is_closer_to_float32_than_int8(example_audio):
    """The bfloat16 encoder computes Whisper's encoder: against CTranslate2's float32 encoder
    its output differs less than CTranslate2's own int8 encoder does, and the decoder reads
    the same words from it."""
    source = ct2_model_dir("offline-base")
    audio = decode_audio(str(example_audio), sampling_rate=SAMPLE_RATE)
    clips = [audio[:30 * SAMPLE_RATE], audio[30 * SAMPLE_RATE:60 * SAMPLE_RATE]]
    reference = engine_on(source, source)
    features = np.stack([reference.features(c) for c in clips]).astype(np.float32)
    exact = np.asarray(WhisperModel(str(source), device="cpu", compute_type="float32", cpu_threads=2)
                       .encode(features))
    int8 = np.asarray(reference.encode(clips))
    bf16 = TorchEncoder(source, threads=2)(features)
    assert bf16.shape == exact.shape == (2, 1500, 512) and bf16.dtype == np.float32

    def error(output: np.ndarray) -> float:
        return float(np.linalg.norm(output - exact) / np.linalg.norm(exact))
    assert error(bf16) < 0.03 and error(bf16) < error(int8) / 2
    engine = Ct2Engine(EngineOptions(model_dir=source, encoder="torch-bf16"))
    assert engine.encoder == "torch-bf16"
    texts = [[d.text for d in e.decode(e.encode(clips), "en", [("en", 1.0)] * 2)] for e in (engine, reference)]
    assert all(character_error_rate(a, b, "en") < 0.1 for a, b in zip(*texts)) and texts[0][0]


def test_workers_share_a_batch_out_and_give_the_results_back_in_order(example_audio):
    """Two single-threaded workers, each decoding part of a batch, return what one worker
    decoding the whole batch returns, row for row."""
    source = ct2_model_dir("offline-base")
    audio = decode_audio(str(example_audio), sampling_rate=SAMPLE_RATE)
    clips = [audio[:30 * SAMPLE_RATE], audio[30 * SAMPLE_RATE:60 * SAMPLE_RATE], audio[45 * SAMPLE_RATE:]]
    results = []
    for threads in (1, 2):
        engine = Ct2Engine(EngineOptions(model_dir=source, cpu_threads=threads, encoder="ctranslate2"))
        assert engine.workers == threads
        encoded = engine.encode(clips)
        decoded = engine.decode(encoded, "en", engine.detect_language(encoded))
        frames = [min(3000, len(c) * 100 // SAMPLE_RATE) for c in clips]
        results.append(([d.text for d in decoded], engine.align_words(encoded, "en", [d.tokens for d in decoded],
                                                                       frames)))
    (texts_one, words_one), (texts_two, words_two) = results
    assert all(texts_one) and texts_one[0] != texts_one[1]
    assert texts_two == texts_one
    assert [[w.text for w in ws] for ws in words_two] == [[w.text for w in ws] for ws in words_one]


def test_decode_beam_size_override_is_a_beam_engines_decode(example_audio):
    """``decode(beam_size=5)`` on a greedy engine gives what an engine built for beam 5 gives."""
    source = ct2_model_dir("offline-base")
    clips = [decode_audio(str(example_audio), sampling_rate=SAMPLE_RATE)[:30 * SAMPLE_RATE]]
    greedy = Ct2Engine(EngineOptions(model_dir=source, encoder="ctranslate2"))
    beam = Ct2Engine(EngineOptions(model_dir=source, encoder="ctranslate2", beam_size=5))
    english = [("en", 1.0)]
    overridden = greedy.decode(greedy.encode(clips), "en", english, beam_size=5)
    built = beam.decode(beam.encode(clips), "en", english)
    assert overridden[0].text and [d.tokens for d in overridden] == [d.tokens for d in built]
    assert overridden[0].avg_logprob == built[0].avg_logprob


def test_encoder_auto_picks_torch_only_on_a_cpu_with_amx_bf16(tmp_path, monkeypatch):
    with_amx, without = tmp_path / "amx", tmp_path / "plain"
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_bf16_matrix_units(with_amx) and not cpu_has_bf16_matrix_units(without)
    assert not cpu_has_bf16_matrix_units(tmp_path / "missing")
    monkeypatch.setattr("label.encoder_torch.CPUINFO", with_amx)
    assert resolve_encoder("auto", "cpu") == "torch-bf16"
    assert resolve_encoder("auto", "cuda") == "ctranslate2"  # GPUs run CTranslate2's float16 encoder
    assert resolve_encoder("ctranslate2", "cpu") == "ctranslate2"
    monkeypatch.setattr("label.encoder_torch.CPUINFO", without)
    assert resolve_encoder("auto", "cpu") == "ctranslate2"


def test_reading_only_the_encoder_skips_the_decoder():
    model_bin = ct2_model_dir("offline-base") / "model.bin"
    everything = read_ct2_variables(model_bin)
    encoder = read_ct2_variables(model_bin, prefix="encoder/")
    assert set(encoder) == {name for name in everything if name.startswith("encoder/")}
    assert all(np.array_equal(encoder[name], everything[name]) for name in encoder)


def test_engine_loads_the_int8_copy_on_cpu():
    engine = Ct2Engine(EngineOptions(model_dir=ct2_model_dir("offline-base"), compute_type="int8"))
    assert engine.loaded_from == int8_model_dir(ct2_model_dir("offline-base"))


def test_longform_skips_the_encoder_on_chunks_the_vad_found_silent(tmp_path):
    speech = espeak("The river flows quietly past the old stone bridge at the edge of town. "
                    "Every morning the baker opens his shop before the sun comes up.")
    audio = np.concatenate([fit(speech, 28.0), silence(62.0), fit(speech, 28.0)])  # 118 s: 4 chunks
    root = build_workspace(tmp_path / "ws", [AudioSource("mix", audio)], window=10.0, overlap=2.0)
    workspace = Workspace(root)
    windows = sorted((WindowRecord.from_dict(r) for r in read_jsonl(root / "windows" / "mix" / "windows.jsonl")),
                     key=lambda w: w.start)
    engine = Ct2Engine(EngineOptions(model_dir=ct2_model_dir("offline-base")))
    encoded: list[int] = []
    real_encode = engine.encode
    engine.encode = lambda audios: (encoded.append(len(audios)), real_encode(audios))[1]
    timeline = Timeline(workspace, windows)

    def read(rows):
        return read_windows(workspace, [windows[i] for i in rows])

    full = decode_longform(engine, windows, timeline, "en", read)
    full_inputs, encoded[:] = sum(encoded), []
    skipped = decode_longform(engine, windows, timeline, "en", read, silent_below=0.1)
    assert sum(encoded) <= full_inputs - 1  # at least one whole chunk of silence never encoded
    silent = [d for w, d in zip(windows, skipped) if w.speech_ratio < 0.1 and 30 <= w.start and w.end <= 88]
    assert silent and all(not d.text and d.no_speech_prob == 1.0 for d in silent)
    heard = [(a.text, b.text) for w, a, b in zip(windows, full, skipped) if w.speech_ratio >= 0.1]
    assert heard and all(a == b for a, b in heard) and any("river" in a.lower() for a, _ in heard)
