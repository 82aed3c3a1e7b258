"""benchmarks/paper.py --park: a run stopped mid-training at a session's end is parked in the repository and the
next checkout's sweep resumes it to the same result as a run never stopped (packaged MiniLM, a CB slice)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import adaprefix.training as training
from adaprefix.cli import main
from adaprefix.fileio import exclusive_run
from conftest import SHARED_DATA, interrupt_after_checkpoint, load_benchmark

paper = load_benchmark("paper")

ARGS = ["train", "--task", "cb", "--method", "apt", "--epochs", "3", "--data-dir", str(SHARED_DATA),
        "--limit-train", "24", "--limit-eval", "12", "--batch-size", "8", "--no-progress", "--max-length", "64"]
SWEEP = ("main", "cb-apt-seeds")


def protocol(out: Path, repo: Path, dry_run: bool = False):
    return paper.Protocol(SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                                          results=str(repo / "results"), dry_run=dry_run))


def run_dir(out: Path, name: str = "apt-s12") -> Path:
    return out.joinpath(*SWEEP, "runs", name)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
def test_a_parked_run_resumes_in_a_fresh_checkout_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
    assert main([*ARGS, "--output", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full" / "results.json").read_text())

    repo, session1, session2 = tmp_path / "repo", tmp_path / "session1", tmp_path / "session2"
    cut = run_dir(session1)
    restore = interrupt_after_checkpoint(monkeypatch, 2)  # the session ends after epoch 2's checkpoint
    assert main([*ARGS, "--output", str(cut)]) == 130
    restore()
    finished_run = run_dir(session1, "apt-s11")  # a finished run is committed by --collect, never parked
    finished_run.mkdir(parents=True)
    (finished_run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (finished_run / "results.json").write_text("{}")

    parked = protocol(session1, repo).park()
    assert parked == [repo / "inflight" / "main" / "cb-apt-seeds" / "apt-s12"]
    assert "main/cb-apt-seeds/apt-s12 at epoch 2" in capsys.readouterr().out
    assert not (parked[0] / ".lock").exists() and (parked[0] / "checkpoint" / "trainable.safetensors").is_file()

    # the next session: a fresh output folder; the sweep's restore puts the parked run back, and it resumes
    protocol(session2, repo).restore(*SWEEP, session2.joinpath(*SWEEP))
    resumed_dir = run_dir(session2)
    assert "resumes from its parked checkpoint (epoch 2)" in capsys.readouterr().out
    state_file = resumed_dir / training.CHECKPOINT / training.STATE_FILE  # mark the parked part's CPU time
    training.torch.save({**training.torch.load(state_file, weights_only=True), "cpu_s": 1e6}, state_file)
    assert main([*ARGS, "--output", str(resumed_dir), "--resume"]) == 0
    resumed = json.loads((resumed_dir / "results.json").read_text())
    assert resumed["cpu_s"] > 1e6  # continued from the parked checkpoint, not trained afresh
    assert [e["val"] for e in resumed["epochs"]] == [e["val"] for e in full["epochs"]]
    assert [e["train_loss"] for e in resumed["epochs"]] == pytest.approx([e["train_loss"] for e in full["epochs"]],
                                                                         abs=1e-6)
    assert (resumed_dir / "adapter" / "adapter.safetensors").read_bytes() == \
        (tmp_path / "full" / "adapter" / "adapter.safetensors").read_bytes()

    # finished now: the parked copy is dropped, with the folders it leaves empty
    protocol(session2, repo).drop_finished_parked()
    assert not (repo / "inflight").exists() or not any((repo / "inflight").rglob("*"))


def fake_unfinished(run: Path, epoch: int, size: int = 100) -> Path:
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "trainer_state.pt").write_bytes(b"s" * size)
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in range(1, epoch + 1)))
    return run


def test_park_skips_runs_being_trained_and_runs_over_the_size_limit(tmp_path, capsys):
    out, repo = tmp_path / "paper", tmp_path / "repo"
    small = fake_unfinished(run_dir(out, "apt-s12"), 3)
    fake_unfinished(run_dir(out, "finetune-s12"), 1, size=3 * 2**20)
    busy = fake_unfinished(run_dir(out, "apt-s13"), 2)
    with exclusive_run(busy):
        parked = protocol(out, repo).park(limit_mb=2)
    said = capsys.readouterr().out
    assert parked == [repo / "inflight" / "main" / "cb-apt-seeds" / small.name]
    assert "finetune-s12 not parked (3 MB, over --park-limit-mb 2)" in said
    assert "apt-s13 is still training" in said


def test_restore_keeps_this_disks_own_checkpoint_and_committed_results_win(tmp_path, capsys):
    out, repo = tmp_path / "paper", tmp_path / "repo"
    parked = repo / "inflight" / "main" / "cb-apt-seeds"
    fake_unfinished(parked / "apt-s12", 2)
    fake_unfinished(parked / "apt-s13", 2)
    fake_unfinished(parked / "apt-s14", 2)
    own = fake_unfinished(run_dir(out, "apt-s12"), 4)  # this disk got further: its checkpoint stays
    committed = repo / "results" / "main" / "cb-apt-seeds" / "apt-s13"  # finished in a session since
    committed.mkdir(parents=True)
    (committed / "results.json").write_text('{"best": {}}')
    protocol(out, repo).restore(*SWEEP, out.joinpath(*SWEEP))
    assert paper.parked_epoch(own) == 4
    assert (run_dir(out, "apt-s13") / "results.json").read_text() == '{"best": {}}'
    assert not (run_dir(out, "apt-s13") / "checkpoint").exists()
    assert paper.parked_epoch(run_dir(out, "apt-s14")) == 2  # the only one put back
    assert capsys.readouterr().out.count("resumes from its parked checkpoint") == 1
    protocol(out, repo).drop_finished_parked()  # s13's copy is stale now; s12 and s14 still unfinished
    assert sorted(p.name for p in parked.iterdir()) == ["apt-s12", "apt-s14"]
