#!/usr/bin/env bash
# The paper protocol (benchmarks/paper.py) on a lent GPU machine: as many of its runs as fit in one prepared
# call, several streams at once, results sent back as one file. Finished runs are never retrained: the GPU's
# results live in their own tree (benchmarks/results/gpu-h200, the packed MiniLM is float16-rounded, so its
# numbers are not mixed with the CPU's) and paper.py puts them back before each sweep of a later call.
#
# Here, once per session (after the project's .venv is set up):
#   ../shared/tools/gpu-pack.sh                # .gpu-pack/: MiniLM (float16), the data, seqeval (~53 MB)
#   benchmarks/gpu_campaign.sh wheels          # + Optuna and its database layer as wheels (~4 MB)
# One device call (run tool: carry [".gpu-pack"], timeout_s 590):
#   bash benchmarks/gpu_campaign.sh run 450    # 450 s of training, then collect into $OUT/gpu-results.tgz
# Back here, with the reply's files_at folder F:
#   tar xzf F/gpu-results.tgz -C benchmarks/results
#   python benchmarks/paper_tables.py benchmarks/results/gpu-h200 --output benchmarks/results/gpu-h200/paper-tables.md
#
# Smoke test on any machine (no pack needed; tiny runs): benchmarks/gpu_campaign.sh run 60 -- --epochs 1 --limit-train 16
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-}
shift || true

if [ "$mode" = wheels ]; then
    # Optuna is not in the GPU image (see the device tool's KINDS.md); the rest of adaprefix's needs are.
    mkdir -p .gpu-pack/wheels
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu-pack/wheels optuna==5.0.0 alembic==1.20.1 colorlog==6.12.0 Mako==1.4.3 SQLAlchemy==2.1.9
    du -sh .gpu-pack/wheels
    exit 0
fi
if [ "$mode" != run ]; then
    echo "usage: $0 wheels | run BUDGET_SECONDS [-- flags for every sweep]" >&2
    exit 2
fi
budget=${1:-450}
shift || true
[ "${1:-}" = "--" ] && shift
extra=("$@")

if [ -f .gpu-pack/unpack.sh ]; then
    # shellcheck disable=SC1091
    source .gpu-pack/unpack.sh
    if ls .gpu-pack/wheels/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-site \
            .gpu-pack/wheels/*.whl && export PYTHONPATH="/tmp/gpu-site:$PYTHONPATH"
    fi
    data=${ADAPREFIX_DATA}
    py=python3
else
    data=${ADAPREFIX_DATA:-$root/../shared/data}
    py=${PYTHON:-$root/.venv/bin/python}
    export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
fi
device=$($py -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')")
echo "[gpu_campaign] device: $device; budget ${budget}s; extra: ${extra[*]:-none}"

results=benchmarks/results/gpu-h200
work=${TMPDIR:-/tmp}/paper-gpu
mkdir -p "$work/logs"
# Streams: (phase, tasks, methods). Each is one paper.py process; they write to different sweep folders.
# Order inside a stream is paper.py's; ablations and few-shot need the main table's chosen points, so they
# come after it in the streams that own those tasks.
streams=(
    "defaults|cb rte conll04|prefix"
    "main ablations|cb|apt"
    "main|cb copa wsc|prefix"
    "main|cb copa wsc|finetune"
    "main ablations|copa wsc|apt"
    "main|rte|prefix apt"
    "main|rte|finetune"
    "main|conll04 wic|prefix apt finetune"
)
threads=$(( $(nproc) / ${#streams[@]} ))
[ "$threads" -ge 1 ] || threads=1
pids=()
i=0
for s in "${streams[@]}"; do
    IFS='|' read -r phases tasks methods <<<"$s"
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$threads timeout --signal=TERM "$budget" $py benchmarks/paper.py --output "$work" \
        --results "$results" --data-dir "$data" --phase $phases --tasks $tasks --methods $methods \
        ${extra[@]:+-- "${extra[@]}"} >"$work/logs/stream-$i.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
done
for p in "${pids[@]}"; do wait "$p"; done
echo "[gpu_campaign] streams done (a stream cut by the budget loses only its run in progress)"
tail -n 3 "$work"/logs/*.log

collected=$work/collected
rm -rf "$collected"
$py benchmarks/paper.py --output "$work" --results "$results" --collect "$collected/gpu-h200" >/dev/null
runs=$(find "$collected" -name results.json | wc -l)
echo "[gpu_campaign] $runs finished runs collected"
dest=${OUT:-$work}
tar czf "$dest/gpu-results.tgz" -C "$collected" gpu-h200
tar czf "$dest/gpu-logs.tgz" -C "$work" logs
echo "[gpu_campaign] wrote $dest/gpu-results.tgz and gpu-logs.tgz"
