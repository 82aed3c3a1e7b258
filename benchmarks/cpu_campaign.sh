#!/usr/bin/env bash
# The paper protocol (benchmarks/paper.py) on this 2-core CPU, as two background streams that span sessions.
#
#   benchmarks/cpu_campaign.sh start     # after `make setup`: a detached worktree of HEAD runs the streams
#   CAMPAIGN_UNTIL=01:30 benchmarks/cpu_campaign.sh start   # FT runs (not parkable) that would end after 01:30 UTC
#                                        # are not started: their sweep stops and the stream goes on to its next item
#   benchmarks/cpu_campaign.sh status    # streams alive, each stream's current sweep, runs in flight and their epoch
#   benchmarks/cpu_campaign.sh stop      # stop the streams, park unfinished prefix runs, collect, rebuild tables
#   benchmarks/cpu_campaign.sh check     # every queue item through paper.py --dry-run (start does it first)
#   benchmarks/cpu_campaign.sh handover A RUN "ITEM;ITEM"   # once RUN (a run folder, from the repository root) has
#                                        # finished, restart stream A on those items: e.g. end a session's stream A on
#                                        # parkable work after an FT run
#   benchmarks/cpu_campaign.sh restart B "ITEM;ITEM"   # now: stop stream B (its prefix runs parked), restart it on
#                                        # those items from a worktree of today's HEAD ($tree-B), the other stream
#                                        # running on: new protocol code reaches one stream without stopping both
#   git add benchmarks/results benchmarks/inflight BENCHMARKS.md && git commit ...
#
# Each stream walks its queue below in order, one paper.py call per item, one torch thread per run (two streams
# fill the two cores). Items already done cost seconds (a sweep reads finished runs instead of training them;
# results committed under benchmarks/results are put back first), so every session starts again from the top.
# `stop` ends the runs in flight: prefix-method runs are parked in benchmarks/inflight (paper.py --park) and resume
# next session from their last epoch; a fine-tuning run in flight restarts (its checkpoint is ~350 MB), so
# schedule those to end before the session does (`status` shows their epoch). The streams run the code of the
# worktree made at `start` (results record that commit), so editing this checkout does not change them.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-$root/.venv/bin/python}
tree=${CAMPAIGN_TREE:-$root/../campaign}   # the worktree the streams run from
state=${CAMPAIGN_STATE:-$root/runs/campaign}       # pids and logs (ignored)
out=${CAMPAIGN_OUT:-$root/runs/paper}              # sweeps and run folders (ignored)
results=${CAMPAIGN_RESULTS:-$root/benchmarks/results}  # committed results; parked runs go to inflight/ beside it
# Smoke test (tiny runs, scratch folders): CAMPAIGN_OUT=/tmp/c/out CAMPAIGN_RESULTS=/tmp/c/results CAMPAIGN_STATE=/tmp/c
#   CAMPAIGN_TREE=/tmp/c/tree CAMPAIGN_EXTRA="--epochs 3 --limit-train 16 --limit-eval 8" benchmarks/cpu_campaign.sh start
extra=${CAMPAIGN_EXTRA:-}                          # flags for every sweep
data=${ADAPREFIX_DATA:-$(cd "$root/.." && pwd)/shared/data}  # the official files (not beside the worktree)

# MultiRC at max length 512 is ~23 CPU hours a run on the whole files; on CPU its prefix methods run as a stated
# subset of 1,000 training and ~1,000 dev records (whole questions), ~2.5 h a run (a pilot: side/multirc-cost,
# which paper_cost.py prices it by). Its fine-tuning runs (~2.7 h, not parkable) are longer than a session's
# campaign: they are left to a GPU (`paper.py --phase main --tasks multirc --methods finetune $multirc_subset`)
multirc_subset="--train-subset multirc=1000 --eval-subset multirc=1000"
# The queues: each item's sweeps belong to one stream only (two processes in one seeds sweep would not split it:
# a trial trains its seeds in turn, and the second process would wait on each run folder's lock). Stream A holds
# the fine-tuning work (not parkable: schedule it to end within a session), then APT on the large tasks; stream B
# the prefix-method work (parked at `stop`).
queue_A=(
    "--phase main --tasks rte --methods finetune"
    "--phase fewshot --tasks rte --methods finetune"
    "--phase main --tasks conll03 --methods finetune"
    "--phase main --tasks conll03 --methods apt"
    "--phase main --tasks ontonotes --methods finetune --train-subset ontonotes=10000"
    "--phase main --tasks ontonotes --methods apt --train-subset ontonotes=10000"
    "--phase epochs --tasks rte"
    # FT's share of the NER main rows at the epochs the epoch check settled on: under CAMPAIGN_UNTIL each sweep
    # stops at its first run that would not end in time, so the cheapest go first (a run here: CoNLL04 at 60
    # epochs 55-70 min, CoNLL03 at 15 80-120, OntoNotes at 18 over 2 h: only in a session's first minutes)
    "--phase longer --tasks conll04 conll03 --methods finetune"
    "--phase longer --tasks ontonotes --methods finetune --train-subset ontonotes=10000"
    "--phase longer --tasks conll03 --methods prefix apt"
    "--phase main --tasks multirc --methods apt $multirc_subset"
)
queue_B=(
    "--phase ablations --tasks rte"
    "--phase main --tasks conll03 --methods prefix"
    "--phase epochs --tasks conll03"
    "--phase main --tasks ontonotes --methods prefix --train-subset ontonotes=10000"
    "--phase epochs --tasks ontonotes --train-subset ontonotes=10000"
    "--phase longer --tasks conll04 --methods prefix apt"
    "--phase longer --tasks ontonotes --methods prefix apt --train-subset ontonotes=10000"
    "--phase edges --train-subset ontonotes=10000"   # one lr past each edge the main table chose (~4 h)
    "--phase defaults --tasks rte"
    "--phase main --tasks multirc --methods prefix $multirc_subset"
)

