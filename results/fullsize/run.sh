#!/usr/bin/env bash
# The pre-registered full-size study (docs/evaluation.md, "Pre-registered: the full-size study")
# and its analysis, run again from their pinned commits, resumable on any machine:
#   stage 1 (0badbb9) and stage 2 (5e1254c) side by side, one torch thread each; then the frozen
#   analysis (516257c, which never reached main: rebuilt here as 7928dc2 plus 04b421a's change,
#   as docs/evaluation.md says it was made): its `scores` phase as soon as a core is free, then
#   its `tests` phase with two processes for Test 2's pair bootstrap.
# Each step is resumable on its own (generation cache, store, analysis parts); a finished step
# leaves WORK/<step>.done and is not run again. Before anything, restore.sh copies in the files
# WORK lacks from state/ (the last checkpoint committed by checkpoint.sh), so a new machine goes
# on where the last checkpoint left off (the store is rebuilt: its probe sets are re-recorded).
#
# usage:  make install && setsid nohup results/fullsize/run.sh > /dev/null 2>&1 &
#         (WORK=/some/folder to run elsewhere; default /work/runs/fullsize; log WORK/run.log)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
WORK=${WORK:-/work/runs/fullsize}
PY=$REPO/.venv/bin/python
declare -A COMMIT=([stage1]=0badbb9 [stage2]=5e1254c [analysis]=7928dc2)
declare -A PATCH=([analysis]=04b421a)  # applied on top of its part's commit
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
STORE=store/fullsize.h5
FILES=(--store "$STORE" --out out/fullsize)  # every step's store and output folder
STUDY=(--model embedded "${FILES[@]}")

log() { echo "== $* $(date -u +%FT%TZ)" >> "$WORK/run.log"; }

mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd) || exit 2
cd "$WORK" || exit 2
restored=$("$HERE/restore.sh") || exit 2
log "run.sh start (repo $(git -C "$REPO" rev-parse --short HEAD); $restored files restored from state/)"
# A new machine has no store. Until the scores phase is done it needs every pair's probe sets:
# a finished stage runs again to record them (its answers all come from the restored cache, and
# it writes the same results). The tests phase reads no store.
if [ ! -e "$STORE" ] && [ ! -e scores.done ]; then
    for s in stage1 stage2; do
        [ -e "$s.done" ] && rm "$s.done" && log "$s: no store here, run again to record its probe sets"
    done
fi
for part in "${!COMMIT[@]}"; do
    if [ ! -d "src-$part" ]; then
        mkdir -p "src-$part" && git -C "$REPO" archive "${COMMIT[$part]}" src probes | tar -x -C "src-$part"
        if [ -n "${PATCH[$part]:-}" ]; then
            git -C "$REPO" diff "${PATCH[$part]}^" "${PATCH[$part]}" -- src | git -C "src-$part" apply - ||
                { log "could not apply ${PATCH[$part]} to $part"; rm -rf "src-$part"; exit 2; }
        fi
    fi
done

# The embedded model is converted once before the two stages start (their commits predate the
# lock that makes two processes starting at once convert it once).
PYTHONPATH="$WORK/src-stage1/src" "$PY" -c \
    "from neuronoverlap.models.embedded import ensure_embedded_checkpoint as e; e()" >> convert.log 2>&1 ||
    { log "converting the embedded model failed (convert.log)"; exit 2; }

# step NAME PART MODULE ARGS...: run MODULE from PART's commit unless NAME is done.
step() {
    local name=$1 part=$2
    shift 2
    [ -e "$name.done" ] && return 0
    local rc try
    for try in 1 2 3 4 5 6; do
        log "$name start (${COMMIT[$part]}${PATCH[$part]:++${PATCH[$part]}})"
        PYTHONPATH="$WORK/src-$part/src" "$PY" -m "$@" >> "$name.log" 2>&1
        rc=$?
        log "$name exit $rc"
        # the two stages share the store: one that found it locked by the other waits and goes on
        tail -n 1 "$name.log" | grep -q "(lock held)" || break
        sleep 120
    done
    [ $rc -eq 0 ] && touch "$name.done"
    return $rc
}

step stage1 stage1 neuronoverlap.evaluation.fullsize "${STUDY[@]}" &
step stage2 stage2 neuronoverlap.evaluation.fullsize "${STUDY[@]}" --stage 2 &
wait -n  # the analysis's scores phase takes the first free core
[ -e stage1.done ] || [ -e stage2.done ] && step scores analysis neuronoverlap.evaluation.fullsize_analysis --phase scores \
    "${FILES[@]}" &
wait
if [ -e stage1.done ] && [ -e stage2.done ] && [ -e scores.done ]; then
    step tests analysis neuronoverlap.evaluation.fullsize_analysis --phase tests \
        "${FILES[@]}" --jobs 2 && log "analysis done"
else
    log "not every step finished: rerun run.sh"
fi
