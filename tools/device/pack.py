"""Pack a GPU training session for the device tool: ``.gpu/c1`` (scripts, wheels, checkpoints, phonemes,
metadata and the first FLAC shard) and ``.gpu/c2``... (further shards), each under the per-call limit
counted together with the working tree that travels anyway. See tools/device/README.md.

    python tools/device/pack.py [--data ../shared/corpus/joe-ljs] [--out .gpu]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys

LIMIT = 64 * 2**20  # bytes a device call may carry, working tree included
SLACK = 600_000  # per call: directory entries and rounding
HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = ["soundfile", "cffi", "pycparser"]  # the device's image lacks soundfile (FLAC reading)


def travelling_tree_bytes(root: str) -> int:
    """Bytes of the files the device tool sends besides the carried paths (tracked + untracked, not ignored)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                         capture_output=True).stdout.decode()
    return sum(os.path.getsize(os.path.join(root, p)) for p in out.split("\0") if p and os.path.isfile(
        os.path.join(root, p)))


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/corpus/joe-ljs", help="LJSpeech-layout corpus (FLAC or WAV)")
    ap.add_argument("--gradtts", default="checkpoints/gradtts-small.pt")
    ap.add_argument("--wavegrad", default="checkpoints/wavegrad-small.pt")
    ap.add_argument("--phonemes", default="runs/gradtts-small/phonemes.npz",
                    help="tts.train.prepare's phoneme cache (made here when missing: the device has no phonemizer)")
    ap.add_argument("--out", default=".gpu")
    args = ap.parse_args()
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True, capture_output=True,
                          text=True).stdout.strip()
    tree = travelling_tree_bytes(root)
    if tree > 8 * 2**20:
        print(f"pack: the travelling tree is {tree / 2**20:.1f} MiB; run tools/device/lean.sh on first",
              file=sys.stderr)
        return 2
    if not os.path.isfile(args.phonemes):  # make it (and the mel cache beside it) as training would
        sys.path.insert(0, root)
        from tts.text import default_table
        from tts.train import prepare

        cache = os.path.dirname(os.path.abspath(args.phonemes))
        os.makedirs(cache, exist_ok=True)
        prepare(args.data, cache, default_table())
    for p in (args.gradtts, args.wavegrad, args.phonemes, os.path.join(args.data, "metadata.csv")):
        if not os.path.isfile(p):
            print(f"pack: {p}: no such file", file=sys.stderr)
            return 2
    shutil.rmtree(args.out, ignore_errors=True)
    c1 = os.path.join(args.out, "c1")
    os.makedirs(os.path.join(c1, "whl"))
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp",
                    *[a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                      for a in ("--platform", p)], "-d", os.path.join(c1, "whl"), *WHEELS], check=True)
    shutil.copy(args.gradtts, os.path.join(c1, "gradtts-small.pt"))
    shutil.copy(args.wavegrad, os.path.join(c1, "wavegrad-small.pt"))
    shutil.copy(args.phonemes, os.path.join(c1, "phonemes.npz"))
    shutil.copy(os.path.join(args.data, "metadata.csv"), c1)
    for f in glob.glob(os.path.join(HERE, "*.sh")):
        if not f.endswith("lean.sh"):
            shutil.copy(f, c1)
    audio = sorted(glob.glob(os.path.join(args.data, "wavs", "*.flac")) +
                   glob.glob(os.path.join(args.data, "wavs", "*.wav")))
    cap = LIMIT - tree - SLACK
    k, used = 1, dir_bytes(c1)
    for f in audio:
        size = os.path.getsize(f) + 4096
        if used + size > cap:
            k, used = k + 1, 0
        dst = os.path.join(args.out, f"c{k}", "wavs")
        os.makedirs(dst, exist_ok=True)
        shutil.copy(f, dst)
        used += size
    for i in range(1, k + 1):
        d = os.path.join(args.out, f"c{i}")
        print(f"{d}: {dir_bytes(d) / 2**20:.1f} MiB (+ tree {tree / 2**20:.1f} MiB)")
    print(f"{k} calls carry the data; the last of them can also run start.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
