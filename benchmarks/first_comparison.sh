#!/usr/bin/env bash
# FT, P-tuning v2 and APT on CB and CoNLL04, packaged MiniLM, one seed, ten epochs, default settings.
# Usage: benchmarks/first_comparison.sh [DATA_DIR] [OUT_DIR] [SEED]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/first-comparison}
SEED=${3:-11}
export HF_HUB_OFFLINE=1
for task in cb conll04; do
  for method in finetune prefix apt; do
    run="$OUT/$task-$method-s$SEED"
    if [ -f "$run/results.json" ]; then continue; fi
    resume=""; [ -d "$run/checkpoint" ] && resume="--resume"
    adaprefix train --task "$task" --method "$method" --data-dir "$DATA" --epochs 10 --seed "$SEED" \
      --output "$run" --no-progress $resume
  done
done
python benchmarks/summarize.py "$OUT"
