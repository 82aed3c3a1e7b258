"""The paper's experiments as one resumable protocol of `adaprefix sweep` studies, for any backbone.

    python benchmarks/paper.py --output runs/paper [--model minilm] [--data-dir ../shared/data]
        [--phase defaults main ablations gates] [--tasks cb rte ...] [--methods prefix apt finetune]
        [--train-subset ontonotes=10000 ...] [--eval-subset multirc=1000 ...] [-- extra sweep flags]
    python benchmarks/paper.py --output runs/paper --collect benchmarks/results

Phases (each a list of sweeps; every sweep resumes where it stopped, finished runs are never retrained):

* ``defaults``: attention dropout 0.1 vs 0, gate pooling mean vs cls, token-gate bias 0 vs 3 (at lr 5e-3,
  1e-2, 2e-2), APT, prefix length 16, on CB (5 seeds), RTE and CoNLL04 (3 seeds). The arms at every default
  (dropout 0.1 where that is the backbone's, mean pooling, bias 0) are the same run as each other and as the main
  table's APT run at that lr, length 16 and seed: whichever finished first is copied, not retrained.
* ``main``: per task and method, stage 1 picks the learning rate on dev with the first seed (prefix methods
  5e-3 / 1e-2 / 2e-2 at length 16; FT 1e-5 / 3e-5 / 5e-5), stage 2 the length (8 vs 16) at that rate (16 is
  stage 1's run at that rate, copied rather than retrained), stage 3
  runs the remaining seeds at the chosen point (report over main/<task>-* groups seed 11 with them). Same epochs for every method of a task.
* ``ablations``: APT without token gate / without layer gate, PT2+ (parameter-matched to APT), PT2* (plan from
  the APT run's probe on train), at the main table's chosen APT point; where P-tuning v2's chosen lr differs from
  APT's, PT2+ and PT2* once more at PT2's lr (``<task>-pt2-plus-pt2-lr``, ``<task>-pt2-star-pt2-lr``).
* ``gates``: ``adaprefix probe`` (on train) of every seed's APT run at the main table's chosen point (COPA,
  CoNLL04, RTE, CB, WSC); ``paper_tables.py`` turns them into table 5 and its figure. A run whose adapter did not
  survive a fresh checkout (and has no committed probe) is retrained first, same point and seed, in
  ``gates/<task>-apt-s<seed>``; its probe then stands in for the original's (and sizes PT2+ / plans PT2*).
* ``epochs``: the rule "the best epoch is not the last", checked after the main table: where a prefix method's
  main-table run at its chosen point (any seed) peaked at the last epoch, PT2 and APT at their chosen points once
  more with :data:`EPOCH_CHECK_FACTOR` x the epochs (``epochs/<task>-<method>-epochs<N>``), both on the first seed
  (in the task's seed order) at which a run peaked at its last epoch: the run that asked for more epochs gets them.
  While a longer run still peaks at its last epoch, another round at :data:`EPOCH_CHECK_FACTOR` x that (at most
  :data:`EPOCH_CHECK_ROUNDS`: OntoNotes 8, 12, 18). NER's rate decays per epoch (0.95), a schedule that does not
  depend on the number of epochs, so there the longer run is the shorter one continued (its checkpoint, where this
  disk has it, resumed with more epochs); SuperGLUE's linear decay stretches instead, so its longer runs start afresh.
* ``longer``: NER tasks whose epoch check settled on more epochs than the main table's
  (:meth:`Protocol.settled_epochs`): the main table's row once more at those epochs, every method (FT too) and
  seed at its chosen point, in ``longer/<task>-<method>-epochs<N>``, each run its main run continued from its
  checkpoint where this disk has it (the epoch check's own run for its seed). SuperGLUE's linear decay would need
  fresh runs: not done here.
* ``edges``: where the main table chose a prefix method's lr at an edge of its grid (2e-2 or 5e-3), one run past
  it (:data:`EDGE_FACTOR`: 4e-2 or 2.5e-3) on the first seed at the chosen length, in
  ``edges/<task>-<method>-lr<LR>``: a grid whose edge binds would have chosen past it, so the main table's point
  may be limited by the grid rather than by the method.
* ``fewshot``: K = 16 and 32 per class on CB, RTE, WiC, COPA and CoNLL04, PT2 / APT / FT, five draws, each method
  at its main-table point (lr, and length for prefix methods; skipped until that is chosen); the epoch is chosen on
  K per class drawn from train, disjoint from the training draw (``--shots-dev``).

``--collect DIR`` copies every results.json (no checkpoints) to DIR/<phase>/<sweep>/<run>/results.json with the run's
val-predictions.json beside it (the best epoch's per-example dev predictions, for ``benchmarks/paired.py
--examples``), probe outputs beside them, and rebuilds DIR/<phase>/<sweep>.md with ``adaprefix report``.

``--park`` keeps what a session's end would lose: run folders live in ignored ``runs/``, so a run still training
when the session stops is gone with the checkout. Stop the streams first (a run being trained holds its folder's
lock and is skipped), then ``--park`` copies every unfinished run whose folder (checkpoint, best adapter, log) is
under ``--park-limit-mb`` (prefix methods: about 1 MB; full fine-tuning is far over it) to
``--inflight DIR/<phase>/<sweep>/<run>/``; commit that folder. The next session's sweep finds the run there, puts it
back and resumes it from its checkpoint (resumed runs are identical to uninterrupted ones: shuffling and dropout are
reseeded per epoch). Parked copies of runs that have since finished are dropped by ``--park`` and ``--collect``.

``--methods`` restricts the ``main`` and ``fewshot`` phases to some methods (their sweeps are per method), so two
processes can run different methods at once, e.g. ``--phase main --methods apt`` and ``--phase main --methods prefix``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/paper_deadline.py, also when this file is loaded by path (tests)
    sys.path.insert(0, str(HERE))
import paper_deadline  # noqa: E402  (--until: sweeps of runs that cannot be parked)

SEEDS_SMALL = [11, 12, 13, 14, 15]  # CB, COPA, WSC: small dev sets, large spread
SEEDS_LARGE = [11, 12, 13]
SMALL_TASKS = {"cb", "copa", "wsc"}
MAIN_TASKS = ["cb", "copa", "wsc", "rte", "wic", "conll04", "conll03", "multirc", "ontonotes"]
DEFAULTS_TASKS = ("cb", "rte", "conll04")
ABLATION_TASKS = ("cb", "rte", "copa", "conll04")
FEWSHOT_TASKS = ("cb", "rte", "wic", "copa", "conll04")
GATE_TASKS = ("copa", "conll04", "rte", "cb", "wsc")  # the paper's figure shows COPA and CoNLL04
SHOTS = (16, 32)
PREFIX_LRS = "5e-3,1e-2,2e-2"
FT_LRS = "1e-5,3e-5,5e-5"
METHODS = ("prefix", "apt", "finetune")
# Epochs where the task's default is too few for the protocol's rule (the best epoch must not be the last):
# at 20, CoNLL04's P-tuning v2 runs (seed 11, lr 1e-2 and 2e-2) peaked at epoch 19 with dev F1 still rising.
TASK_EPOCHS = {"conll04": 40}
EPOCH_CHECK_FACTOR = 1.5  # the epochs phase: how much longer than the main table its runs train
# checks in a row at most, each EPOCH_CHECK_FACTOR x the one before, while a longer run still peaks at its last
# epoch (OntoNotes at 5: 8, 12, 18 epochs). NER continues the shorter run's checkpoint, so a round costs its new epochs
EPOCH_CHECK_ROUNDS = 3
EPOCH_CHECK_METHODS = ("prefix", "apt")  # fine-tuning is left out: ~200x the parameters and not parkable
# Max lengths beside the task's default (128): a MultiRC paragraph, question and answer run to ~300 tokens and more,
# so at 128 most of the paragraph an answer needs is cut away
TASK_MAX_LENGTH = {"multirc": 512}
# The defaults phase: one sweep per setting, its default value listed first, at APT's length 16 (defaults: lr 1e-2)
DEFAULTS_SWEEPS = {"attention-dropout": ["lr=1e-2", "attention_dropout=0.1,0"],
                   "gate-pooling": ["lr=1e-2", "gate_pooling=mean,cls"],
                   "token-gate-bias": [f"lr={PREFIX_LRS}", "token_gate_bias=0,3"]}
AT_PT2_LR = "pt2-lr"  # suffix of the PT2+ / PT2* sweeps rerun at P-tuning v2's own lr
RUN_FILES = ("results.json", "val-predictions.json")  # what --collect keeps of a run (and restore puts back)
UNPARKABLE_METHODS = ("finetune",)  # over PARK_LIMIT_MB: under --until their sweeps start no run that would not end
PARK_LIMIT_MB = 4.0  # a parked run is committed: prefix-method runs (~1 MB) fit, fine-tuning ones (~350 MB) do not
ADAPREFIX = [sys.executable, "-m", "adaprefix.cli"]
EDGE_FACTOR = 2.0  # the edges phase: the lr one step past the grid's edge (2e-2 -> 4e-2, 5e-3 -> 2.5e-3)
EDGE_METHODS = ("prefix", "apt")  # the comparison the protocol is about; FT's edges would cost ~200x the parameters
PHASES = ("defaults", "main", "epochs", "longer", "edges", "ablations", "fewshot", "gates")  # a full run's order



def run_name(method: str, params: dict, seed: int) -> str:
    """The folder name ``adaprefix sweep`` gives a run (adaprefix.experiments.sweep.run_name)."""
    from adaprefix.experiments.sweep import run_name as sweep_run_name

    return sweep_run_name(method, params, seed)


def parse_grid(items: list[str]) -> dict[str, list]:
    """``--grid`` items parsed as ``adaprefix sweep`` parses them (so values name run folders the same way)."""
    from adaprefix.experiments.sweep import parse_grid as sweep_parse_grid

    return sweep_parse_grid(items)


@functools.lru_cache
def backbone_attention_dropout(model: str) -> float | None:
    """The backbone's own attention dropout (what ``attention_dropout: null`` trains with), or None where its
    config cannot be read here (a hub id offline)."""
    from transformers import AutoConfig

    from adaprefix.backbones.packaged import resolve_model

    try:
        return getattr(AutoConfig.from_pretrained(resolve_model(model)), "attention_probs_dropout_prob", None)
    except OSError:
        return None


def epochs_for(task: str) -> int:
    """The epochs every run of ``task`` trains in this protocol: :data:`TASK_EPOCHS`, else the task's default."""
    from adaprefix.tasks import get_task

    return TASK_EPOCHS.get(task, get_task(task).default_epochs)