# CAMPAIGN_QUEUE_A / CAMPAIGN_QUEUE_B replace a queue: items separated by ";", e.g. to end a session's stream A
# on parkable work: CAMPAIGN_QUEUE_A="--phase main --tasks conll03 --methods apt"
for s in A B; do
    override="CAMPAIGN_QUEUE_$s"
    [ -n "${!override:-}" ] && IFS=';' read -r -a "queue_$s" <<<"${!override}"
done

check() {  # every queue item as paper.py --dry-run: a typo fails here, not hours into a session
    local s item n=0
    export PYTHONPATH="$root/src" HF_HUB_OFFLINE=1
    for s in A B; do
        local -n items="queue_$s"
        for item in "${items[@]}"; do
            # shellcheck disable=SC2086
            "$py" "$root/benchmarks/paper.py" --output "$out" --results "$results" --data-dir "$data" --dry-run $item \
                >/dev/null || { echo "[campaign] stream $s: item does not run: $item" >&2; return 1; }
            n=$((n + 1))
        done
    done
    echo "[campaign] $n queue items checked (paper.py --dry-run)"
}

stream() {  # stream NAME [TREE]: run that stream's queue, item after item, with the code of TREE (default $tree)
    local -n queue="queue_$1"
    local item tree=${2:-$tree}
    local until
    until=$(cat "$state/until" 2>/dev/null)  # the absolute time `start` resolved CAMPAIGN_UNTIL to
    export PYTHONPATH="$tree/src" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
    for item in "${queue[@]}"; do
        echo "[campaign] $(date -u +%FT%TZ) stream $1: $item"
        # shellcheck disable=SC2086
        "$py" "$tree/benchmarks/paper.py" --output "$out" --results "$results" --data-dir "$data" \
            ${until:+--until "$until"} $item ${extra:+-- $extra} || \
            echo "[campaign] stream $1: item failed (exit $?): $item"
    done
    echo "[campaign] $(date -u +%FT%TZ) stream $1: queue done"
}

set_until() {  # CAMPAIGN_UNTIL, if set, as an absolute time for the streams: later items must not read "01:30" as tomorrow
    [ -n "${CAMPAIGN_UNTIL:-}" ] || return 0
    "$py" "$root/benchmarks/paper_deadline.py" "$CAMPAIGN_UNTIL" >"$state/until" || return 1
    echo "[campaign] FT runs that would end after $(cat "$state/until") are not started"
}

alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

case "${1:-}" in
start)
    [ -x "$py" ] || { echo "no $py: run make setup first" >&2; exit 2; }
    for s in A B; do alive "$s" && { echo "stream $s is running already (pid $(cat "$state/$s.pid"))" >&2; exit 2; }; done
    check || exit 2
    mkdir -p "$state"
    rm -f "$state/until"
    set_until || exit 2
    for t in "$tree" "$tree-A" "$tree-B"; do git worktree remove --force "$t" 2>/dev/null; rm -rf "$t"; done
    git worktree add --force --detach "$tree" HEAD >/dev/null 2>&1 || exit 1
    echo "[campaign] streams run commit $(git -C "$tree" rev-parse --short HEAD) from $tree"
    for s in A B; do
        setsid bash "$0" _stream "$s" >>"$state/$s.log" 2>&1 < /dev/null &
        echo $! >"$state/$s.pid"
        echo "[campaign] stream $s: pid $(cat "$state/$s.pid"), log $state/$s.log"
    done
    ;;
check)
    check
    ;;
_stream)
    stream "$2" "${3:-}"
    ;;
