"""The Gradio demo: type text, hear it spoken (streamed while it is synthesized), see its mel and timings.

:func:`build_demo` makes the page from a :class:`serve.engine.Synthesizer` (no module-level state);
:func:`launch` loads a voice and serves it (``gradwave serve``). Everything runs offline: no analytics,
no remote fonts, no server-side rendering.

API (``gradio_client.Client(url).predict(..., api_name=...)``); both endpoints take
``text, steps, vocoder_steps, temperature, speed, seed`` (see :func:`build_demo` for ranges):

* ``/synthesize`` -> ``(wav filepath, timings dict)``, the whole utterance at once.
* ``/speak`` -> ``(wav filepath, timings dict, mel image filepath, timings markdown[, live stream])``; a
  generator that streams the audio as it is made (the live stream output exists only when ffmpeg, which
  Gradio needs to encode streamed audio, is installed).

Bad input (empty or whitespace-only text, over :data:`MAX_CHARS` characters, settings out of range,
nothing speakable) ends in a ``gr.Error`` with a message for the user, never a crash or a hang.

Imports gradio and matplotlib lazily (importing this module is cheap); never imports torch.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import time
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np

MAX_CHARS = 5000  # longest accepted text, in characters (~5 minutes of speech)
SEED_MAX = 2**32 - 1
EXAMPLES = (
    "Dr. Smith paid $5.50 for 3 apples on May 5th, 2024.",
    "Hello! Nice to meet you.",
    "Diffusion models turn noise into data one small step at a time. Grad-TTS does this for mel "
    "spectrograms: its text encoder predicts an average spectrogram and how long each sound lasts, and "
    "a score network refines it in a handful of steps. A DiffWave vocoder then turns the spectrogram "
    "into a waveform, again starting from noise. The first sentence starts playing while the rest of "
    "this paragraph is still being synthesized.",
)
STAGES = ("encoder", "decoder", "vocoder")


def _gr():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gradio as gr

    return gr


# ----------------------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------------------
def check_text(text: Any) -> str:
    """The text to speak, or ``gr.Error`` if it is empty, whitespace only or over :data:`MAX_CHARS`."""
    gr = _gr()
    if text is None or text == "":
        raise gr.Error("Please enter some text to speak: the text box is empty.", title="No text",
                       print_exception=False)
    text = str(text)
    if not text.strip():
        raise gr.Error("Please enter some text to speak: the text contains only spaces or line breaks.",
                       title="No text", print_exception=False)
    if len(text) > MAX_CHARS:
        raise gr.Error(f"The text is too long: {len(text):,} characters (the limit is {MAX_CHARS:,}). "
                       "Please split it into shorter parts.", title="Text too long", print_exception=False)
    return text


def _number(name: str, value: Any, low: float, high: float, integer: bool = False) -> float | int:
    """``value`` as a number in ``[low, high]`` (an int if ``integer``), else ``gr.Error``."""
    gr = _gr()
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if not np.isfinite(x) or not low <= x <= high or (integer and x != int(x)):
        kind = "a whole number" if integer else "a number"
        raise gr.Error(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}.",
                       title="Invalid setting", print_exception=False)
    return int(x) if integer else x


# ----------------------------------------------------------------------------------------------------------
# timing of the three graphs
# ----------------------------------------------------------------------------------------------------------
class StageClock:
    """Wraps a Synthesizer's graph functions and adds the seconds spent in each stage to ``seconds``:
    ``encode`` -> encoder, ``score`` -> decoder, ``vocoder_step`` -> vocoder."""

    def __init__(self, graphs: Any):
        self._graphs = graphs
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def __getattr__(self, name: str) -> Any:  # providers, sessions, ...
        return getattr(self._graphs, name)

    def _time(self, stage: str, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[stage] += time.perf_counter() - t0

    def encode(self, *args):
        return self._time("encoder", self._graphs.encode, *args)

    def score(self, *args):
        return self._time("decoder", self._graphs.score, *args)

    def vocoder_step(self, *args):
        return self._time("vocoder", self._graphs.vocoder_step, *args)


def clocked(synth: Any) -> tuple[Any, StageClock | None]:
    """A shallow copy of ``synth`` whose graph calls are timed (one per request, so concurrent requests
    keep separate clocks), and its clock; ``(synth, None)`` for a synthesizer without ``graphs``."""
    if getattr(synth, "graphs", None) is None:
        return synth, None
    clone = copy.copy(synth)
    clone.graphs = StageClock(synth.graphs)
    return clone, clone.graphs


def timings(audio_s: float, first_s: float, total_s: float, stages: dict[str, float] | None,
            **extra: Any) -> dict[str, Any]:
    """The timings of one request as a JSON-able dict: seconds and real-time factors (seconds of compute
    per second of audio) of each stage, ``other`` (text front-end, solvers' numpy work, stitching) and
    ``total``; ``first_audio_s`` is the latency to the first streamed chunk."""
    seconds = dict(stages or {})
    if stages is not None:
        seconds["other"] = max(0.0, total_s - sum(stages.values()))
    seconds["total"] = total_s
    rtf = {k: v / audio_s if audio_s > 0 else None for k, v in seconds.items()}
    return {"audio_s": round(audio_s, 4), "first_audio_s": round(first_s, 4),
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "rtf": {k: None if v is None else round(v, 4) for k, v in rtf.items()}, **extra}


def timings_markdown(t: dict[str, Any]) -> str:
    """A small markdown table of :func:`timings`."""
    s = t["settings"]
    label = {"encoder": "Encoder (text → prior, durations)",
             "decoder": f"Decoder ({s['steps']} score steps)",
             "vocoder": f"Vocoder ({s['vocoder_schedule']}, {s['vocoder_steps']} steps)",
             "other": "Other (text front-end, numpy)", "total": "**Total**"}
    rows = [f"| {label.get(k, k)} | {v:.3f} | {t['rtf'][k]:.3f} |" for k, v in t["seconds"].items()]
    return "\n".join([
        f"**First audio after {t['first_audio_s']:.2f} s** · {t['audio_s']:.2f} s of audio · "
        f"{t['sentences']} sentence{'s' * (t['sentences'] != 1)} · {t['device']}",
        "", "| Stage | Seconds | RTF |", "|:--|--:|--:|", *rows, "",
        "RTF: seconds of compute per second of audio (below 1 is faster than real time).",
    ])


# ----------------------------------------------------------------------------------------------------------
# audio and pictures
# ----------------------------------------------------------------------------------------------------------
def to_int16(audio: np.ndarray) -> np.ndarray:
    """float audio ``[T]`` in [-1, 1] -> int16 ``[T]`` (clipped; no normalisation, so chunks stay level)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """float audio ``[T]`` -> a mono 16-bit WAV file's bytes (one streamed chunk)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(to_int16(audio).tobytes())
    return buf.getvalue()


def render_mel(mel: np.ndarray, sample_rate: int, hop_length: int, width: int = 960,
               height: int = 280) -> np.ndarray:
    """Log-mel ``[n_mels, F]`` -> an RGB picture ``[height, width, 3]`` uint8 (time in seconds across)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    seconds = mel.shape[1] * hop_length / sample_rate
    im = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                   extent=(0.0, seconds, 0, mel.shape[0]))
    ax.set_title("Log-mel spectrogram of the speech", fontsize=10)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band")
    fig.colorbar(im, ax=ax, pad=0.01, label="log mel")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# ----------------------------------------------------------------------------------------------------------
