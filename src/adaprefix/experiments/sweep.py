"""Hyper-parameter sweeps on Optuna: resumable, optionally pruned, shareable between machines.

A trial is one configuration (method + grid values); it trains one run per seed, each an ordinary run
directory (``DIR/runs/<method>-<values>-s<seed>``) with its own checkpoints, and scores the mean dev
score over its seeds. The study lives in SQLite in DIR (or ``--storage``, e.g. PostgreSQL for several
machines). A killed sweep restarts where it stopped: finished trials are never rerun (Optuna's grid sampler
skips them, and a run with a results.json is read, not retrained), the interrupted run resumes from its
last checkpoint, and a trial whose worker died is retried (Optuna's heartbeat and RetryFailedTrialCallback).

Usage::

    spec = SweepSpec(task="rte", methods=["apt", "prefix"], grid={"lr": [5e-3, 1e-2]}, seeds=[11, 12],
                     output="sweeps/rte", base=TrainArgs(task="rte", output="", data_dir="../shared/data"))
    summary = run_sweep(spec)
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..tasks import get_task
from ..fileio import RunBusyError, exclusive_run
from ..training import TrainArgs, choosing_split, train
from .report import write_report

# Grid keys and how their values read; method and seed have their own options.
GRID_TYPES = {"lr": float, "prefix_len": int, "epochs": int, "batch_size": int, "attention_dropout": float,
              "gate_pooling": str, "token_gate_bias": float, "max_length": int, "shots": int, "grad_clip": float}
STUDY_NAME = "adaprefix-sweep"
SPEC_FILE = "sweep.json"


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["lr=5e-3,1e-2", "prefix_len=8,16"]`` -> ``{"lr": [0.005, 0.01], "prefix_len": [8, 16]}``."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values:
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. lr=5e-3,1e-2)")
        if key not in GRID_TYPES:
            raise ValueError(f"--grid {item!r}: {key!r} cannot be swept; choose from {sorted(GRID_TYPES)} "
                             "(methods: --method a,b; seeds: --seeds)")
        try:
            parsed = [GRID_TYPES[key](v.strip()) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--grid {item!r}: values of {key} must be {GRID_TYPES[key].__name__}s") from None
        if len(set(parsed)) != len(parsed):
            raise ValueError(f"--grid {item!r}: repeated values")
        grid[key] = parsed
    return grid


@dataclass
class SweepSpec:
    task: str
    methods: list[str]
    grid: dict[str, list]
    seeds: list[int]
    output: str
    base: TrainArgs  # every other train setting, passed through to each run
    sampler: str = "grid"  # grid | tpe
    trials: int | None = None  # tpe: how many configurations to try
    prune: bool = False
    storage: str | None = None
    jobs: int = 1
    progress: bool = True

    def check(self) -> None:
        if not self.methods or any(m not in ("apt", "prefix", "finetune") for m in self.methods):
            raise ValueError(f"--method: expected a comma list of apt, prefix, finetune; got {self.methods}")
        if not self.seeds:
            raise ValueError("--seeds: give at least one seed")
        if self.sampler not in ("grid", "tpe"):
            raise ValueError(f"--sampler must be grid or tpe, got {self.sampler!r}")
        if self.sampler == "tpe" and not self.trials:
            raise ValueError("--sampler tpe needs --trials N")
        if self.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {self.jobs}")

    def identity(self) -> dict:
        """What must not change when a sweep is resumed."""
        base = {k: v for k, v in dataclasses.asdict(self.base).items() if k not in ("output", "resume", "progress", "seed")}
        return {"task": self.task, "methods": self.methods, "grid": self.grid, "seeds": self.seeds,
                "sampler": self.sampler, "prune": self.prune, "base": base}

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.output).resolve() / 'study.db'}"


def run_name(method: str, params: dict, seed: int) -> str:
    values = "-".join(f"{k}{params[k]}" for k in sorted(params))
    return f"{method}-{values}-s{seed}" if values else f"{method}-s{seed}"


def _storage(spec: SweepSpec):
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if not spec.storage_url.startswith(("sqlite", "postgresql", "mysql")):
        return optuna.storages.get_storage(spec.storage_url)
    with warnings.catch_warnings():  # the heartbeat is marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # The heartbeat marks trials of a dead worker as failed; the callback enqueues them again.
        return RDBStorage(spec.storage_url, heartbeat_interval=15, grace_period=45,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))


def _study(spec: SweepSpec):
    import optuna

    if spec.sampler == "grid":
        sampler = optuna.samplers.GridSampler({"method": spec.methods, **spec.grid}, seed=0)
    else:
        sampler = optuna.samplers.TPESampler(seed=0)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if spec.prune else optuna.pruners.NopPruner()
    # One study per sweep folder name, so one shared database can hold several sweeps.
    return optuna.create_study(study_name=f"{STUDY_NAME}-{Path(spec.output).resolve().name}", storage=_storage(spec), sampler=sampler, pruner=pruner,
                               direction="maximize", load_if_exists=True)


def _objective(spec: SweepSpec):
    import optuna

    def objective(trial: "optuna.Trial") -> float:
        method = trial.suggest_categorical("method", spec.methods)
        params = {k: trial.suggest_categorical(k, v) for k, v in spec.grid.items()}
        scores, runs = [], []
        epochs = params.get("epochs", spec.base.epochs) or get_task(spec.task).default_epochs
        selection = get_task(spec.task).main_metric
        for index, seed in enumerate(spec.seeds):
            run_dir = Path(spec.output) / "runs" / run_name(method, params, seed)
            runs.append(str(run_dir))
            args = dataclasses.replace(spec.base, method=method, seed=seed, output=str(run_dir), resume=True,
                                       progress=spec.progress, **params)
            if method == "finetune":
                args = dataclasses.replace(args, prefix_len=None, prefix_source=None, token_gate=None,
                                           layer_gate=None, gate_pooling=None, token_gate_bias=None,
                                           prefix_projection=False)
            elif method != "apt":
                args = dataclasses.replace(args, token_gate=None, layer_gate=None, gate_pooling=None,
                                           token_gate_bias=None)

            def report(epoch: int, record: dict, index: int = index, seed: int = seed) -> None:
                if not spec.prune:
                    return
                # few-shot runs score the official dev set only when their own split improves: report that split
                trial.report(record[choosing_split(record)][selection], index * epochs + epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {epoch} of seed {seed}")

            results = finished_or_trained(args, report)
            metric = results["selection_metric"].split(".", 1)[1]
            scores.append(results["best"]["val"][metric])
        trial.set_user_attr("runs", runs)
        trial.set_user_attr("dev_scores", scores)
        return statistics.fmean(scores)

    return objective


def finished_or_trained(args: TrainArgs, on_epoch=None) -> dict:
    """The results of the run in ``args.output``: read when it finished earlier (this sweep, a resumed one, or a
    parallel worker), never retrained; else trained (resuming its checkpoint). A folder another process is
    training right now (parallel workers, or a duplicate trial: Optuna's grid sampler hands out a taken point
    again when every point is taken) is waited for, then read, instead of being trained twice at once."""
    done = Path(args.output) / "results.json"
    while True:
        if done.is_file():
            return json.loads(done.read_text(encoding="utf-8"))
        try:
            return train(args, on_epoch=on_epoch)
        except RunBusyError:
            print(f"{args.output}: another process is training it; waiting for it to finish", flush=True)
            with exclusive_run(Path(args.output), wait=True):
                pass


def _optimize(spec: SweepSpec, threads: int | None = None) -> None:
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if threads:
        import torch

        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study(spec)
    n_trials = spec.trials if spec.sampler == "tpe" else None
    if spec.sampler == "tpe":  # count trials already finished by earlier (killed) sweeps
        finished = sum(t.state.is_finished() for t in study.trials)
        n_trials = max(0, spec.trials - finished)
    if n_trials == 0:
        return
    # Optuna's grid sampler stops the study once every grid point has been tried.
    study.optimize(_objective(spec), n_trials=n_trials, catch=(RuntimeError,))


def _changed_settings(before: dict, now: dict) -> list[str]:
    """Names of the settings that differ between a stored sweep identity and this one. A training setting the
    stored sweep does not know (added to adaprefix after it began) counts as unchanged while it holds its
    default: it cannot have changed that sweep's runs, so a newer adaprefix can resume an older sweep."""
    defaults = TrainArgs.defaults()
    changed = sorted(k for k in now if k != "base" and before.get(k) != now[k])
    old_base, new_base = before.get("base", {}), now["base"]
    for key in sorted(set(old_base) | set(new_base)):
        if key not in old_base:
            same = key in defaults and new_base[key] == defaults[key]
        else:
            same = old_base[key] == new_base.get(key, defaults.get(key, old_base[key]))
        if not same:
            changed.append(f"base.{key}")
    return changed