restart)  # restart S ITEMS: stop stream S now, park its runs, start it again on ITEMS from a worktree of HEAD
    s=${2:-}; items=${3:-}
    case "$s" in A|B) ;; *) echo "restart: stream A or B, got '$s'" >&2; exit 2 ;; esac
    [ -n "$items" ] || { echo "restart: no queue items" >&2; exit 2; }
    IFS=';' read -r -a "queue_$s" <<<"$items"
    check || exit 2  # the new items must run before the old stream is stopped for them
    set_until || exit 2  # a new CAMPAIGN_UNTIL reaches this stream; the other keeps the time it started with
    if alive "$s"; then kill -TERM -- "-$(cat "$state/$s.pid")" 2>/dev/null; echo "[campaign] stream $s stopped"; fi
    sleep 5  # the killed runs release their folder locks; the other stream's runs keep theirs and are not parked
    PYTHONPATH="$root/src" HF_HUB_OFFLINE=1 "$py" benchmarks/paper.py --output "$out" --results "$results" --park
    own="$tree-$s"
    git worktree remove --force "$own" 2>/dev/null; rm -rf "$own"
    git worktree add --force --detach "$own" HEAD >/dev/null 2>&1 || exit 1
    echo "[campaign] $(date -u +%FT%TZ) stream $s restarted on commit $(git -C "$own" rev-parse --short HEAD)" >>"$state/$s.log"
    env "CAMPAIGN_QUEUE_$s=$items" setsid bash "$0" _stream "$s" "$own" >>"$state/$s.log" 2>&1 < /dev/null &
    echo $! >"$state/$s.pid"
    echo "[campaign] stream $s: pid $(cat "$state/$s.pid") on commit $(git -C "$own" rev-parse --short HEAD) from $own"
    ;;
handover)  # handover S RUN ITEMS: in the background, wait for RUN/results.json, then stop stream S and restart it
    s=${2:-}; run=${3:-}; items=${4:-}
    case "$s" in A|B) ;; *) echo "handover: stream A or B, got '$s'" >&2; exit 2 ;; esac
    [ -n "$items" ] || { echo "handover: no queue items" >&2; exit 2; }
    alive "$s" || { echo "handover: stream $s is not running" >&2; exit 2; }
    [ -d "$run" ] || { echo "handover: no run folder $run" >&2; exit 2; }
    IFS=';' read -r -a "queue_$s" <<<"$items"
    check || exit 2  # the new items must run before the old stream is stopped for them
    env "CAMPAIGN_QUEUE_$s=$items" setsid bash "$0" _watch "$s" "$run" >/dev/null 2>&1 < /dev/null &
    echo "[campaign] stream $s: hands over to \"$items\" once $run finishes (watcher pid $!)"
    ;;
_watch)  # the handover's watcher; CAMPAIGN_QUEUE_<S> holds the new items and passes on to the new stream
    until [ -f "$3/results.json" ]; do sleep "${CAMPAIGN_POLL_S:-20}"; done
    kill -TERM -- "-$(cat "$state/$2.pid")" 2>/dev/null
    sleep "${CAMPAIGN_LOCK_S:-5}"  # the killed runs release their folder locks; a fine-tuning run just begun restarts later
    echo "[campaign] $(date -u +%FT%TZ) stream $2 handed over after $3" >>"$state/$2.log"
    setsid bash "$0" _stream "$2" >>"$state/$2.log" 2>&1 < /dev/null &
    echo $! >"$state/$2.pid"
    ;;
status)
    [ -f "$state/until" ] && echo "FT runs end by $(cat "$state/until") (CAMPAIGN_UNTIL)"
    for s in A B; do
        if alive "$s"; then echo "stream $s: running (pid $(cat "$state/$s.pid"))"; else echo "stream $s: stopped"; fi
        grep -h '^\[campaign\]\|^\[paper\]' "$state/$s.log" 2>/dev/null | tail -n 2 | cut -c1-200 | sed 's/^/    /'
    done
    shopt -s nullglob
    for log in "$out"/*/*/runs/*/metrics.jsonl; do
        run=$(dirname "$log")
        [ -f "$run/results.json" ] && continue
        echo "in flight: ${run#"$out"/} at epoch $(tail -n 1 "$log" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["epoch"])')"
    done
    ;;
stop)
    for s in A B; do
        if alive "$s"; then
            kill -TERM -- "-$(cat "$state/$s.pid")" 2>/dev/null
            echo "[campaign] stream $s stopped"
        fi
    done
    sleep 5  # the killed runs release their folder locks
    export PYTHONPATH="$root/src" HF_HUB_OFFLINE=1
    "$py" benchmarks/paper.py --output "$out" --results "$results" --park
    "$py" benchmarks/paper.py --output "$out" --results "$results" --collect "$results"
    "$py" benchmarks/paper_tables.py "$results" --output "$results/paper-tables.md" --json "$results/paper-tables.json"
    "$py" benchmarks/paper_cost.py "$results" --train-subset ontonotes=10000 multirc=1000 --eval-subset multirc=1000 | tail -n 12
    git status --short benchmarks | head -n 30
    ;;
*)
    echo "usage: $0 start | status | stop | check | handover S RUN ITEMS | restart S ITEMS" >&2
    exit 2
    ;;
esac
