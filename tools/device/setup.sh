# device: install the carried wheels, lay out /data (corpus, runs), check the GPU stack
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/c1/whl/*.whl
mkdir -p /data/joe/wavs /data/runs/gradtts/checkpoints /data/runs/wavegrad/checkpoints /data/code /data/bin
cp .gpu/c1/metadata.csv /data/joe/
cp .gpu/c1/gradtts-small.pt /data/runs/gradtts/checkpoints/last.pt
cp .gpu/c1/wavegrad-small.pt /data/runs/wavegrad/checkpoints/last.pt
cp .gpu/c1/phonemes.npz /data/runs/gradtts/
cp .gpu/c1/*.sh /data/bin/
cp -r vocoder tts export serve /data/code/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
PYTHONPATH=/data/code:/tmp/site python3 -c "import torch, soundfile, numba; print(torch.__version__, soundfile.__version__, numba.__version__, torch.cuda.is_available())"
