"""Repository-wide pytest setup.

Torch tests use tiny models, for which extra threads cost more than they give; on a shared 2-core machine
several processes each spinning 2 OpenMP threads slow everything down by an order of magnitude. One thread
per test process unless GRADWAVE_TEST_THREADS says otherwise.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    import torch
except ImportError:  # the runtime-only install has no torch
    torch = None

if torch is not None:
    torch.set_num_threads(int(os.environ.get("GRADWAVE_TEST_THREADS", "1")))
