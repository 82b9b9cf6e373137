#!/usr/bin/env bash
# Copies the full-size run's small files from WORK (default /work/runs/fullsize) into STATE
# (default state/ beside this script), to be committed: screening, plans, each stage's
# generation cache and results, the analysis's parts (Test 2's bootstrap draws among them), the
# step markers and the logs (progress bars left out). Never the store (it is rebuilt) or the model. Only changed files are copied.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/work/runs/fullsize}
STATE=${STATE:-$HERE/state}
mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd)
cd "$WORK"
n=0
while IFS= read -r -d '' f; do
    if ! cmp -s "$f" "$STATE/$f"; then
        mkdir -p "$STATE/$(dirname "$f")" && cp "$f" "$STATE/$f" && n=$((n + 1))
    fi
done < <(find out -type f \( -name '*.json' -o -name '*.md' -o -name '*.csv' \) -print0)
mkdir -p "$STATE/logs"
cp ./*.done "$STATE/" 2>/dev/null || true
cp run.log "$STATE/logs/run.log"
for log in ./*.log; do
    [ "$log" = ./run.log ] && continue
    # a progress bar rewrites its line with \r: keep what each line said last
    sed 's/.*\r//; s/\x1b\[A//g' "$log" | grep -v '^\s*$' > "$STATE/logs/$(basename "$log")" || true
done
echo "checkpoint: $n files changed; state/ holds $(find "$STATE/out" -type f | wc -l) files, $(du -sh "$STATE" | cut -f1)"