def epochs_check_length(task: str, main_epochs: int | None = None) -> int:
    """The epochs the epochs phase's first round trains ``task`` for: :data:`EPOCH_CHECK_FACTOR` x the main
    table's epochs (default the protocol's), rounded up (CoNLL03: 15, OntoNotes: 8)."""
    return epochs_check_lengths(task, main_epochs)[0]


def epochs_check_lengths(task: str, main_epochs: int | None = None) -> list[int]:
    """The epochs of each of the epochs phase's :data:`EPOCH_CHECK_ROUNDS` rounds for ``task``, each
    :data:`EPOCH_CHECK_FACTOR` x the one before, rounded up (OntoNotes: [8, 12, 18]; RTE: [30, 45, 68])."""
    lengths, epochs = [], main_epochs or epochs_for(task)
    for _ in range(EPOCH_CHECK_ROUNDS):
        epochs = math.ceil(EPOCH_CHECK_FACTOR * epochs)
        lengths.append(epochs)
    return lengths


def epochs_check_sweeps(task: str, main_epochs: int | None = None, longer: int | None = None) -> dict[str, str]:
    """method -> the epochs phase's sweep for ``task`` at ``longer`` epochs (default: the first round's,
    :func:`epochs_check_length`), e.g. ``{"prefix": "conll03-prefix-epochs15", "apt": "conll03-apt-epochs15"}``."""
    longer = longer or epochs_check_length(task, main_epochs)
    return {m: f"{task}-{m}-epochs{longer}" for m in EPOCH_CHECK_METHODS}


def check_rounds(lengths: list[int], bests) -> tuple[list[int], int | None]:
    """The epoch check's rounds as far as the results go: (the rounds due, in order; the epochs the check settled
    on, or None while it has not). ``bests(N)`` gives the best epochs of round N's runs (every method's), or None
    while a method's run is not in. The next round is due while one of a round's runs peaked at its last epoch
    (N); the check settles on the first round where none did, or on the last round there is.

        check_rounds([8, 12, 18], {8: [8, 7], 12: [11, 10]}.get)  # ([8, 12], 12)
    """
    due = []
    for longer in lengths:
        due.append(longer)
        found = bests(longer)
        if found is None:
            return due, None
        if longer not in found or longer == lengths[-1]:
            return due, longer
    return due, None


def edge_lr(lr: float) -> float | None:
    """The lr one step past the prefix grid's edge that ``lr`` sits on (:data:`EDGE_FACTOR` up from the top,
    down from the bottom), or None where ``lr`` is inside it: ``edge_lr(0.02) == 0.04``, ``edge_lr(0.01) is None``."""
    grid = parse_grid([f"lr={PREFIX_LRS}"])["lr"]
    if math.isclose(lr, max(grid)):
        return max(grid) * EDGE_FACTOR
    if math.isclose(lr, min(grid)):
        return min(grid) / EDGE_FACTOR
    return None