# the demo
# ----------------------------------------------------------------------------------------------------------
def _device_name(synth: Any) -> str:
    providers = list(getattr(synth, "providers", []) or [])
    if not providers:
        return "unknown device"
    first = providers[0]
    return {"CPUExecutionProvider": "ONNX Runtime, CPU", "CUDAExecutionProvider": "ONNX Runtime, CUDA",
            "TensorrtExecutionProvider": "ONNX Runtime, TensorRT"}.get(first, first)


def _schedule_choices(vocoder) -> list[tuple[str, str]]:
    """(label, name) of each stored vocoder schedule, fewest steps first."""
    items = sorted(vocoder.schedules.items(), key=lambda kv: (kv[1].steps, kv[0]))
    return [(f"{name} · {s.steps} steps" + (" (default)" if name == vocoder.default_schedule else ""), name)
            for name, s in items]


def _description(synth: Any, stream: bool) -> str:
    b = synth.bundle
    name = b.root.name if b.root is not None else "in-memory voice"
    voc = {"diffwave": "DiffWave", "wavegrad": "WaveGrad"}.get(b.vocoder.model, b.vocoder.model)
    players = ("**Live stream** starts playing while the rest is still being synthesized; **Speech** holds "
               "the whole utterance as a WAV file once it is done." if stream else
               "**Speech** plays the utterance once it is synthesized (install ffmpeg for live streaming).")
    return (
        "# gradwave · diffusion text-to-speech\n"
        f"Text → **Grad-TTS** mel spectrogram → **{voc}** waveform, both by reverse diffusion in a few "
        f"steps. Voice **{name}**, {b.sample_rate:,} Hz, on {_device_name(synth)}. {players}"
    )


