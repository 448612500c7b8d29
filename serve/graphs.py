"""onnxruntime for the runtime: execution providers and the bundle's graphs as numpy functions.

Never imports torch (``serve`` runs on onnxruntime and numpy only).
"""

from __future__ import annotations

import numpy as np

from serve.bundle import Bundle, BundleError

DEVICES = ("auto", "cpu", "cuda", "tensorrt")


def select_providers(device: str = "auto") -> list[str]:
    """onnxruntime execution providers for ``device``.

    ``auto``: CUDA when onnxruntime-gpu offers it (falling back to CPU if no GPU is usable), else CPU.
    ``tensorrt`` is opt-in: TensorRT builds an engine per new input shape (minutes), a poor fit for
    utterances of varying length unless shapes are bucketed.
    """
    import onnxruntime as ort

    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r} (expected one of {', '.join(DEVICES)})")
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        gpu = "CUDAExecutionProvider" in available
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
    need = "CUDAExecutionProvider" if device == "cuda" else "TensorrtExecutionProvider"
    if need not in available:
        raise ValueError(f"device {device!r} needs onnxruntime-gpu (pip install 'gradwave[gpu]'); "
                         f"this onnxruntime offers {', '.join(available)}")
    return ([need] if device == "tensorrt" else []) + ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxGraphs:
    """The bundle's graphs as numpy functions (one onnxruntime session each)."""

    def __init__(self, bundle: Bundle, device: str = "auto", threads: int | None = None):
        import onnxruntime as ort

        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0  # 0: onnxruntime's default (one per core)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        # Memory-pattern planning caches one allocation plan per input shape; with streaming's varying chunk
        # lengths it only raised peak RSS (816 -> 516 MiB without it, same speed; 2-core Xeon, bench texts).
        opts.enable_mem_pattern = False
        # The three sessions each own a thread pool, and by default a pool's threads spin after every run. While
        # the decoder and the vocoder alternate, the idle pool's spinning threads take cores from the busy one:
        # switching spinning off made streaming synthesis 15% faster (total RTF 1.26-1.30 -> 1.10-1.11,
        # vocoder 1.05-1.09 -> 0.92-0.93; 2-core AMD EPYC, 2 threads, the bench texts at 4 decoder steps).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = select_providers(device)
        self.sessions = {}
        for name in bundle.graphs:
            try:
                self.sessions[name] = ort.InferenceSession(str(bundle.graph_path(name)), opts, providers=providers)
            except Exception as e:  # onnxruntime raises its own exception types
                raise BundleError(f"{bundle.root}: cannot load {bundle.graphs[name].file}: {e}") from None
        self.providers = self.sessions["vocoder_step"].get_providers()
        if device in ("cuda", "tensorrt") and "CUDAExecutionProvider" not in self.providers:
            raise ValueError(f"device {device!r} was requested but onnxruntime found no usable GPU")

    def encode(self, ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ids int64 [B, L], lengths int64 [B] -> mu_x [B, 80, L], logw [B, 1, L], x_mask [B, 1, L]."""
        out = self.sessions["encoder"].run(None, {"ids": ids.astype(np.int64), "lengths": lengths.astype(np.int64)})
        return out[0], out[1], out[2]

    def score(self, x: np.ndarray, t: np.ndarray, mu: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """x, mu [B, 80, F], t [B], mask [B, 1, F] -> score [B, 80, F]."""
        f32 = np.float32
        return self.sessions["score_step"].run(None, {"x": x.astype(f32), "t": t.astype(f32),
                                                      "mu": mu.astype(f32), "mask": mask.astype(f32)})[0]

    def vocoder_step(self, audio: np.ndarray, cond: np.ndarray, mel: np.ndarray) -> np.ndarray:
        """audio [B, T], cond [B], mel [B, 80, F] -> eps [B, T] (T = hop * F)."""
        f32 = np.float32  # asarray: no copy of the (already float32) audio and mel at every step
        return self.sessions["vocoder_step"].run(None, {"audio": np.asarray(audio, dtype=f32),
                                                        "cond": np.asarray(cond, dtype=f32),
                                                        "mel": np.asarray(mel, dtype=f32)})[0]
