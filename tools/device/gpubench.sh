# device: install onnxruntime-gpu (beside, not over, the image's CPU build) and the front-end, then run
# `gradwave bench` on the GPU: the bundle on onnxruntime's CUDA provider and the checkpoints in torch eager,
# streaming (batch 1) and throughput at batch N; the tables go to $OUT/bench-gpu. Run after stop.sh (the GPU idle).
set -e
cd /data/bench
WHEEL=$(cat ort/WHEEL_NAME)
cat ort/$WHEEL.part* > /data/$WHEEL
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /data/ortgpu /data/$WHEEL
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site fe/*.whl
# onnxruntime-gpu dlopens CUDA 13 and cuDNN 9: use the copies that came with the image's torch (pip nvidia-*)
NV=$(python3 -c "import glob, os, torch; r = os.path.dirname(os.path.dirname(torch.__file__)); print(':'.join(sorted({os.path.dirname(p) for p in glob.glob(r + '/nvidia/**/lib*.so*', recursive=True)})))")
export LD_LIBRARY_PATH=$NV:${LD_LIBRARY_PATH:-}
export PYTHONPATH=/data/ortgpu:/data/code:/tmp/site GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader
cd /data/code
python3 -m serve.cli bench --voice /data/bench/voice --device cuda --acoustic /data/runs/gradtts/checkpoints/last.pt \
  --vocoder /data/runs/wavegrad/checkpoints/last.pt --steps ${STEPS:-2,4,10,50} --batch ${BATCH:-1,8,32,128} \
  --repeats 3 --out $OUT/bench-gpu
