# device: SIGTERM both trainings by PID (each writes last.pt and exits), wait up to 60 s
for n in gradtts wavegrad; do kill -TERM "$(cat /data/$n.pid)" 2>/dev/null; done
for i in $(seq 60); do
  alive=0; for n in gradtts wavegrad; do kill -0 "$(cat /data/$n.pid)" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break; sleep 1
done
echo "stopped after ${i}s"; for n in gradtts wavegrad; do tail -n 1 /data/$n.log | cut -c1-300; done