def run_sweep(spec: SweepSpec) -> dict:
    """Run (or resume) the sweep; then write DIR/summary.md and summary.json. Returns the summary."""
    spec.check()
    out = Path(spec.output)
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / SPEC_FILE
    identity = json.loads(json.dumps(spec.identity(), default=str))
    if spec_path.is_file():
        before = json.loads(spec_path.read_text(encoding="utf-8"))
        changed = _changed_settings(before, identity)
        if changed:
            raise ValueError(f"{out} holds a sweep with other settings ({', '.join(changed)} differ); "
                             "resume it with the same options or choose another --output")
    else:
        spec_path.write_text(json.dumps(identity, indent=1) + "\n", encoding="utf-8")
    if spec.jobs == 1:
        _optimize(spec)
    else:
        import multiprocessing

        _study(spec)  # create the study once, before the workers race to
        threads = max(1, (os.cpu_count() or 1) // spec.jobs)
        ctx = multiprocessing.get_context("spawn")
        workers = [ctx.Process(target=_optimize, args=(spec, threads)) for _ in range(spec.jobs)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        failed = [w.exitcode for w in workers if w.exitcode]
        if failed:
            raise RuntimeError(f"{len(failed)} sweep worker(s) failed (exit codes {failed}); rerun to resume")
    return summarize(spec)


def summarize(spec: SweepSpec) -> dict:
    study = _study(spec)
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    runs = Path(spec.output) / "runs"
    extra = {"study": {"storage": spec.storage_url, "trials": states, "sampler": spec.sampler, "prune": spec.prune}}
    if not runs.is_dir() or not any(runs.rglob("results.json")):
        return extra
    _, doc = write_report([runs], Path(spec.output) / "summary", title=f"Sweep: {spec.task}", extra=extra)
    return doc