def build_demo(synth: Any, concurrency: int | None = None, stream: bool | None = None):
    """The demo page (a ``gr.Blocks``, queue enabled) for ``synth`` (a :class:`serve.engine.Synthesizer`
    of a TTS voice).

    Inputs: text (1..:data:`MAX_CHARS` characters), decoder steps (2..50, bundle default), vocoder schedule
    (one of the bundle's schedule names), temperature (0.5..3), speed (0.5..2), seed (0..2**32-1).
    ``concurrency``: requests synthesized at once (default 1 on CPU, 2 on a GPU); ``stream``: stream the
    audio live (default: when ffmpeg, which Gradio needs for it, is installed).
    """
    gr = _gr()
    if getattr(synth.bundle, "acoustic", None) is None:
        raise ValueError("this voice bundle has a vocoder only (no acoustic model): the demo needs a "
                         "TTS voice")
    dec, voc = synth.bundle.acoustic.decoder, synth.bundle.vocoder
    gpu = any("CPU" not in p for p in getattr(synth, "providers", []) or ["CPU"])
    concurrency = concurrency or (2 if gpu else 1)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    stream = shutil.which("ffmpeg") is not None if stream is None else bool(stream)

    def settings(steps, vocoder_steps, temperature, speed, seed) -> dict[str, Any]:
        name = str(vocoder_steps or voc.default_schedule)
        if name not in voc.schedules:
            raise gr.Error(f"Unknown vocoder schedule {name!r}; this voice has "
                           f"{', '.join(voc.schedules)}.", title="Invalid setting", print_exception=False)
        return {"steps": _number("Decoder steps", steps, 2, 50, integer=True), "vocoder_schedule": name,
                "vocoder_steps": voc.schedules[name].steps,
                "temperature": _number("Temperature", temperature, 0.5, 3.0),
                "speed": _number("Speed", speed, 0.5, 2.0), "seed": _number("Seed", seed, 0, SEED_MAX, True)}

    def run(text, steps, vocoder_steps, temperature, speed, seed) -> Iterator[tuple[Any, dict | None]]:
        """Yield (AudioChunk, None) per chunk, then (full audio float32 [T], timings dict)."""
        text = check_text(text)
        opts = settings(steps, vocoder_steps, temperature, speed, seed)
        timed, clock = clocked(synth)
        start = time.perf_counter()
        pieces, first, n_sentences = [], None, 0
        try:
            for chunk in timed.synthesize(text, steps=opts["steps"], vocoder_steps=opts["vocoder_schedule"],
                                          temperature=opts["temperature"], speed=opts["speed"],
                                          seed=opts["seed"]):
                first = chunk.elapsed_s if first is None else first
                n_sentences = chunk.sentence + 1
                pieces.append(chunk.audio)
                yield chunk, None
        except ValueError as e:  # nothing speakable, a runaway sentence, ...
            raise gr.Error(f"Cannot speak this text: {e}", print_exception=False) from None
        audio = np.concatenate(pieces)  # [T]
        total = time.perf_counter() - start
        yield audio, timings(audio.shape[0] / synth.sample_rate, first, total,
                             None if clock is None else clock.seconds, sentences=n_sentences,
                             characters=len(text), device=_device_name(synth), settings=opts)

    def synthesize(text, steps, vocoder_steps, temperature, speed, seed):
        for audio, t in run(text, steps, vocoder_steps, temperature, speed, seed):
            if t is not None:
                return (synth.sample_rate, to_int16(audio)), t
        raise AssertionError("unreachable: run() always ends with the full audio")

    def speak(text, steps, vocoder_steps, temperature, speed, seed):
        skip = gr.skip()
        heard, first, last = 0.0, 0.0, None
        for item, t in run(text, steps, vocoder_steps, temperature, speed, seed):
            if t is None and item.is_final:
                last = item  # streamed with the final results, which closes the live stream
            elif t is None:
                heard += item.duration_s
                first = item.elapsed_s if item.index == 0 else first
                note = (f"Synthesizing… {heard:.1f} s of audio so far (sentence {item.sentence + 1})"
                        + (f"; playing since {first:.2f} s." if stream else "."))
                live = (wav_bytes(item.audio, item.sample_rate),) if stream else ()
                yield (skip, skip, skip, note, *live)
            else:
                from vocoder.audio import mel_numpy

                picture = render_mel(mel_numpy(item), synth.sample_rate, synth.hop)
                live = (wav_bytes(last.audio, last.sample_rate),) if stream else ()
                yield ((synth.sample_rate, to_int16(item)), t, picture, timings_markdown(t), *live)

    with gr.Blocks(title="gradwave · diffusion TTS", analytics_enabled=False) as demo:
        gr.Markdown(_description(synth, stream))
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                text = gr.Textbox(label="Text", lines=6, max_lines=20, autofocus=True, elem_id="text",
                                  placeholder="Type or paste English text to speak…",
                                  info=f"Up to {MAX_CHARS:,} characters. Numbers, dates, money and common "
                                       "abbreviations are read out.")
                with gr.Row():
                    clear = gr.ClearButton(value="Clear", scale=1)
                    go = gr.Button("Speak", variant="primary", scale=3, elem_id="speak")
                gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[text], label="Examples",
                            cache_examples=False)
                with gr.Accordion("Settings", open=True):
                    with gr.Row():
                        steps = gr.Slider(2, 50, value=int(np.clip(dec.steps, 2, 50)), step=1,
                                          label="Decoder steps",
                                          info="Grad-TTS reverse-diffusion steps: more is smoother, slower.")
                        schedule = gr.Dropdown(_schedule_choices(voc), value=voc.default_schedule,
                                               label="Vocoder schedule",
                                               info="Noise schedule of the vocoder (its step count).")
                    with gr.Row():
                        temperature = gr.Slider(0.5, 3.0, value=float(np.clip(dec.temperature, 0.5, 3.0)),
                                                step=0.05, label="Temperature",
                                                info="Decoder starts from mean + noise / temperature.")
                        speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Speed",
                                          info="Above 1 speaks faster.")
                    dice = gr.Button("New seed", size="sm", render=False)
                    seed = gr.Number(0, precision=0, minimum=0, maximum=SEED_MAX, label="Seed",
                                     buttons=[dice], info="Same text, settings and seed give the same audio.")
            with gr.Column(scale=6):
                outputs = []
                if stream:
                    live = gr.Audio(label="Live stream", streaming=True, autoplay=True,
                                    interactive=False, buttons=[])
                audio = gr.Audio(label="Speech", type="numpy", format="wav", interactive=False,
                                 autoplay=not stream, buttons=["download"])
                report = gr.Markdown("Timings appear here after synthesis.", label="Timings table")
                mel = gr.Image(label="Mel spectrogram", show_label=False, type="numpy", format="png",
                               interactive=False, buttons=["download", "fullscreen"])
                with gr.Accordion("Timings (JSON)", open=False):
                    report_json = gr.JSON(label="Timings")
                outputs = [audio, report_json, mel, report] + ([live] if stream else [])
        clear.add([text, audio, mel, report_json])
        dice.click(lambda: int(np.random.default_rng().integers(0, 2**31)), None, seed, queue=False,
                   api_visibility="private")
        inputs = [text, steps, schedule, temperature, speed, seed]
        common = {"concurrency_limit": concurrency, "concurrency_id": "synthesis"}
        go.click(speak, inputs, outputs, api_name="speak", show_progress_on=[audio], **common)
        # API-only twin of the button: the whole utterance at once, no stream.
        hidden = gr.Button(visible=False)
        hidden.click(synthesize, inputs, [audio, report_json], api_name="synthesize", show_progress="hidden",
                     **common)
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo


