"""The runtime never imports torch: a fresh interpreter imports serve and synthesizes from a bundle."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib.abc, json, sys

attempts = []


class Spy(importlib.abc.MetaPathFinder):
    # records every attempt to import torch, even one that an optional-import guard would swallow
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            attempts.append(name)
        return None


sys.meta_path.insert(0, Spy())

import numpy as np

import serve.bundle
import serve.engine
import serve.streaming
from serve.engine import Synthesizer

synth = Synthesizer(sys.argv[1], device="cpu", threads=1)
chunks = list(synth.synthesize("Hi there. Bye!", steps=2, chunk_frames=16, overlap_frames=2))
audio = np.concatenate([c.audio for c in chunks])
voc = synth.vocode(synth.tts_mel("Hi.", steps=2))
print(json.dumps({
    "attempts": attempts,
    "loaded": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
    "samples": int(audio.size), "chunks": len(chunks),
    "finite": bool(np.isfinite(audio).all() and np.isfinite(voc).all()),
}))
"""


def test_serve_runs_without_importing_torch(tiny_bundle):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_bundle)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["attempts"] == [] and result["loaded"] == []
    assert result["samples"] > 0 and result["chunks"] >= 2 and result["finite"]
