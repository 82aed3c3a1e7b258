#!/usr/bin/env bash
# The paper's protocol for any backbone, e.g.:  benchmarks/paper.sh --model bert-large-cased --output runs/paper-large
# All options go to benchmarks/paper.py (see its --help); sweeps resume where they stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python}" "$here/paper.py" "$@"
