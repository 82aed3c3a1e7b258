"""A quick version of benchmarks/crash_trials.py: SIGKILL at random moments, resume, same end result."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import SHARED_DATA

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "crash_trials.py"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
def test_two_crash_trials_end_identical_to_an_uninterrupted_run(tmp_path):
    spec = importlib.util.spec_from_file_location("crash_trials", SCRIPT)
    crash = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crash)
    out = tmp_path / "crash.json"
    code = crash.main(["--trials", "2", "--kills", "1", "--seed", "1", "--data-dir", str(SHARED_DATA), "--json", str(out)])
    import json

    summary = json.loads(out.read_text())
    assert code == 0, summary["per_trial"]
    assert summary["identical_to_uninterrupted"] == 2 and summary["kills"] >= 1
