#!/usr/bin/env bash
# Copies the full-size run's small files from WORK (default /work/runs/fullsize) into state/,
# to be committed: screening, plans, each stage's generation cache and results, the analysis's
# parts (Test 2's bootstrap draws among them), the step markers and the logs (progress bars
# left out). Never the store (it is rebuilt) or the model. Only changed files are copied.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/work/runs/fullsize}
cd "$WORK"
n=0
while IFS= read -r -d '' f; do
    if ! cmp -s "$f" "$HERE/state/$f"; then
        mkdir -p "$HERE/state/$(dirname "$f")" && cp "$f" "$HERE/state/$f" && n=$((n + 1))
    fi
done < <(find out -type f \( -name '*.json' -o -name '*.md' -o -name '*.csv' \) -print0)
mkdir -p "$HERE/state/logs"
cp ./*.done "$HERE/state/" 2>/dev/null || true
cp run.log "$HERE/state/logs/run.log"
for log in ./*.log; do
    [ "$log" = ./run.log ] && continue
    # a progress bar rewrites its line with \r: keep what each line said last
    sed 's/.*\r//' "$log" | grep -v '^\s*$' > "$HERE/state/logs/$(basename "$log")" || true
done
echo "checkpoint: $n files changed; state/ holds $(find "$HERE/state/out" -type f | wc -l) files, $(du -sh "$HERE/state" | cut -f1)"
