"""A quick version of benchmarks/crash_trials.py: SIGKILL at random moments, resume, same end result."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA, load_benchmark


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
def test_two_crash_trials_end_identical_to_an_uninterrupted_run(tmp_path):
    crash = load_benchmark("crash_trials")
    out = tmp_path / "crash.json"
    code = crash.main(["--trials", "2", "--kills", "1", "--seed", "1", "--data-dir", str(SHARED_DATA), "--json", str(out)])
    import json

    summary = json.loads(out.read_text())
    assert code == 0, summary["per_trial"]
    assert summary["identical_to_uninterrupted"] == 2 and summary["kills"] >= 1