def edge_sweep(task: str, method: str, lr: float) -> str:
    """The edges phase's sweep name: ``edge_sweep("cb", "apt", 0.04) == "cb-apt-lr0.04"``."""
    return f"{task}-{method}-lr{lr:g}"


def check_seed(task: str, late: list[tuple[str, int]]) -> int:
    """The seed the epoch check trains: the first, in ``task``'s seed order, of the (method, seed) main-table runs
    ``late`` that peaked at their last epoch (one seed for both methods, so APT - PT2 stays paired)."""
    return next(s for s in seeds_for(task) if any(s == late_seed for _, late_seed in late))


def continues_shorter_runs(task: str) -> bool:
    """Whether a longer run of ``task`` is its shorter run continued (``adaprefix train --resume --epochs N``):
    where the rate schedule does not depend on the number of epochs (NER), see training.epochs_may_grow."""
    from adaprefix.tasks import get_task
    from adaprefix.training import epochs_may_grow

    return epochs_may_grow(get_task(task))


def max_length_for(task: str) -> int:
    """The max length every run of ``task`` uses in this protocol: :data:`TASK_MAX_LENGTH`, else the task's."""
    from adaprefix.tasks import get_task

    return TASK_MAX_LENGTH.get(task, get_task(task).default_max_length)


def seeds_for(task: str) -> list[int]:
    return SEEDS_SMALL if task in SMALL_TASKS else SEEDS_LARGE


def csv(values) -> str:
    return ",".join(str(v) for v in values)


