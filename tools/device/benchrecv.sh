# device: move carried bench parts (.gpu/bK: onnxruntime-gpu wheel parts, front-end wheels, the bundle) into /data/bench
set -e
for d in "$@"; do mkdir -p /data/bench && cp -r .gpu/$d/. /data/bench/; done
echo "bench: $(ls /data/bench/ort 2>/dev/null | grep -c part) wheel parts, $(ls /data/bench/fe 2>/dev/null | wc -l) front-end wheels, $(ls /data/bench/voice 2>/dev/null | wc -l) bundle files"
