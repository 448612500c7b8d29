# device: move one carried shard of FLAC files into /data/joe/wavs
set -e
for d in "$@"; do cp -r .gpu/$d/wavs/. /data/joe/wavs/; done
echo "wavs: $(ls /data/joe/wavs | wc -l) of $(grep -c . /data/joe/metadata.csv) rows; $(du -sh /data/joe | cut -f1)"
