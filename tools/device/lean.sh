#!/usr/bin/env bash
# Untrack (on) or re-track (off) the big committed binaries, so that the working tree the device tool
# sends stays under its 64 MiB. The files stay on disk; `off` restores the index exactly.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
BIG=(checkpoints serve/voices docs/samples docs/eval)
EXCLUDE=.git/info/exclude
case "${1:-}" in
  on)
    git rm -r -q --cached "${BIG[@]}"
    mkdir -p .git/info
    { echo "# gradwave lean.sh begin"; for p in "${BIG[@]}"; do echo "/$p/"; done; echo "# gradwave lean.sh end"; } >> "$EXCLUDE"
    echo "travelling tree: $(git ls-files -co --exclude-standard -z | xargs -0 du -cb | tail -n 1 | cut -f1) bytes"
    ;;
  off)
    git reset -q -- "${BIG[@]}"
    [ -f "$EXCLUDE" ] && sed -i '/^# gradwave lean.sh begin$/,/^# gradwave lean.sh end$/d' "$EXCLUDE"
    git status --short | head
    ;;
  *) echo "usage: $0 on|off" >&2; exit 2 ;;
esac
