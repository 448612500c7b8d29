"""Memory of this process, for the benchmarks: resident set size now, its peak, and a context manager that
measures the peak increase over a block.

Linux reports the peak exactly: ``VmHWM`` in /proc/self/status is the kernel's high-water mark of the
resident set, and writing ``5`` to /proc/self/clear_refs (Linux >= 4.0) resets it to the current RSS. Where
that is not possible, :class:`PeakRSS` samples the RSS from a background thread instead.
"""

from __future__ import annotations

import sys
import threading
from typing import Any


def _proc_status(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes; None where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes() -> int | None:
    """Resident set size of this process now."""
    return _proc_status("VmRSS")


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process (since it started, or since :func:`reset_peak_rss`)."""
    peak = _proc_status("VmHWM")
    if peak is None:
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        except (ImportError, OSError):
            return None
    return peak


def reset_peak_rss() -> bool:
    """Reset the kernel's peak RSS mark to the current RSS (Linux >= 4.0). False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """Context manager: ``peak - start`` (``increase``) is the largest rise of this process' resident set size
    during the block, in bytes. Exact where the kernel's peak mark can be reset (Linux); otherwise sampled
    every ``interval`` s in a background thread (0 where there is no /proc)."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.start = self.peak = 0
        self.exact = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss() -> int:
        return rss_bytes() or 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.exact = reset_peak_rss()
        self.start = self.peak = self.rss()
        if not self.exact:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.peak = max(self.peak, self.rss())
        if self.exact:
            self.peak = max(self.peak, peak_rss_bytes() or 0)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def increase(self) -> int:
        return max(0, self.peak - self.start)
