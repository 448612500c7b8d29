# device: start both trainings detached (they outlive the call); their PIDs go to /data/*.pid for stop.sh.
# ONLY=wavegrad (or ONLY=gradtts) starts just that one, which then has the GPU to itself.
cd /data/code
export PYTHONPATH=/data/code:/tmp/site PYTHONUNBUFFERED=1
if [ "${ONLY:-gradtts}" = gradtts ]; then
  setsid nohup python3 -m serve.cli train tts --size small --data /data/joe --out /data/runs/gradtts \
    --batch-size ${GB:-32} --lr ${GLR:-1e-4} --workers 4 --val-every 1000 --ckpt-every 500 --resume \
    > /data/gradtts.log 2>&1 < /dev/null &
  echo $! > /data/gradtts.pid
fi
if [ "${ONLY:-wavegrad}" = wavegrad ]; then
  setsid nohup python3 -m serve.cli train vocoder --model wavegrad --size small --data /data/joe --out /data/runs/wavegrad \
    --batch-size ${WB:-96} --lr ${WLR:-2e-4} --segment-frames 32 --workers 6 --val-every 2000 --ckpt-every 1000 --resume \
    > /data/wavegrad.log 2>&1 < /dev/null &
  echo $! > /data/wavegrad.pid
fi
sleep 2; echo "started: gradtts $(cat /data/gradtts.pid 2>/dev/null || echo -), wavegrad $(cat /data/wavegrad.pid 2>/dev/null || echo -)"
