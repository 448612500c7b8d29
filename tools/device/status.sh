# device: step rates and last losses of both runs
for n in gradtts wavegrad; do echo "== $n"; tail -n 2 /data/runs/$n/metrics.jsonl 2>/dev/null | cut -c1-400; tail -c 300 /data/$n.log | tr '\r' '\n' | tail -n 2; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
