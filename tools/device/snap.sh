# device: compact the newest checkpoints into $OUT (split under the 16 MiB per-file limit) with logs
export PYTHONPATH=/data/code:/tmp/site
mkdir -p /data/snap
python3 - <<'PY'
from vocoder.training.checkpoint import compact_checkpoint, load_checkpoint
for name, drop in [("gradtts", True), ("wavegrad", False)]:
    src = f"/data/runs/{name}/checkpoints/last.pt"
    compact_checkpoint(src, f"/data/snap/{name}.pt", drop_optimizer=drop)
    print(name, load_checkpoint(f"/data/snap/{name}.pt")["step"])
PY
for n in gradtts wavegrad; do split -b 15M -d /data/snap/$n.pt $OUT/$n.pt.part; done
tar czf $OUT/logs.tgz -C /data gradtts.log wavegrad.log runs/gradtts/metrics.jsonl runs/wavegrad/metrics.jsonl runs/gradtts/samples runs/wavegrad/samples 2>/dev/null
ls -la $OUT
