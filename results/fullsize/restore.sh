#!/usr/bin/env bash
# Restores into WORK (default /work/runs/fullsize) every file of the last checkpoint (STATE,
# default state/ beside this script) that WORK lacks: the run's outputs and its step markers.
# A file WORK already has is never overwritten (WORK's copy is the newer one). Prints the count.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/work/runs/fullsize}
STATE=${STATE:-$HERE/state}
n=0
mkdir -p "$WORK"
if [ -d "$STATE/out" ]; then
    while IFS= read -r -d '' f; do
        rel=${f#"$STATE/"}
        if [ ! -e "$WORK/$rel" ]; then
            mkdir -p "$(dirname "$WORK/$rel")" && cp "$f" "$WORK/$rel" && n=$((n + 1))
        fi
    done < <(find "$STATE/out" -type f -print0)
fi
for f in "$STATE"/*.done; do
    if [ -e "$f" ] && [ ! -e "$WORK/$(basename "$f")" ]; then
        cp "$f" "$WORK/" && n=$((n + 1))
    fi
done
echo "$n"