def launch_options() -> dict[str, Any]:
    """Keyword arguments of ``demo.launch()`` that give the page its look and keep it offline: the theme
    (bundled fonts only; the bundled semi-bold Source Sans is a subset, so bold text uses the full Bold),
    no server-side rendering, no monitoring, MCP or run history."""
    gr = _gr()
    font = [gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui",
            "sans-serif"]
    return {"theme": gr.themes.Default(font=font), "ssr_mode": False,
            "footer_links": ["api", "settings"], "run_history": False, "enable_monitoring": False,
            "mcp_server": False}


def launch(voice_dir: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 7860,
           share: bool = False, threads: int | None = None, *, device: str = "auto",
           concurrency: int | None = None, block: bool = True):
    """Load the voice in ``voice_dir`` (default: :func:`serve.engine.default_voice`) and serve the demo at
    ``http://host:port/`` (``share``: also through a public Gradio link). ``threads``: onnxruntime threads
    (default: one per core); ``device``: as :class:`serve.engine.Synthesizer`; ``concurrency``: as
    :func:`build_demo`; ``block=False`` returns at once (call ``demo.close()`` to stop). Returns the
    ``gr.Blocks``."""
    from serve.engine import Synthesizer, default_voice

    voice = voice_dir if voice_dir is not None else default_voice()
    synth = Synthesizer(voice, device=device, threads=threads)
    for _ in synth.synthesize("Hello."):  # warm up (text front-end, onnxruntime) before the first visitor
        pass
    demo = build_demo(synth, concurrency=concurrency)
    demo.launch(server_name=host, server_port=int(port), share=share, prevent_thread_lock=not block,
                quiet=not block, **launch_options())
    return demo
