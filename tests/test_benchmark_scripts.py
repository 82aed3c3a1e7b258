"""The GPU benchmark is prepared for sessions that get a GPU: its smoke mode must keep running on the CPU. The CPU
campaign's queues must be runnable paper.py calls before a session starts them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_smoke_runs_and_reports_ratios(tmp_path):
    out = tmp_path / "gpu.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TRANSFORMERS_VERBOSITY="error")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--smoke", "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    (result,) = doc["results"]
    assert set(result["median_step_s"]) == {"finetune-bf16", "prefix-bf16", "apt-bf16", "peft-prefix-bf16"}
    layers, d, length, head = 2, 64, 16, 64 * 3 + 3  # the tiny shape, prefix 16, a 3-class head
    assert result["trainable"]["prefix-bf16"] == 2 * layers * d * length + head
    assert result["trainable"]["apt-bf16"] == 3 * layers * d * length + layers * length + layers + head
    assert all(v > 0 for v in result["ratios"].values()) and doc["adaprefix_commit"]


def campaign_check(tmp_path: Path, **queues: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, CAMPAIGN_OUT=str(tmp_path / "out"),
               CAMPAIGN_STATE=str(tmp_path / "state"), **queues)
    return subprocess.run(["bash", str(ROOT / "benchmarks" / "cpu_campaign.sh"), "check"], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cpu_campaign_queues_are_valid_paper_calls(tmp_path):
    proc = campaign_check(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    script = (ROOT / "benchmarks" / "cpu_campaign.sh").read_text()
    # every quoted item of the two queue arrays went through paper.py --dry-run
    items = [line for line in script.splitlines() if line.startswith('    "--phase ')]
    assert len(items) >= 10 and f"{len(items)} queue items checked" in proc.stdout
    assert not (tmp_path / "out").exists()  # a dry run trains and writes nothing


def test_cpu_campaign_check_names_the_item_that_would_fail(tmp_path):
    proc = campaign_check(tmp_path, CAMPAIGN_QUEUE_A="--phase main --tasks cb --methods apt",
                          CAMPAIGN_QUEUE_B="--phase ablations --tasks cb;--phase mian --tasks rte")
    assert proc.returncode == 1
    assert "stream B: item does not run: --phase mian --tasks rte" in proc.stderr


def wait_for(condition, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def stub_python(tmp_path: Path) -> tuple[Path, Path]:
    """(stub, calls): a stand-in python that logs each call's PYTHONPATH and arguments to ``calls``, one line each,
    and a state folder holding stream pid files."""
    calls, stub = tmp_path / "calls.log", tmp_path / "python"
    stub.write_text(f'#!/bin/sh\necho "$PYTHONPATH $@" >> {calls}\n'  # paper_deadline.py resolves CAMPAIGN_UNTIL
                    'case "$1" in *paper_deadline.py) echo 2026-12-08T01:30:00+00:00 ;; esac\n')
    stub.chmod(0o755)
    (tmp_path / "state").mkdir()
    return stub, calls


def fake_stream(state: Path, name: str) -> subprocess.Popen:
    """A sleeping process in its own group, recorded as stream ``name``'s pid: what stop and restart kill."""
    proc = subprocess.Popen(["setsid", "sleep", "300"])
    (state / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def test_cpu_campaign_handover_restarts_the_stream_after_the_run_finishes(tmp_path):
    # a stub python logs each paper.py call; a sleeping process stands in for the running stream A
    stub, calls = stub_python(tmp_path)
    state, run = tmp_path / "state", tmp_path / "run"
    run.mkdir()
    old = fake_stream(state, "A")
    env = dict(os.environ, PYTHON=str(stub), CAMPAIGN_OUT=str(tmp_path / "out"), CAMPAIGN_STATE=str(state),
               CAMPAIGN_TREE=str(tmp_path / "tree"), CAMPAIGN_POLL_S="0.1", CAMPAIGN_LOCK_S="0")
    script = str(ROOT / "benchmarks" / "cpu_campaign.sh")
    try:
        item = "--phase main --tasks conll03 --methods apt"
        proc = subprocess.run(["bash", script, "handover", "A", str(run), item], capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert f"--dry-run {item}" in calls.read_text()  # the new item was checked first
        assert not wait_for(lambda: old.poll() is not None, timeout=1.0)  # the run has not finished: stream A lives
        (run / "results.json").write_text("{}")
        assert wait_for(lambda: old.poll() is not None)  # then the old stream is stopped ...
        # ... and a new stream A runs the handed-over item (not a dry run) and records its pid
        assert wait_for(lambda: any(line.endswith(item) and "--dry-run" not in line
                                    for line in calls.read_text().splitlines()))
        assert int((state / "A.pid").read_text()) != old.pid
        assert "stream A handed over after" in (state / "A.log").read_text()
    finally:
        old.kill()


def test_cpu_campaign_restart_stops_one_stream_and_runs_it_on_a_worktree_of_head(tmp_path):
    # stream B (a sleeping process) is replaced at once by one on the new items, run from its own worktree of
    # HEAD; stream A (another sleeping process) is left running; B's runs are parked before the new stream starts
    stub, calls = stub_python(tmp_path)
    state, tree = tmp_path / "state", tmp_path / "tree"
    old = {s: fake_stream(state, s) for s in "AB"}
    env = dict(os.environ, PYTHON=str(stub), CAMPAIGN_OUT=str(tmp_path / "out"), CAMPAIGN_STATE=str(state),
               CAMPAIGN_TREE=str(tree), CAMPAIGN_UNTIL="01:30")
    script = str(ROOT / "benchmarks" / "cpu_campaign.sh")
    item = "--phase epochs --tasks ontonotes"
    try:
        proc = subprocess.run(["bash", script, "restart", "B", item], capture_output=True, text=True, env=env,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert wait_for(lambda: old["B"].poll() is not None) and old["A"].poll() is None
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        assert f"on commit {head} from {tree}-B" in proc.stdout
        assert wait_for(lambda: any(line.endswith(item) and "--dry-run" not in line
                                    for line in calls.read_text().splitlines()))
        lines = calls.read_text().splitlines()
        park = next(i for i, line in enumerate(lines) if line.endswith("--park"))
        run = next(i for i, line in enumerate(lines) if line.endswith(item) and "--dry-run" not in line)
        assert park < run and lines[run].startswith(f"{tree}-B/src ")  # parked first; the new tree's code
        # CAMPAIGN_UNTIL reaches every paper.py call of the new stream as the absolute time it was resolved to
        assert f"--until 2026-12-08T01:30:00+00:00 {item}" in lines[run]
        assert (Path(f"{tree}-B") / "benchmarks" / "paper.py").is_file()
        assert int((state / "B.pid").read_text()) != old["B"].pid
    finally:
        for p in old.values():
            p.kill()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", f"{tree}-B"], capture_output=True)


def test_cpu_campaign_handover_refuses_a_missing_run_folder(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    old = fake_stream(state, "A")
    env = dict(os.environ, PYTHON=sys.executable, CAMPAIGN_STATE=str(state))
    try:
        proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "cpu_campaign.sh"), "handover", "A",
                               str(tmp_path / "nowhere"), "--phase main --tasks cb"], capture_output=True, text=True,
                              env=env, timeout=60)
        assert proc.returncode == 2 and "no run folder" in proc.stderr
        assert old.poll() is None  # the running stream is left alone
    finally:
        old.kill()