class Protocol:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.out = Path(ns.output)
        # runs parked unfinished (--park), committed beside the results: benchmarks/inflight by default
        self.inflight = Path(getattr(ns, "inflight", None) or Path(ns.results).parent / "inflight")
        self.common = ["--data-dir", ns.data_dir, "--model", ns.model, "--no-progress", *ns.extra]
        self.methods = [m for m in METHODS if m in (getattr(ns, "methods", None) or METHODS)]
        self.subsets: dict[str, int] = getattr(ns, "train_subset", None) or {}  # task -> N (--train-subset)
        self.eval_subsets: dict[str, int] = getattr(ns, "eval_subset", None) or {}  # task -> N (--eval-subset)
        until = getattr(ns, "until", None)
        self.deadline = paper_deadline.parse_until(until) if until else None  # Unix seconds (--until)

    def sweep(self, phase: str, name: str, task: str, methods: str, grid: list[str], seeds: list[int],
              extra: list[str] | None = None) -> Path:
        out = self.out / phase / name
        self.restore(phase, name, out)
        user_epochs = "--epochs" in self.common or "--epochs" in (extra or [])
        protocol = [] if user_epochs or task not in TASK_EPOCHS else ["--epochs", str(TASK_EPOCHS[task])]
        if "--max-length" not in self.common and task in TASK_MAX_LENGTH:
            protocol += ["--max-length", str(TASK_MAX_LENGTH[task])]
        for option, sizes in (("--train-subset", self.subsets), ("--eval-subset", self.eval_subsets)):
            if task in sizes and phase != "fewshot":  # few-shot draws K from the whole files
                protocol += [option, str(sizes[task])]
        cmd = [*ADAPREFIX, "sweep", "--task", task, "--method", methods, "--seeds", csv(seeds), "--output", str(out),
               *(["--grid", *grid] if grid else []), *self.common, *protocol, *(extra or [])]
        print(f"[paper] {phase}/{name}: {' '.join(cmd[3:])}", flush=True)
        if self.ns.dry_run:
            return out
        if self.deadline is None or not set(methods.split(",")) & set(UNPARKABLE_METHODS):
            subprocess.run(cmd, check=True)
            return out
        if "--epochs" not in cmd:  # the task's default, which this protocol always states: never here
            raise ValueError(f"--until needs the epochs of {phase}/{name} in its command")
        epochs = int(cmd[len(cmd) - cmd[::-1].index("--epochs")])  # the last --epochs wins, as argparse reads it
        paper_deadline.run_until(subprocess.Popen(cmd), out / "runs", epochs,
                                 paper_deadline.prior_epoch_seconds(Path(self.ns.results), task, "finetune"),
                                 self.deadline)
        return out

    def restore(self, phase: str, name: str, out: Path) -> None:
        """Put runs finished in earlier sessions (committed under --results) back, so the sweep reads them
        instead of training them again: run folders do not survive a fresh checkout, committed results do.
        Runs parked unfinished (--park) go back too, where this disk has no checkpoint of its own: the sweep then
        resumes them."""
        saved = Path(self.ns.results) / phase / name
        for results in sorted(saved.glob("*/results.json")) if saved.is_dir() else []:
            run = out / "runs" / results.parent.name
            if not (run / "results.json").is_file() and not self.ns.dry_run:
                run.mkdir(parents=True, exist_ok=True)
                copy_run_files(results.parent, run)
        parked = self.inflight / phase / name
        for source in sorted(p for p in parked.iterdir() if p.is_dir()) if parked.is_dir() else []:
            run = out / "runs" / source.name
            if (run / "results.json").is_file() or has_checkpoint(run) or not has_checkpoint(source):
                continue  # finished (here or committed), or this disk's own checkpoint is at least as new
            print(f"[paper] {phase}/{name}: {source.name} resumes from its parked checkpoint "
                  f"(epoch {parked_epoch(source)})", flush=True)
            if not self.ns.dry_run:
                shutil.copytree(source, run, dirs_exist_ok=True)

    def reuse(self, finished: Path, run: Path) -> None:
        """Give ``run`` the results, predictions and adapter of ``finished``, an identical configuration and seed
        run in another sweep, so that sweep reads them instead of training the same thing again (and the probe and
        PT2+ find the adapter there)."""
        if self.ns.dry_run or (run / "results.json").is_file() or not (finished / "results.json").is_file():
            return
        run.mkdir(parents=True, exist_ok=True)
        if (finished / "adapter").is_dir():
            shutil.copytree(finished / "adapter", run / "adapter", dirs_exist_ok=True)
        copy_run_files(finished, run)  # results.json last: a run with results is complete

    def baseline_runs(self, task: str, lr: float, seed: int) -> list[Path]:
        """Every run folder of the protocol that trains APT at (``lr``, length 16, ``seed``) with every other
        setting at its default: the main table's lr stage (first seed), its seeds stage (where that is its
        chosen point) and the defaults arms that hold the default (runs are deterministic: such an arm of
        CoNLL04 matched the main table's run at every one of its 40 epochs, to the last digit)."""
        main = self.out / "main"
        runs = []
        if seed == seeds_for(task)[0]:
            runs.append(main / f"{task}-apt-lr" / "runs" / run_name("apt", {"lr": lr}, seed))
        best = self.main_choice(task, "apt")
        if best is not None and float(best["lr"]) == lr and int(best["prefix_len"]) == 16 and seed != seeds_for(task)[0]:
            runs.append(main / f"{task}-apt-seeds" / "runs" / run_name("apt", {}, seed))
        arms = (self.default_arm(task, name, lr, seed) for name in DEFAULTS_SWEEPS)
        return runs + [arm for arm in arms if arm is not None]

    def default_arm(self, task: str, sweep: str, lr: float, seed: int) -> Path | None:
        """The run of the defaults sweep ``sweep`` at ``lr`` and ``seed`` whose varied setting holds its default,
        or None where that sweep has no such run (another lr; a backbone whose attention dropout is not 0.1)."""
        grid = parse_grid(DEFAULTS_SWEEPS[sweep])
        if lr not in grid["lr"]:
            return None
        (setting, values), = ((k, v) for k, v in grid.items() if k != "lr")
        default = values[0]  # each sweep lists the default first
        if setting == "attention_dropout" and backbone_attention_dropout(self.ns.model) != default:
            return None
        return self.out / "defaults" / f"{task}-{sweep}" / "runs" / run_name("apt", {"lr": lr, setting: default}, seed)

    def reuse_baseline(self, task: str, lr: float, seed: int, run: Path) -> None:
        """Copy into ``run`` (one of :meth:`baseline_runs`) a finished identical run, preferring one with its
        adapter (the probe and PT2+ read it). The sweep's committed results go back first: they win over a copy."""
        sweep = run.parent.parent
        self.restore(sweep.parent.name, sweep.name, sweep)
        others = [r for r in self.baseline_runs(task, lr, seed) if r != run and (r / "results.json").is_file()]
        others.sort(key=lambda r: not (r / "adapter").is_dir())
        if others:
            if not self.ns.dry_run and not (run / "results.json").is_file():
                print(f"[paper] {run}: the same run as {others[0]}; copied, not retrained", flush=True)
            self.reuse(others[0], run)

    @staticmethod
    def chosen(sweep_dir: Path, method: str, summary: Path | None = None) -> dict | None:
        """The configuration a sweep chose for ``method``: from its summary.json, or ``summary`` (a committed
        report of the sweep, which holds the same 'chosen' map)."""
        summary = summary or sweep_dir / "summary.json"
        if not summary.is_file():
            return None
        doc = json.loads(summary.read_text())
        return next((v for k, v in doc["chosen"].items() if k.endswith("/" + method)), None)

    def chosen_runs(self, task: str, method: str) -> list[Path]:
        """The run folders at the main table's chosen point of ``task`` and ``method`` (prefix methods), seed 11
        first, each one that holds a trained adapter: seed 11 from the len stage or, where that run is a copy
        without its adapter, the lr stage's identical run; the other seeds from the seeds stage. Seeds whose
        adapter is not on this disk (results restored from the repository) are left out with a line."""
        best = self.main_choice(task, method)
        if best is None:
            return []
        candidates = self.seed_runs(self.out / "main", task, method, best, "runs")
        if method == "apt":  # last resort: a retrained copy (the gates phase makes one where the adapter is lost)
            candidates = {seed: [*options, self.retrained_run(task, seed)] for seed, options in candidates.items()}
        runs = []
        for options in candidates.values():
            found = next((r for r in options if (r / "adapter").is_dir() and (r / "results.json").is_file()), None)
            if found is not None:
                runs.append(found)
            elif any((r / "results.json").is_file() for r in options):
                print(f"[paper] {options[0]}: finished, but its adapter is not on this disk (restored results); "
                      "not probed", flush=True)
        return runs

    def seed_runs(self, main: Path, task: str, method: str, best: dict, runs: str) -> dict[int, list[Path]]:
        """Per seed, the run folders at the chosen point ``best`` under a main/ tree (see :meth:`first_seed_runs`;
        the other seeds from the seeds stage)."""
        seeds = seeds_for(task)
        return {seeds[0]: self.first_seed_runs(main, task, method, best, runs),
                **{s: [main / f"{task}-{method}-seeds" / runs / run_name(method, {}, s)] for s in seeds[1:]}}

    def retrained_run(self, task: str, seed: int, committed: bool = False) -> Path:
        """Where the gates phase retrains the main table's APT run of ``seed`` whose adapter is lost (``committed``:
        where --collect puts that run under --results)."""
        sweep = retrained_sweep(task, seed)
        if committed:
            return Path(self.ns.results) / "gates" / sweep / run_name("apt", {}, seed)
        return self.out / "gates" / sweep / "runs" / run_name("apt", {}, seed)

    @staticmethod
    def first_seed_runs(main: Path, task: str, method: str, best: dict, runs: str) -> list[Path]:
        """The first seed's run folders at the chosen point ``best`` under a main/ tree: the len stage's run at
        the chosen length and, at length 16, the lr stage's identical run. ``runs``: the sweeps' run subfolder
        ("runs" in a sweep's output, "" in the committed layout of --collect)."""
        first = seeds_for(task)[0]
        options = [main / f"{task}-{method}-len" / runs / run_name(method, {"prefix_len": best["prefix_len"]}, first)]
        if int(best["prefix_len"]) == 16:
            options.append(main / f"{task}-{method}-lr" / runs / run_name(method, {"lr": best["lr"]}, first))
        return options

    # ------------------------------------------------------------ phases

    def defaults(self, tasks: list[str]) -> None:
        for task in [t for t in DEFAULTS_TASKS if t in tasks]:
            seeds = seeds_for(task)
            base = ["--prefix-len", "16"]
            for name, grid in DEFAULTS_SWEEPS.items():
                for seed in seeds:
                    for lr in parse_grid(grid)["lr"]:
                        arm = self.default_arm(task, name, lr, seed)
                        if arm is not None:
                            self.reuse_baseline(task, lr, seed, arm)
                self.sweep("defaults", f"{task}-{name}", task, "apt", grid, seeds, base)

    def main(self, tasks: list[str]) -> None:
        for task in [t for t in MAIN_TASKS if t in tasks]:
            seeds = seeds_for(task)
            for method in self.methods:
                lrs = FT_LRS if method == "finetune" else PREFIX_LRS
                extra = [] if method == "finetune" else ["--prefix-len", "16"]
                if method == "apt":  # the defaults phase may have trained these already
                    for lr in parse_grid([f"lr={lrs}"])["lr"]:
                        self.reuse_baseline(task, lr, seeds[0], self.out / "main" / f"{task}-apt-lr" / "runs" /
                                            run_name("apt", {"lr": lr}, seeds[0]))
                stage1 = self.sweep("main", f"{task}-{method}-lr", task, method, [f"lr={lrs}"], seeds[:1], extra)
                best = self.chosen(stage1, method)
                if best is None:
                    continue
                point = ["--lr", str(best["lr"])]
                if method != "finetune":
                    # length 16 at this lr is stage 1's run: the same configuration and seed (runs are
                    # deterministic; identical epoch by epoch, checked on CB), so it is copied, not retrained
                    self.reuse(stage1 / "runs" / run_name(method, {"lr": best["lr"]}, seeds[0]),
                               self.out / "main" / f"{task}-{method}-len" / "runs" /
                               run_name(method, {"prefix_len": 16}, seeds[0]))
                    stage2 = self.sweep("main", f"{task}-{method}-len", task, method, ["prefix_len=8,16"], seeds[:1],
                                        point)
                    length = (self.chosen(stage2, method) or {}).get("prefix_len", 16)
                    point += ["--prefix-len", str(length)]
                    if method == "apt" and length == 16:  # the defaults phase may have trained these already
                        for seed in seeds[1:]:
                            self.reuse_baseline(task, float(best["lr"]), seed, self.out / "main" /
                                                f"{task}-apt-seeds" / "runs" / run_name("apt", {}, seed))
                # seed 11 at the chosen point already ran in stage 1 or 2; `adaprefix report` over the task's
                # main/ folders groups it with these (same configuration)
                self.sweep("main", f"{task}-{method}-seeds", task, method, [], seeds[1:], point)

    def ablations(self, tasks: list[str]) -> None:
        for task in [t for t in ABLATION_TASKS if t in tasks]:
            seeds = seeds_for(task)
            best, point = self.main_choice(task, "apt"), self.main_point(task, "apt")
            if best is None:
                print(f"[paper] ablations/{task}: the main table's APT point is not there yet; skipped", flush=True)
                continue
            self.sweep("ablations", f"{task}-no-token-gate", task, "apt", [], seeds, [*point, "--no-token-gate"])
            self.sweep("ablations", f"{task}-no-layer-gate", task, "apt", [], seeds, [*point, "--no-layer-gate"])
            sized = self.first_apt_sizes(task)
            if sized is None:
                print(f"[paper] ablations/{task}: no seed-{seeds[0]} APT adapter (nor its committed results and probe "
                      "plan) to size PT2+ and plan PT2*; skipped", flush=True)
                continue
            run, plan = sized
            variants = {"pt2-plus": ["--match-params", str(run)], "pt2-star": ["--prefix-plan", str(plan)]}
            for name, flags in variants.items():
                self.sweep("ablations", f"{task}-{name}", task, "prefix", [], seeds, ["--lr", str(best["lr"]), *flags])
            # PT2+ and PT2* are P-tuning v2 variants: where PT2 chose another lr than APT, run them at PT2's too,
            # so a gap to APT is not just the learning rate
            pt2 = self.main_choice(task, "prefix")
            if pt2 is not None and float(pt2["lr"]) != float(best["lr"]):
                for name, flags in variants.items():
                    self.sweep("ablations", f"{task}-{name}-{AT_PT2_LR}", task, "prefix", [], seeds,
                               ["--lr", str(pt2["lr"]), *flags])

    def epochs(self, tasks: list[str]) -> None:
        """Where a main-table prefix run at its chosen point peaked at its last epoch, train every prefix method
        (of ``--methods``) at its chosen point with EPOCH_CHECK_FACTOR x the epochs, on the first seed at which a
        run peaked at its last (one seed for both methods, so APT - PT2 stays paired); while a longer run still
        peaks at its last epoch, once more with EPOCH_CHECK_FACTOR x that (at most EPOCH_CHECK_ROUNDS rounds).
        NER's longer runs continue the shorter run's checkpoint where this disk has it (:meth:`continue_run`)."""
        for task in [t for t in MAIN_TASKS if t in tasks]:
            points = {m: self.main_point(task, m) for m in EPOCH_CHECK_METHODS}
            if any(point is None for point in points.values()):
                print(f"[paper] epochs/{task}: the main table's PT2 and APT points are not both there yet; skipped",
                      flush=True)
                continue
            last = self.main_epochs(task)
            late = self.late_main_runs(task)
            if not late:
                print(f"[paper] epochs/{task}: no main-table prefix run peaked at its last epoch ({last}); "
                      "nothing to check", flush=True)
                continue
            seed = check_seed(task, late)
            methods = [m for m in EPOCH_CHECK_METHODS if m in self.methods]
            lengths = epochs_check_lengths(task, last)
            print(f"[paper] epochs/{task}: {', '.join(f'{m} seed {s}' for m, s in late)} peaked at the last epoch "
                  f"({last}); {lengths[0]} epochs on seed {seed}", flush=True)
            shorter = {m: self.main_run_folders(task, m, seed) for m in methods}  # what round 1 may continue
            for longer in lengths:
                names = epochs_check_sweeps(task, last, longer)
                runs = {m: self.out / "epochs" / names[m] / "runs" / run_name(m, {}, seed) for m in methods}
                for method in methods:
                    if continues_shorter_runs(task):
                        self.restore("epochs", names[method], self.out / "epochs" / names[method])
                        self.continue_run(shorter[method], runs[method])
                    self.sweep("epochs", names[method], task, method, [], [seed],
                               [*points[method], "--epochs", str(longer)])
                # the next round waits for both methods' results (another stream may train one)
                due, settled = check_rounds(lengths, lambda n: self.round_bests(task, seed, n))
                peaked = [m for m, best in (self.round_bests(task, seed, longer, by_method=True) or {}).items()
                          if best == longer]
                if settled == longer and peaked:
                    print(f"[paper] epochs/{task}: {', '.join(peaked)} still peaked at the last epoch ({longer}) "
                          f"after {len(lengths)} rounds; no further round", flush=True)
                if due[-1] == longer:  # settled here, or this round's results are not all in
                    break
                nxt = due[due.index(longer) + 1]
                print(f"[paper] epochs/{task}: {', '.join(peaked)} peaked at the last epoch again ({longer}); "
                      f"{nxt} epochs on seed {seed}", flush=True)
                shorter = {m: [run] for m, run in runs.items()}

    def late_main_runs(self, task: str) -> list[tuple[str, int]]:
        """(method, seed) of every main-table PT2 / APT run at its chosen point that peaked at its last epoch."""
        last = self.main_epochs(task)
        return [(method, seed) for method in EPOCH_CHECK_METHODS
                for seed, run in self.main_results(task, method).items()
                if json.loads(run.read_text()).get("best_epoch") == last]

    def settled_epochs(self, task: str) -> tuple[int, int] | None:
        """(epochs, seed) the epoch check settled on for ``task``: the first round where both methods' runs are
        in and neither peaked at its last epoch, or the last round's epochs where every round did (the check
        stops there); None while no round settled it (or none was due)."""
        late = self.late_main_runs(task)
        if not late:
            return None
        seed = check_seed(task, late)
        _, settled = check_rounds(epochs_check_lengths(task, self.main_epochs(task)),
                                  lambda n: self.round_bests(task, seed, n))
        return None if settled is None else (settled, seed)

    def round_bests(self, task: str, seed: int, longer: int, by_method: bool = False) -> list | dict | None:
        """The best epochs of the epoch check's ``longer``-epoch runs of ``seed`` (here or committed), one per
        method (``by_method``: as method -> best epoch), or None while a method's run is not in."""
        names = epochs_check_sweeps(task, longer=longer)
        found = {m: self.round_result("epochs", names[m], run_name(m, {}, seed)) for m in EPOCH_CHECK_METHODS}
        if None in found.values():
            return None
        bests = {m: json.loads(r.read_text()).get("best_epoch") for m, r in found.items()}
        return bests if by_method else list(bests.values())

    def longer(self, tasks: list[str]) -> None:
        """The main table's row at the epochs the epoch check settled on, for NER tasks (see the module's doc)."""
        for task in [t for t in MAIN_TASKS if t in tasks]:
            settled = self.settled_epochs(task)
            if settled is None:
                print(f"[paper] longer/{task}: the epoch check has not settled on more epochs; skipped", flush=True)
                continue
            if not continues_shorter_runs(task):
                print(f"[paper] longer/{task}: its rate decays over the whole run, so the main row at "
                      f"{settled[0]} epochs would be fresh runs; not done by this phase", flush=True)
                continue
            epochs, check_seed = settled
            for method in self.methods:
                point = self.main_point(task, method)
                if point is None:
                    print(f"[paper] longer/{task}-{method}: the main table's point is not there yet; skipped",
                          flush=True)
                    continue
                name = f"{task}-{method}-epochs{epochs}"
                self.restore("longer", name, self.out / "longer" / name)  # committed runs first: none is redone
                for seed in seeds_for(task):
                    run = self.out / "longer" / name / "runs" / run_name(method, {}, seed)
                    if method in EPOCH_CHECK_METHODS and seed == check_seed:  # the epoch check trained this one
                        # here or committed: on a fresh checkout only its committed results are left
                        check = self.round_result("epochs", epochs_check_sweeps(task, longer=epochs)[method], run.name)
                        if check is not None:
                            self.reuse(check.parent, run)
                    self.continue_run(self.main_run_folders(task, method, seed), run)
                self.sweep("longer", name, task, method, [], seeds_for(task), [*point, "--epochs", str(epochs)])

    def edges(self, tasks: list[str]) -> None:
        """One run past the grid's edge where the main table chose an edge lr (see the module's doc)."""
        for task in [t for t in MAIN_TASKS if t in tasks]:
            for method in [m for m in EDGE_METHODS if m in self.methods]:
                best = self.main_choice(task, method)
                if best is None:
                    print(f"[paper] edges/{task}-{method}: the main table's point is not there yet; skipped",
                          flush=True)
                    continue
                outward = edge_lr(float(best["lr"]))
                if outward is None:
                    print(f"[paper] edges/{task}-{method}: lr {best['lr']} is inside the grid; nothing to check",
                          flush=True)
                    continue
                self.sweep("edges", edge_sweep(task, method, outward), task, method, [], seeds_for(task)[:1],
                           ["--lr", f"{outward:g}", "--prefix-len", str(best["prefix_len"])])

    def round_result(self, phase: str, sweep: str, run: str) -> Path | None:
        """The results.json of run ``run`` of ``phase/sweep``: in this output folder, else the committed one."""
        for path in (self.out / phase / sweep / "runs" / run, Path(self.ns.results) / phase / sweep / run):
            if (path / "results.json").is_file():
                return path / "results.json"
        return None

    def main_run_folders(self, task: str, method: str, seed: int) -> list[Path]:
        """The main table's run folders of ``seed`` at the chosen point of ``task`` and ``method`` on this disk."""
        best = self.main_choice(task, method)
        if best is None:
            return []
        if method == "finetune":  # no length stage: seed 11 is the lr stage's run at the chosen lr
            main = self.out / "main"
            if seed == seeds_for(task)[0]:
                return [main / f"{task}-finetune-lr" / "runs" / run_name(method, {"lr": best["lr"]}, seed)]
            return [main / f"{task}-finetune-seeds" / "runs" / run_name(method, {}, seed)]
        return self.seed_runs(self.out / "main", task, method, best, "runs")[seed]

    def continue_run(self, shorter: list[Path], run: Path) -> None:
        """Seed ``run`` (a longer run not started here) with the checkpoint and log of the first of ``shorter``
        (the same settings, fewer epochs) that has one, so its sweep resumes it with more epochs instead of
        training its first epochs again: for NER that is the same run (rate 0.95 per epoch whatever the length).
        The longer run's results.json then lists the shorter plan in ``extended_from``."""
        if (run / "results.json").is_file() or has_checkpoint(run):
            return
        source = next((r for r in shorter if has_checkpoint(r)), None)
        if source is None:
            return
        print(f"[paper] {run}: continues {source} from its checkpoint (epoch {parked_epoch(source)})", flush=True)
        if self.ns.dry_run:
            return
        # all but results.json (the longer run is not finished) and hidden files (its lock, half-written temps)
        shutil.copytree(source, run, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results.json", ".*"))

    def main_epochs(self, task: str) -> int:
        """The epochs the main table's runs of ``task`` trained: ``-- --epochs N`` if given, else the protocol's."""
        if "--epochs" in self.common:
            return int(self.common[self.common.index("--epochs") + 1])
        return epochs_for(task)

    def main_results(self, task: str, method: str) -> dict[int, Path]:
        """Per seed, the results.json of the finished main-table run at the chosen point of ``task`` and
        ``method``: from this output folder or, where the run is not here, the committed results."""
        best = self.main_choice(task, method)
        if best is None:
            return {}
        here = self.seed_runs(self.out / "main", task, method, best, "runs")
        committed = self.seed_runs(Path(self.ns.results) / "main", task, method, best, "")
        found = {seed: next((r / "results.json" for r in [*here[seed], *committed[seed]]
                             if (r / "results.json").is_file()), None) for seed in here}
        return {seed: path for seed, path in found.items() if path is not None}

    def fewshot(self, tasks: list[str]) -> None:
        """K = 16 and 32 per class (sentences for NER), five draws (seeds); the epoch is chosen on K per class
        drawn from train, disjoint from the training draw (--shots-dev), and the official dev score at that
        epoch is reported: stricter than the common practice of choosing on the full dev set."""
        for task in [t for t in FEWSHOT_TASKS if t in tasks]:
            for shots in SHOTS:
                for method in self.methods:
                    point = self.main_point(task, method)
                    if point is None:
                        print(f"[paper] fewshot/{task}-k{shots}-{method}: the main table's point is not there yet; "
                              "skipped", flush=True)
                        continue
                    self.sweep("fewshot", f"{task}-k{shots}-{method}", task, method, [], SEEDS_SMALL,
                               [*point, "--shots", str(shots), "--shots-dev"])

    def main_choice(self, task: str, method: str) -> dict | None:
        """The main table's chosen configuration of ``task`` and ``method`` (its last stage's choice: the lr stage
        for fine-tuning, the len stage for prefix methods), or None while its stages have not chosen it. On a
        fresh checkout (no sweep folder here) the committed choice counts once every run of that stage is
        committed, so later phases need not wait for the main phase to run again."""
        stage = "lr" if method == "finetune" else "len"
        found = self.chosen(self.out / "main" / f"{task}-{method}-{stage}", method)
        if found is not None:
            return found
        committed = Path(self.ns.results) / "main" / f"{task}-{method}-{stage}"
        grid = [f"lr={FT_LRS}"] if method == "finetune" else ["prefix_len=8,16"]
        (setting, values), = parse_grid(grid).items()
        expected = [committed / run_name(method, {setting: v}, seeds_for(task)[0]) / "results.json" for v in values]
        if not all(r.is_file() for r in expected):
            return None
        return self.chosen(committed, method, committed.parent / f"{committed.name}.json")

    def main_point(self, task: str, method: str) -> list[str] | None:
        """:meth:`main_choice` as flags: ``--lr``, and ``--prefix-len`` for prefix methods."""
        best = self.main_choice(task, method)
        if best is None:
            return None
        return ["--lr", str(best["lr"])] + ([] if method == "finetune" else ["--prefix-len", str(best["prefix_len"])])

    def first_apt_sizes(self, task: str) -> tuple[Path, Path] | None:
        """(run folder, probe plan) of the main table's first-seed APT run at its chosen point, which size PT2+
        (its parameter count) and plan PT2* (its probe on train). Its adapter on this disk: probed here. Else
        (a fresh checkout) the committed run, whose results.json records the count, and its committed probe (or
        the gates phase's retrained copy and its probe)."""
        first = seeds_for(task)[0]
        live = [r for r in self.chosen_runs(task, "apt") if r.name.endswith(f"-s{first}")]
        if live:
            return live[0], self.probe(live[0], "train") / "plan.json"
        best = self.main_choice(task, "apt")
        if best is None:
            return None
        committed = self.first_seed_runs(Path(self.ns.results) / "main", task, "apt", best, "")
        for run in [*committed, self.retrained_run(task, first, committed=True)]:
            plan = collected_probe(run) / "plan.json"
            if (run / "results.json").is_file() and plan.is_file():
                return run, plan
        return None

    def probe(self, run: Path, split: str) -> Path:
        out = run / f"probe-{split}"
        if not (out / "plan.json").is_file() and not self.ns.dry_run:
            subprocess.run([*ADAPREFIX, "probe", str(run), "--split", split, "--output", str(out), "--no-progress",
                            "--data-dir", self.ns.data_dir], check=True)
        return out

    def gates(self, tasks: list[str]) -> None:
        """Probe every seed's APT run at the main table's chosen point on train (the gate table and figure show
        the spread over seeds; seed 11's probe is also PT2*'s plan)."""
        for task in [t for t in GATE_TASKS if t in tasks]:
            best, point = self.main_choice(task, "apt"), self.main_point(task, "apt")
            if best is None:
                print(f"[paper] gates/{task}: the main table's APT point is not there yet; skipped", flush=True)
                continue
            # a fresh checkout keeps the runs' results, not their adapters: retrain (runs are deterministic) each
            # finished seed that has neither an adapter here nor a committed probe, in a sweep of its own
            live = self.seed_runs(self.out / "main", task, "apt", best, "runs")
            committed = self.seed_runs(Path(self.ns.results) / "main", task, "apt", best, "")
            for seed, options in live.items():
                finished = any((r / "results.json").is_file() for r in options + committed[seed])
                has_adapter = any((r / "adapter").is_dir() for r in options)
                probed = any((collected_probe(r) / "gates.json").is_file()
                             for r in [*committed[seed], self.retrained_run(task, seed, committed=True)])
                if finished and not has_adapter and not probed:
                    print(f"[paper] gates/{task}: seed {seed}'s adapter is not on this disk; retrained to probe it",
                          flush=True)
                    self.sweep("gates", retrained_sweep(task, seed), task, "apt", [], [seed], point)
            for run in self.chosen_runs(task, "apt"):
                print(f"[paper] gates/{task}: probe {run}", flush=True)
                self.probe(run, "train")

    # ------------------------------------------------------------ results into the repository

    def collect(self, target: Path) -> None:
        for sweep in sorted(p.parent for p in self.out.glob("*/*/sweep.json")):
            phase, name = sweep.parent.name, sweep.name
            dest = target / phase / name
            copied = 0
            for results in sorted(sweep.glob("runs/*/results.json")):
                (dest / results.parent.name).mkdir(parents=True, exist_ok=True)
                copy_run_files(results.parent, dest / results.parent.name)
                copied += 1
            for probe in sorted(sweep.glob("runs/*/probe-*/")):
                pdest = dest / f"{probe.parent.name}-{probe.name}"
                pdest.mkdir(parents=True, exist_ok=True)
                for f in ("gates.json", "plan.json", "gates.png", "weights.png"):
                    if (probe / f).is_file():
                        shutil.copyfile(probe / f, pdest / f)
            if copied:
                subprocess.run([*ADAPREFIX, "report", str(dest), "--output", str(target / phase / name),
                                "--title", f"{phase}: {name}"], check=True, stdout=subprocess.DEVNULL)
        print(f"[paper] collected into {target}", flush=True)
        self.drop_finished_parked()

    def park(self, limit_mb: float = PARK_LIMIT_MB) -> list[Path]:
        """Copy every unfinished run with a checkpoint (and a folder under ``limit_mb``) to the in-flight folder,
        for the next session to resume; returns the copies. A run being trained right now is skipped: its lock
        is held, and a checkpoint copied mid-write could be torn."""
        from adaprefix.fileio import LOCK_NAME, RunBusyError, exclusive_run

        parked = []
        for run in sorted(p.parent for p in self.out.glob("*/*/runs/*/metrics.jsonl")):
            if (run / "results.json").is_file() or not has_checkpoint(run):
                continue
            phase, sweep = run.relative_to(self.out).parts[:2]
            label = f"{phase}/{sweep}/{run.name}"
            size_mb = sum(f.stat().st_size for f in run.rglob("*") if f.is_file()) / 2**20
            if size_mb > limit_mb:
                print(f"[paper] park: {label} not parked ({size_mb:.0f} MB, over --park-limit-mb {limit_mb:g}); "
                      "it restarts from epoch 1 next session", flush=True)
                continue
            dest = self.inflight / phase / sweep / run.name
            try:
                with exclusive_run(run):
                    tmp = dest.with_name(dest.name + ".tmp")
                    shutil.rmtree(tmp, ignore_errors=True)
                    shutil.copytree(run, tmp, ignore=shutil.ignore_patterns(LOCK_NAME))
                    shutil.rmtree(dest, ignore_errors=True)
                    tmp.rename(dest)
            except RunBusyError:
                print(f"[paper] park: {label} is still training (its lock is held); stop it first", flush=True)
                continue
            print(f"[paper] park: {label} at epoch {parked_epoch(dest)} ({size_mb:.1f} MB) -> {dest}", flush=True)
            parked.append(dest)
        self.drop_finished_parked()
        return parked

    def drop_finished_parked(self) -> None:
        """Parked copies whose run has finished since (here, or committed under --results) are no longer needed."""
        for source in sorted(p for p in self.inflight.glob("*/*/*") if p.is_dir()):
            phase, name = source.parent.parent.name, source.parent.name
            done = [self.out / phase / name / "runs" / source.name, Path(self.ns.results) / phase / name / source.name]
            if any((d / "results.json").is_file() for d in done):
                print(f"[paper] {phase}/{name}/{source.name} has finished: its parked copy is dropped", flush=True)
                shutil.rmtree(source)
        for folder in sorted(self.inflight.glob("*/*"), reverse=True) + sorted(self.inflight.glob("*")):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def parse_subsets(items: list[str], error=None, option: str = "--train-subset") -> dict[str, int]:
    """``["multirc=2000", ...]`` as ``{"multirc": 2000}`` (``option``: --train-subset or --eval-subset); a malformed
    item or unknown task goes to ``error`` (argparse's, which exits) or raises ValueError."""
    out = {}
    for item in items:
        task, _, size = item.partition("=")
        if task not in MAIN_TASKS or not size.isdigit() or int(size) < 1:
            message = f"{option} {item!r}: expected TASK=N with TASK one of {', '.join(MAIN_TASKS)} and N >= 1"
            if error is None:
                raise ValueError(message)
            error(message)
        out[task] = int(size)
    return out


def collected_probe(run: Path, split: str = "train") -> Path:
    """Where --collect puts the probe of a committed ``run`` (beside it: ``<run>-probe-<split>``)."""
    return run.parent / f"{run.name}-probe-{split}"


def retrained_sweep(task: str, seed: int) -> str:
    """The gates phase's sweep that retrains ``task``'s main-table APT run of ``seed`` (one sweep per seed: a
    sweep's seeds are part of its identity, and later sessions may miss other seeds)."""
    return f"{task}-apt-s{seed}"


def has_checkpoint(run: Path) -> bool:
    """Whether ``run`` holds a checkpoint that ``--resume`` continues from."""
    from adaprefix.training import find_checkpoint

    return find_checkpoint(run) is not None


def parked_epoch(run: Path) -> int:
    """The last epoch in ``run``'s log (the checkpoint's, unless a stop came between the log line and it)."""
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").is_file() else []
    return json.loads(lines[-1])["epoch"] if lines else 0


def copy_run_files(src: Path, dest: Path) -> None:
    """A run's results.json and val-predictions.json (where it has one) from ``src`` into ``dest``."""
    for name in RUN_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="runs/paper", help="where sweeps and runs go (default: runs/paper)")
    p.add_argument("--model", default="minilm", help="packaged name, folder or hub id (default: minilm)")
    p.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--phase", nargs="+", default=list(PHASES), choices=PHASES)
    p.add_argument("--tasks", nargs="+", default=MAIN_TASKS)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="methods of the main, epochs, longer and fewshot phases (default: all); other phases are "
                   "unaffected")
    p.add_argument("--collect", metavar="DIR", help="copy results.json files and rebuild tables in DIR, then stop")
    p.add_argument("--results", default=str(HERE / "results"),
                   help="committed results of earlier sessions, put back before each sweep (default: benchmarks/results)")
    p.add_argument("--train-subset", nargs="+", default=[], metavar="TASK=N",
                   help="train TASK's full-data runs (not few-shot) on a fixed random N of its training records, the "
                        "same for every run: a stated subset where the budget cannot take the whole task, e.g. "
                        "ontonotes=10000 on a CPU (the tables mark such rows)")
    p.add_argument("--eval-subset", nargs="+", default=[], metavar="TASK=N",
                   help="score TASK's full-data runs on a fixed random N of its dev (and NER test) records, the same "
                        "for every run (MultiRC: whole questions), where scoring the whole dev set every epoch is most "
                        "of the cost, e.g. multirc=1000 on a CPU (the tables mark such rows)")
    p.add_argument("--park", action="store_true",
                   help="copy unfinished runs (checkpoint, adapter, log) under --park-limit-mb to --inflight for the "
                        "next session to resume, then stop; stop the streams first")
    p.add_argument("--park-limit-mb", type=float, default=PARK_LIMIT_MB,
                   help=f"largest run folder --park copies (default {PARK_LIMIT_MB:g}: prefix methods fit, FT does not)")
    p.add_argument("--inflight", help="where --park puts unfinished runs and sweeps look for them (default: "
                                      "inflight/ beside --results, i.e. benchmarks/inflight)")
    p.add_argument("--until", metavar="TIME",
                   help="HH:MM (UTC) or an ISO date and time: sweeps of runs that cannot be parked (FT) start no run "
                        "projected to end after it, and stop at the first such run (it trains in a later session)")
    p.add_argument("--dry-run", action="store_true", help="print the sweeps without running them")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="after --: flags passed to every sweep (e.g. -- --epochs 10)")
    ns = p.parse_args(argv)
    ns.extra = [x for x in ns.extra if x != "--"]
    ns.train_subset = parse_subsets(ns.train_subset, p.error)
    ns.eval_subset = parse_subsets(ns.eval_subset, p.error, "--eval-subset")
    try:
        ns.until and paper_deadline.parse_until(ns.until)
    except ValueError as error:
        p.error(str(error))
    protocol = Protocol(ns)
    if ns.collect:
        protocol.collect(Path(ns.collect))
        return 0
    if ns.park:
        protocol.park(ns.park_limit_mb)
        return 0
    for phase in ns.phase:
        getattr(protocol, phase)(ns.tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
