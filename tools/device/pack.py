"""Pack a GPU session for the device tool: ``.gpu/c1`` (scripts, wheels, checkpoints, phonemes, metadata and
the first FLAC shard) and ``.gpu/c2``... (further shards), each under the per-call limit counted together with
the working tree that travels anyway; with ``--bench``, also ``.gpu/b1``... for the GPU speed rows:
onnxruntime-gpu (its wheel in parts), the text front-end's wheels and the shipped voice bundle.
See tools/device/README.md.

    python tools/device/pack.py [--data ../shared/corpus/joe-ljs] [--out .gpu] [--bench]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

LIMIT = 64 * 2**20  # bytes a device call may carry, working tree included
SLACK = 600_000  # per call: directory entries and rounding
HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = ["soundfile", "cffi", "pycparser"]  # the device's image lacks soundfile (FLAC reading)
DEVICE_PY = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# For `gradwave bench` there: onnxruntime-gpu (its CUDA 13 build, like the device's torch 2.11+cu130) and the
# text front-end (gruut with its dependencies at the versions this package is tested with; gruut and a few
# others are sdists only, built here into pure-Python wheels).
ORT_GPU = "onnxruntime-gpu==1.31.1"
FRONTEND_BINARY = ["Babel==2.18.0", "dateparser==1.1.8", "networkx==3.6.1", "python-crfsuite==0.9.12",
                   "python-dateutil==2.9.0.post0", "pytz==2026.6", "regex", "six==1.17.0", "tzlocal==5.4.5"]
FRONTEND_SOURCE = ["gruut==2.4.0", "gruut-lang-en==2.0.1", "gruut-ipa==0.13.0", "num2words==0.5.14",
                   "docopt==0.6.2", "jsonlines==1.2.0"]
PART = 15 * 2**20  # split size of the onnxruntime-gpu wheel


def travelling_tree_bytes(root: str) -> int:
    """Bytes of the files the device tool sends besides the carried paths (tracked + untracked, not ignored)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                         capture_output=True).stdout.decode()
    return sum(os.path.getsize(os.path.join(root, p)) for p in out.split("\0") if p and os.path.isfile(
        os.path.join(root, p)))


def device_wheels(dest: str, packages: list[str]) -> None:
    """Download binary wheels of ``packages`` for the device's Python into ``dest`` (no dependencies)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", DEVICE_PY, "--implementation", "cp",
                    *[a for p in PLATFORMS for a in ("--platform", p)], "--platform", "any", "-d", dest, *packages],
                   check=True)


def pack_bench(out: str, voice: str, cap: int) -> int:
    """Write ``out/b1``... (each under ``cap`` bytes): ``ort/`` parts of the onnxruntime-gpu wheel and its
    name, ``fe/`` the front-end wheels, ``voice/`` the bundle. Returns the number of carries."""
    with tempfile.TemporaryDirectory() as tmp:
        ort_dir, fe = os.path.join(tmp, "ort"), os.path.join(tmp, "fe")
        device_wheels(ort_dir, [ORT_GPU])
        device_wheels(fe, FRONTEND_BINARY)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", fe, *FRONTEND_SOURCE],
                       check=True)
        (wheel,) = glob.glob(os.path.join(ort_dir, "*.whl"))
        items = []  # (relative destination, source path, offset, length)
        with open(wheel, "rb") as f:
            size = os.fstat(f.fileno()).st_size
        name = os.path.basename(wheel)
        items += [(f"ort/{name}.part{i:02d}", wheel, off, min(PART, size - off))
                  for i, off in enumerate(range(0, size, PART))]
        items += [(f"fe/{w}", os.path.join(fe, w), 0, os.path.getsize(os.path.join(fe, w)))
                  for w in sorted(os.listdir(fe))]
        items += [(f"voice/{v}", os.path.join(voice, v), 0, os.path.getsize(os.path.join(voice, v)))
                  for v in sorted(os.listdir(voice))]
        k, used = 1, 0
        for rel, src, off, n in items:
            if used + n + 4096 > cap:
                k, used = k + 1, 0
            dst = os.path.join(out, f"b{k}", rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(src, "rb") as fi, open(dst, "wb") as fo:
                fi.seek(off)
                fo.write(fi.read(n))
            used += n + 4096
        with open(os.path.join(out, "b1", "ort", "WHEEL_NAME"), "w") as f:
            f.write(name + "\n")
    return k


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
    ap.add_argument("--bench", action="store_true",
                    help="also pack .gpu/b1... for the GPU speed rows (onnxruntime-gpu, front-end wheels, bundle)")
    ap.add_argument("--voice", default="serve/voices/joe", help="the bundle to benchmark (with --bench)")
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
    device_wheels(os.path.join(c1, "whl"), WHEELS)
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
    if args.bench:
        nb = pack_bench(args.out, args.voice, cap)
        for i in range(1, nb + 1):
            d = os.path.join(args.out, f"b{i}")
            print(f"{d}: {dir_bytes(d) / 2**20:.1f} MiB (+ tree {tree / 2**20:.1f} MiB)")
        print(f"{nb} more calls carry the bench (bash /data/bin/benchrecv.sh bK; at the end gpubench.sh)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
