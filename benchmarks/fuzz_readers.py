"""Full property-based fuzz of every reader and of `adaprefix predict` inputs (tests/test_fuzz_readers.py, marker
``fuzz``), one thread, then a table of cases, accepted and refused files per reader.

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/fuzz_readers.py --cases 10000 \
        --out benchmarks/notes/fuzz-readers.json > fuzz-readers.log 2>&1 &

Exit status: pytest's (0 when no reader raised anything but DataError).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="hypothesis cases per reader (default: 10000)")
    parser.add_argument("--out", default="fuzz-readers.json", help="per-reader counts (JSON)")
    parser.add_argument("-k", default=None, help="pytest -k expression, e.g. conll04")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.unlink(missing_ok=True)
    os.environ.update(ADAPREFIX_FUZZ_CASES=str(args.cases), ADAPREFIX_FUZZ_REPORT=str(out), HF_HUB_OFFLINE="1",
                      OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    import pytest

    start = time.time()
    argv = ["-m", "fuzz", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_fuzz_readers.py")]
    code = pytest.main(argv + (["-k", args.k] if args.k else []))
    counts = json.loads(out.read_text()) if out.is_file() else {}
    print(f"\n{'reader':<18} {'cases':>7} {'accepted':>9} {'refused':>8}   ({time.time() - start:.0f} s, exit {int(code)})")
    for reader, c in counts.items():
        print(f"{reader:<18} {c.get('cases', 0):>7} {c.get('accepted', 0):>9} {c.get('refused', 0):>8}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
