"""How much CPU time the rest of the paper protocol (``benchmarks/paper.py``) needs, measured from the committed runs.

    python benchmarks/paper_cost.py [RESULTS] [--data-dir ../shared/data] [--model minilm] [--sample 1500]
        [--streams 2] [--json cost.json] [--train-subset ontonotes=10000 ...]

RESULTS is the collected results folder (default: benchmarks/results, laid out as
``<phase>/<sweep>/<run>/results.json``). The report (markdown, on stdout) has:

* per task of ``paper.MAIN_TASKS``: training examples, mean tokens per training example (a seeded sample of at most
  ``--sample`` train records tokenised with the backbone's tokenizer, truncated at the task's default max length;
  pairs as (text_a, text_b), multiple choice summed over its rows, NER words joined with spaces), the protocol's
  epochs (``paper.epochs_for``), token-epochs (examples x mean tokens x epochs; under ``--train-subset TASK=N``
  or ``--eval-subset TASK=M``, (the N trained + EVAL_WEIGHT x the M, or all, scored per epoch) x mean tokens x
  epochs), and the measured seconds per run
  (``cost_seconds``: CPU time ``cpu_s`` where a one-thread CPU run recorded it, else ``wall_s``) of every committed
  full-data run (no ``shots``) per method and over all methods;
* where a (task, method) has no measured run, an estimate: token-epochs x that method's seconds per token-epoch,
  a least-squares ratio through the origin over the tasks where the method was measured (the overall ratio over
  per-task means where the method has none), times the task's pilot factor where ``side/`` holds short runs of it
  (``pilot_factors``: a task of long sequences, MultiRC at 512 tokens, costs several times more per token than
  the short-sequence tasks the ratio was fitted on);
* few-shot runs, unless measured: seconds per token-epoch x mean tokens x epochs x (K-shot train examples +
  EVAL_WEIGHT x (the K-shot selection split + f x dev and, for NER, test)), dev records assumed as long as
  train's; f is the measured share of epochs at which committed few-shot runs scored dev and test (since
  ``--eval-every-epoch`` became opt-in they are scored only when the selection split improves; 1 before any such
  run is committed); a rough estimate (the ratio was fitted on runs whose evaluation it already absorbs, and the
  per-run start-up is ignored);
* per phase and task: runs the protocol makes, runs present, remaining (never below 0 per sweep) and their
  single-thread hours; totals per phase, the grand total, and wall-clock hours at ``--streams`` parallel runs
  (total / streams: the measured seconds are per-run times of one single-threaded stream).

Runs copied rather than trained (the main table's length-16 run of a prefix method is the lr stage's run, copied
into the len stage: its ``train_args.output`` names another sweep) are neither counted as present nor measured twice.
The ablations' extra arms (PT2+ and PT2* at P-tuning v2's own lr) are counted where the committed main table shows
PT2's and APT's chosen lrs differ, and named as not yet known where either lr stage is incomplete. The gates phase
(probes of finished runs; it trains only to replace an adapter a fresh checkout lost) is not counted. The epochs
phase (``EPOCH_CHECK_FACTOR`` x the epochs for one seed of PT2 and APT) is counted for the tasks whose
committed main-table PT2 or APT runs already show a run that peaked at its last epoch, priced at that factor x a
protocol run's seconds; tasks whose cells are still partial and show no such peak yet are named as not known.
Runs trained for other epochs than the protocol's (the epochs phase, side checks) are not measured: seconds per
run assume the protocol's epochs.
Runs parked by ``paper.py --park`` (``--inflight``, default ``inflight/`` beside RESULTS) resume from their last
epoch: the share of a run each has trained is left out of its sweep's hours (not of its remaining runs).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # benchmarks/paper.py, also when this file is loaded by path (tests)
    sys.path.insert(0, str(HERE))
import paper  # noqa: E402  (the protocol's tasks, seeds and grids)

METHODS = ("finetune", "prefix", "apt")  # column order
LABEL = {"finetune": "FT", "prefix": "PT2", "apt": "APT"}
PREFIX_METHODS = ("prefix", "apt")
PHASES = ("defaults", "main", "ablations", "fewshot", "epochs", "longer", "edges")
ABLATIONS = {"no-token-gate": "apt", "no-layer-gate": "apt", "pt2-plus": "prefix", "pt2-star": "prefix"}
EVAL_WEIGHT = 1 / 3  # cost of scoring one example relative to training on it (forward vs forward + backward)
NER_FAMILY = "ner"
Tokenizer = Callable[..., dict]


# ---------------------------------------------------------------- tasks: examples and tokens


def record_inputs(record: Any) -> list[tuple[str, str | None]]:
    """The (text_a, text_b) inputs one record is encoded as: one pair; a row per choice; NER words joined."""
    if hasattr(record, "rows"):
        return [(a, b) for a, b in record.rows]
    if hasattr(record, "words"):
        return [(" ".join(record.words), None)]
    return [(record.text_a, record.text_b)]


def count_tokens(record: Any, tokenizer: Tokenizer, max_length: int) -> int:
    """Tokens the encoder sees for ``record`` (special tokens included, truncated at ``max_length`` per input)."""
    return sum(len(tokenizer(a, b, truncation=True, max_length=max_length)["input_ids"])
               for a, b in record_inputs(record))


def sample_records(records: list, size: int, seed: int = 0) -> list:
    """At most ``size`` records drawn without replacement with ``seed`` (all of them, in order, when fewer)."""
    if len(records) <= size:
        return list(records)
    return [records[i] for i in sorted(random.Random(seed).sample(range(len(records)), size))]


def mean_tokens(records: list, tokenizer: Tokenizer, max_length: int, sample: int, seed: int = 0) -> float:
    """Mean tokens per record over a seeded sample of at most ``sample`` records."""
    drawn = sample_records(records, sample, seed)
    return sum(count_tokens(r, tokenizer, max_length) for r in drawn) / len(drawn) if drawn else 0.0


def few_shot_sizes(records: list, shots: int, seed: int = paper.SEEDS_SMALL[0]) -> tuple[int, int]:
    """(training draw, selection split) sizes of a K-shot run, drawn by ``adaprefix.tasks.fewshot`` itself with the
    protocol's first draw seed: K per label (fewer where a label has fewer; the selection split takes K of what the
    draw left), K sentences for NER, K questions (with all their answers) for MultiRC."""
    from adaprefix.tasks.fewshot import few_shot_dev_split, sample_few_shot

    if not records:
        return 0, 0
    train, drawn = sample_few_shot(records, shots, seed)
    select, _ = few_shot_dev_split(records, drawn, shots, seed)
    return len(train), len(select)


@dataclass
class TaskStats:
    task: str
    examples: int
    mean_tokens: float
    epochs: int
    eval_examples: int  # scored every epoch: dev, and test for NER
    few_shot: dict  # K -> [train draw, selection split]
    subset: int | None = None  # full-data runs train on this many records (paper.py --train-subset)
    eval_subset: int | None = None  # and score this many dev (and NER test) records (paper.py --eval-subset)
    eval_splits: tuple[int, ...] = ()  # eval_examples split by split (dev, test)

    @property
    def token_epochs(self) -> float:
        """Per full-data run: training examples x mean tokens x epochs. Under a subset (of train or of dev), the
        examples trained plus EVAL_WEIGHT x the examples scored each epoch, which no longer stay a small share of
        the work (rough, as few-shot's)."""
        if self.subset is None and self.eval_subset is None:
            return token_epochs(self.examples, self.mean_tokens, self.epochs)
        trained = min(self.subset or self.examples, self.examples)
        return token_epochs(trained + EVAL_WEIGHT * self.scored_examples, self.mean_tokens, self.epochs)

    @property
    def scored_examples(self) -> int:
        """Dev (and NER test) records scored per epoch: under --eval-subset N, N of each split (MultiRC's whole
        questions overshoot N by part of one question: ignored)."""
        if self.eval_subset is None:
            return self.eval_examples
        return sum(min(self.eval_subset, n) for n in (self.eval_splits or (self.eval_examples,)))


def token_epochs(examples: float, tokens: float, epochs: float) -> float:
    return examples * tokens * epochs


def load_tokenizer(model: str):
    """The tokenizer ``adaprefix train --model MODEL`` uses (packaged name resolved as the package does)."""
    from transformers import AutoTokenizer

    from adaprefix.backbones.packaged import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(model))


def task_stats(name: str, data_dir: str | Path, tokenizer: Tokenizer, sample: int,
               subset: int | None = None, eval_subset: int | None = None) -> TaskStats:
    from adaprefix.tasks import get_task

    task = get_task(name)
    train = task.load("train", data_dir)
    splits = (len(task.load("val", data_dir)),) + ((len(task.load("test", data_dir)),) if task.family == NER_FAMILY else ())
    few = {k: list(few_shot_sizes(train, k)) for k in paper.SHOTS} if name in paper.FEWSHOT_TASKS else {}
    return TaskStats(name, len(train), mean_tokens(train, tokenizer, paper.max_length_for(name), sample),
                     paper.epochs_for(name), sum(splits), few, subset, eval_subset, splits)


# ---------------------------------------------------------------- committed runs


@dataclass
class RunRecord:
    phase: str
    sweep: str
    task: str
    method: str
    seconds: float  # cost_seconds(): the run's single-thread cost
    shots: int | None
    copied: bool  # a copy of a run trained in another sweep
    official_scored: float | None = None  # few-shot runs scoring dev/test lazily: share of epochs that scored them
    epochs: int | None = None  # the epochs it was scheduled for
    train_examples: int | None = None  # records it trained on per epoch
    scored_examples: int | None = None  # dev (and test) records it scored per epoch

    @property
    def protocol_epochs(self) -> bool:
        """Scheduled for the protocol's epochs of its task (unknown counts as yes): a run to measure seconds by."""
        return self.epochs is None or self.epochs == paper.epochs_for(self.task)


def is_copy(doc: dict, phase: str, sweep: str) -> bool:
    """True when the run was trained in another sweep of the protocol (its output folder is
    ``.../<phase>/<sweep>/runs/<run>`` for another phase or sweep: the longer phase's sweeps share their names with
    the epoch check's), which counts it. A run trained outside the protocol (a side check, ``runs/side/...``) and
    committed as a protocol run is no copy: nothing else counts it, except in the longer phase, whose only runs
    not trained there are the epoch check's (counted by the epochs phase, wherever they trained)."""
    output = (doc.get("train_args") or {}).get("output")
    if not output:
        return False
    parts = Path(output).parts
    if phase == "longer":
        return len(parts) < 4 or parts[-4] != "longer"
    return len(parts) >= 4 and parts[-2] == "runs" and parts[-4] in paper.PHASES and (parts[-4], parts[-3]) != (
        phase, sweep)


def cost_seconds(doc: dict) -> float:
    """A run's cost in single-thread seconds: its CPU time where it ran on the CPU with one torch thread and
    recorded it (``cpu_s``; other processes sharing the cores stretch ``wall_s`` but hardly ``cpu_s``), else
    ``wall_s``."""
    cpu_s = doc.get("cpu_s")
    if cpu_s is not None and doc.get("torch_threads") == 1 and doc.get("device", "cpu") == "cpu":
        return float(cpu_s)
    return float(doc["wall_s"])


def read_run(path: Path) -> RunRecord:
    """One ``<phase>/<sweep>/<run>/results.json``."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    sweep, phase = path.parent.parent.name, path.parent.parent.parent.name
    args = doc.get("train_args") or {}
    epochs = doc.get("epochs") or []
    lazy = args.get("shots_dev") and args.get("eval_every_epoch") is False  # the key exists since lazy scoring
    scored = sum("val" in e for e in epochs) / len(epochs) if lazy and epochs else None
    scored_per_epoch = (doc["val_examples"] + doc.get("test_examples", 0)) if "val_examples" in doc else None
    return RunRecord(phase, sweep, doc["task"], doc["method"], cost_seconds(doc), args.get("shots"),
                     is_copy(doc, phase, sweep), scored, args.get("epochs"), doc.get("train_examples"),
                     scored_per_epoch)


def read_runs(root: Path) -> list[RunRecord]:
    """Every readable run under ``root``; unreadable ones are skipped with a line on stderr."""
    runs = []
    for path in sorted(root.glob("*/*/*/results.json")):
        try:
            runs.append(read_run(path))
        except (ValueError, KeyError, TypeError) as err:
            print(f"[paper_cost] {path}: skipped ({type(err).__name__}: {err})", file=sys.stderr)
    return runs


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def measured_seconds(runs: Iterable[RunRecord]) -> dict[tuple[str, str], tuple[float, int]]:
    """(task, method) -> (mean cost_seconds, runs) over trained full-data runs (no shots, no copies) of the
    protocol's epochs."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        if r.shots is None and not r.copied and r.protocol_epochs:
            groups[(r.task, r.method)].append(r.seconds)
    return {key: (_mean(v), len(v)) for key, v in groups.items()}


def measured_task_seconds(runs: Iterable[RunRecord]) -> dict[str, tuple[float, int]]:
    """task -> (mean cost_seconds, runs) over its trained full-data runs of every method (protocol's epochs)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        if r.shots is None and not r.copied and r.protocol_epochs:
            groups[r.task].append(r.seconds)
    return {task: (_mean(v), len(v)) for task, v in groups.items()}


def measured_few_shot_seconds(runs: Iterable[RunRecord]) -> dict[tuple[str, str, int], float]:
    """(task, method, K) -> mean cost_seconds of the trained few-shot runs."""
    groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in runs:
        if r.shots is not None and not r.copied:
            groups[(r.task, r.method, int(r.shots))].append(r.seconds)
    return {key: _mean(v) for key, v in groups.items()}


def pilot_factors(runs: Iterable[RunRecord], stats: dict[str, "TaskStats"],
                  rates: "Rates") -> dict[tuple[str, str], tuple[float, int]]:
    """(task, method) -> (factor, runs): how many times the cross-task fit's seconds per token-epoch the task's own
    pilot runs of that method (``side/`` runs on a slice of it, e.g. ``--train-subset 160 --eval-subset 96
    --epochs 1``) took, the mean over them; (task, "all") over its pilots of every method. A task of much longer
    sequences (MultiRC at 512 tokens) costs more per token than the short-sequence tasks the fit was made on; its
    pilot says by how much. Each pilot's work: (records trained + EVAL_WEIGHT x records scored) x the task's mean
    tokens x its epochs; its start-up (model and data loading) counts as work."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        ratio = ratio_for(r.method, rates)
        if (r.phase != "side" or r.shots is not None or r.task not in stats or not ratio or not r.train_examples
                or not r.epochs):
            continue
        work = token_epochs(r.train_examples + EVAL_WEIGHT * (r.scored_examples or 0), stats[r.task].mean_tokens,
                            r.epochs)
        factor = r.seconds / (ratio * work)
        groups[(r.task, r.method)].append(factor)
        groups[(r.task, "all")].append(factor)
    return {key: (_mean(v), len(v)) for key, v in groups.items()}


def measured_scored_share(runs: Iterable[RunRecord]) -> tuple[float, int]:
    """(mean share of epochs at which lazily scoring few-shot runs scored dev/test, runs); (1.0, 0) without any."""
    shares = [r.official_scored for r in runs if r.official_scored is not None and not r.copied]
    return (_mean(shares), len(shares)) if shares else (1.0, 0)


# ---------------------------------------------------------------- seconds per run: measured or scaled


def fit_ratio(points: Iterable[tuple[float, float]]) -> float | None:
    """Least-squares slope through the origin of seconds on token-epochs: sum(x*y) / sum(x*x); None without data."""
    pts = [(x, y) for x, y in points if x > 0]
    return sum(x * y for x, y in pts) / sum(x * x for x, _ in pts) if pts else None


@dataclass
class Rates:
    per_method: dict[str, float]  # seconds per token-epoch
    per_method_from: dict[str, list[str]]  # the tasks each was fitted on
    overall: float | None
    overall_from: list[str]
    pilot: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)  # pilot_factors()


def fit_rates(measured: dict[tuple[str, str], tuple[float, int]], task_means: dict[str, tuple[float, int]],
              work: dict[str, float]) -> Rates:
    """Seconds per token-epoch per method (over the tasks where it was measured) and overall (per-task means)."""
    per, per_from = {}, {}
    for method in METHODS:
        tasks = sorted(t for (t, m) in measured if m == method and t in work)
        ratio = fit_ratio((work[t], measured[(t, method)][0]) for t in tasks)
        if ratio is not None:
            per[method], per_from[method] = ratio, tasks
    overall_tasks = sorted(t for t in task_means if t in work)
    return Rates(per, per_from, fit_ratio((work[t], task_means[t][0]) for t in overall_tasks), overall_tasks)


def run_seconds(task: str, method: str, measured: dict[tuple[str, str], tuple[float, int]], rates: Rates,
                work: dict[str, float]) -> tuple[float | None, str]:
    """Seconds one full-data run of (task, method) takes and how it is known: "measured", "est. <method>" (the
    method's ratio) or "est. overall", times the task's pilot factor where it has pilot runs ("pilot <method>",
    "pilot overall"; the method's own pilots' factor, else that of the task's pilots of every method); (None,
    "unknown") when nothing has been measured at all."""
    if (task, method) in measured:
        return measured[(task, method)][0], "measured"
    pilot = rates.pilot.get((task, method)) or rates.pilot.get((task, "all"))
    factor, basis = (pilot[0], "pilot") if pilot else (1.0, "est.")
    if method in rates.per_method:
        return factor * rates.per_method[method] * work[task], f"{basis} {method}"
    if rates.overall is not None:
        return factor * rates.overall * work[task], f"{basis} overall"
    return None, "unknown"


def ratio_for(method: str, rates: Rates) -> float | None:
    return rates.per_method.get(method, rates.overall)


def few_shot_seconds(stats: TaskStats, method: str, shots: int, rates: Rates,
                     measured_few: dict[tuple[str, str, int], float],
                     scored_share: float = 1.0) -> tuple[float | None, str]:
    """Seconds one K-shot run takes: measured, or ratio x mean tokens x epochs x (draw + EVAL_WEIGHT x scored),
    where dev/test count at ``scored_share`` of the epochs (the selection split at every one)."""
    if (stats.task, method, shots) in measured_few:
        return measured_few[(stats.task, method, shots)], "measured"
    ratio = ratio_for(method, rates)
    if ratio is None:
        return None, "unknown"
    train, select = stats.few_shot.get(shots, [0, 0])
    examples = train + EVAL_WEIGHT * (scored_share * stats.eval_examples + select)
    return ratio * token_epochs(examples, stats.mean_tokens, stats.epochs), "est. few-shot formula"


# ---------------------------------------------------------------- the protocol's runs


@dataclass
class Sweep:
    phase: str
    name: str
    task: str
    method: str
    expected: int  # runs it trains
    shots: int | None = None
    present: int = 0
    complete_at: int | None = None  # runs the sweep's folder holds when complete, copies included (defaults)
    held: int = 0  # runs its folder holds, copies included
    parked: float = 0.0  # run-equivalents its parked runs (paper.py --park) have trained: finished epochs / epochs
    epochs_factor: float = 1.0  # its runs' epochs over the protocol's (the epochs phase): seconds scale by it

    @property
    def remaining(self) -> int:
        if self.complete_at is not None and self.held >= self.complete_at:
            return 0  # every arm is in, whether trained here or copied (``expected`` is an upper bound)
        return max(0, self.expected - self.present)


def defaults_sweeps(task: str) -> list[Sweep]:
    """Runs each defaults sweep trains. Every sweep's changed setting is trained on every seed; its arm at the
    default (dropout 0.1, mean pooling, bias 0) is the same run as the main table's APT run at that lr, length 16
    and seed, and as the other sweeps' default arms, so paper.py copies it wherever it finished first: the first
    seed's come from the main table's lr stage, the other seeds' are trained once per lr, by the first sweep that
    has that lr (an upper bound: at the main table's chosen point they may be copies of its seeds stage)."""
    seeds = len(paper.seeds_for(task))
    owned: set[float] = set()  # lrs whose default arm an earlier sweep trains
    sweeps = []
    for name, grid in paper.DEFAULTS_SWEEPS.items():
        parsed = paper.parse_grid(grid)
        changed = sum(len(v) - 1 for k, v in parsed.items() if k != "lr") * len(parsed["lr"])
        new_lrs = [lr for lr in parsed["lr"] if lr not in owned]
        owned.update(new_lrs)
        sweeps.append(Sweep("defaults", f"{task}-{name}", task, "apt", changed * seeds + len(new_lrs) * (seeds - 1),
                            complete_at=math.prod(len(v) for v in parsed.values()) * seeds))
    return sweeps


def main_sweeps(task: str) -> list[Sweep]:
    """lr stage: every lr on the first seed; len stage (prefix methods): length 8 only (16 is the lr stage's run,
    copied); seeds stage: the other seeds."""
    seeds = len(paper.seeds_for(task))
    out = []
    for method in METHODS:
        lrs = len((paper.FT_LRS if method == "finetune" else paper.PREFIX_LRS).split(","))
        out.append(Sweep("main", f"{task}-{method}-lr", task, method, lrs))
        if method in PREFIX_METHODS:
            out.append(Sweep("main", f"{task}-{method}-len", task, method, 1))
        out.append(Sweep("main", f"{task}-{method}-seeds", task, method, seeds - 1))
    return out


def ablation_sweeps(task: str, results: Path | None = None) -> list[Sweep]:
    """The four ablations on every seed; with ``results``, also PT2+ and PT2* at P-tuning v2's own lr where the
    committed main table shows it differs from APT's (``paper.py`` trains those arms only then)."""
    seeds = len(paper.seeds_for(task))
    sweeps = [Sweep("ablations", f"{task}-{a}", task, m, seeds) for a, m in ABLATIONS.items()]
    if results is not None and _paper_tables().pt2_lr_differs(results / "main", task):
        sweeps += [Sweep("ablations", f"{task}-{a}-{paper.AT_PT2_LR}", task, "prefix", seeds)
                   for a in ("pt2-plus", "pt2-star")]
    return sweeps


def _paper_tables():
    """benchmarks/paper_tables.py, imported on first use (it pulls in matplotlib for its figures)."""
    if "paper_tables" not in sys.modules:
        import paper_tables  # noqa: F401  (benchmarks/ is on sys.path, above)
    return sys.modules["paper_tables"]


def fewshot_sweeps(task: str) -> list[Sweep]:
    return [Sweep("fewshot", f"{task}-k{k}-{m}", task, m, len(paper.SEEDS_SMALL), shots=k)
            for k in paper.SHOTS for m in METHODS]


def epochs_sweeps(task: str, results: Path) -> list[Sweep] | None:
    """The epochs phase's sweeps for ``task`` as the committed results call for them: one run each of PT2 and
    APT per round (``paper_tables.epochs_rounds_due``: round 1 at ``paper.EPOCH_CHECK_FACTOR`` x the protocol's
    epochs where a main-table run at its chosen point peaked at its last epoch, another while a longer run still
    does); [] where none is due; None (not known yet) where a main cell is missing or partial and no run has
    peaked at its last. NER's later rounds continue the round before (its checkpoint stays on the campaign's
    disk), so they are priced at their new epochs only; round 1 and SuperGLUE's rounds train all theirs."""
    rounds = _paper_tables().epochs_rounds_due(results, task)
    if not rounds:
        return rounds
    main = paper.epochs_for(task)
    continued = paper.continues_shorter_runs(task)
    sweeps = []
    for shorter, longer in zip([main, *rounds], rounds):
        factor = (longer - (shorter if continued and shorter != main else 0)) / main
        sweeps += [Sweep("epochs", name, task, m, 1, epochs_factor=factor)
                   for m, name in paper.epochs_check_sweeps(task, longer=longer).items()]
    return sweeps


def longer_sweeps(task: str, results: Path) -> list[Sweep]:
    """``paper.py --phase longer``'s sweeps for ``task`` where the committed epoch check settled it on more epochs
    (``paper_tables.longer_epochs_due``): every method, every seed, the epoch check's own seed being a copy.
    Priced as whole runs (N / E of a main run): a run continues its main run only where this disk still has that
    checkpoint, and a fresh checkout has none (checkpoints are not committed)."""
    epochs = _paper_tables().longer_epochs_due(results, task)
    if epochs is None:
        return []
    main = paper.epochs_for(task)
    seeds = len(paper.seeds_for(task))
    return [Sweep("longer", f"{task}-{m}-epochs{epochs}", task, m, seeds - (m in paper.EPOCH_CHECK_METHODS),
                  epochs_factor=epochs / main) for m in METHODS]


def protocol_sweeps(results: Path | None = None) -> list[Sweep]:
    """Every training sweep of the protocol, phase by phase, with the runs each trains (with ``results``, the
    ablations' extra arms at PT2's lr, and the epochs, longer and edges phases' runs where that results folder
    shows they are needed)."""
    epochs = [s for t in paper.MAIN_TASKS for s in (epochs_sweeps(t, results) or [])] if results is not None else []
    epochs += [s for t in paper.MAIN_TASKS for s in longer_sweeps(t, results)] if results is not None else []
    epochs += [Sweep("edges", paper.edge_sweep(t, m, lr), t, m, 1) for t in paper.MAIN_TASKS
               for m in paper.EDGE_METHODS if results is not None
               and (lr := _paper_tables().edge_due(results / "main", t, m)) is not None]
    return ([s for t in paper.DEFAULTS_TASKS for s in defaults_sweeps(t)]
            + [s for t in paper.MAIN_TASKS for s in main_sweeps(t)]
            + [s for t in paper.ABLATION_TASKS for s in ablation_sweeps(t, results)]
            + [s for t in paper.FEWSHOT_TASKS for s in fewshot_sweeps(t)]
            + epochs)


def count_present(runs: Iterable[RunRecord], sweeps: list[Sweep]) -> list[Sweep]:
    """Set each sweep's ``present``: its trained runs in the results folder (copies from other sweeps left out)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    held: dict[tuple[str, str], int] = defaultdict(int)
    for r in runs:
        held[(r.phase, r.sweep)] += 1
        if not r.copied:
            counts[(r.phase, r.sweep)] += 1
    for s in sweeps:
        s.present, s.held = counts[(s.phase, s.name)], held[(s.phase, s.name)]
    return sweeps


def read_parked(inflight: Path, results: Path) -> dict[tuple[str, str], float]:
    """(phase, sweep) -> the run-equivalents already trained by its runs parked in ``inflight``
    (``<phase>/<sweep>/<run>/``, as ``paper.py --park`` leaves them): per run, its last logged epoch over its
    epochs. A parked run whose results.json is in ``results`` is left out (that copy is stale)."""
    import yaml

    done: dict[tuple[str, str], float] = defaultdict(float)
    for config in sorted(inflight.glob("*/*/*/train_config.yaml")):
        run = config.parent
        phase, sweep = run.parent.parent.name, run.parent.name
        if (results / phase / sweep / run.name / "results.json").is_file():
            continue
        epochs = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("epochs")
        if epochs:
            done[(phase, sweep)] += min(1.0, paper.parked_epoch(run) / epochs)
    return done


def count_parked(parked: dict[tuple[str, str], float], sweeps: list[Sweep]) -> list[Sweep]:
    """Set each sweep's ``parked`` (never above its remaining runs)."""
    for s in sweeps:
        s.parked = min(parked.get((s.phase, s.name), 0.0), float(s.remaining))
    return sweeps


# ---------------------------------------------------------------- costing and the report


def sweep_cost(sweep: Sweep, stats: dict[str, TaskStats], measured, rates: Rates, measured_few,
               work: dict[str, float], scored_share: float = 1.0) -> tuple[float | None, str]:
    """Seconds per run of ``sweep`` and how they are known."""
    if sweep.shots is not None:
        return few_shot_seconds(stats[sweep.task], sweep.method, sweep.shots, rates, measured_few, scored_share)
    seconds, how = run_seconds(sweep.task, sweep.method, measured, rates, work)
    return (None if seconds is None else seconds * sweep.epochs_factor), how


def phase_rows(sweeps: list[Sweep], costs: dict[tuple[str, str], tuple[float | None, str]]) -> dict[str, dict]:
    """phase -> task -> {expected, present, remaining, hours, estimated}; remaining is summed per sweep; hours
    leave out the share of its runs that the sweep's parked runs have trained already."""
    rows: dict[str, dict] = {p: {} for p in PHASES}
    for s in sweeps:
        seconds, how = costs[(s.phase, s.name)]
        row = rows[s.phase].setdefault(s.task, {"expected": 0, "present": 0, "remaining": 0, "hours": 0.0,
                                                "estimated": False})
        row["expected"] += s.expected
        row["present"] += min(s.present, s.expected)
        row["remaining"] += s.remaining
        row["hours"] += (s.remaining - s.parked) * (seconds or 0.0) / 3600  # parked runs resume, not restart
        row["estimated"] |= s.remaining > 0 and how != "measured"
    return rows


def phase_totals(rows: dict[str, dict]) -> dict[str, dict]:
    return {p: {k: sum(r[k] for r in tasks.values()) for k in ("expected", "present", "remaining", "hours")}
            for p, tasks in rows.items()}


def _cell(seconds: float | None, how: str, n: int | None = None) -> str:
    if seconds is None:
        return "?"
    if how == "measured":
        return f"{seconds:.0f} ({n})" if n is not None else f"{seconds:.0f}"
    return f"{how.split()[0]} {seconds:.0f}"  # "est. 3566", "pilot 12000"


def tasks_markdown(stats: dict[str, TaskStats], measured, task_means, rates: Rates, work) -> str:
    out = ["## Tasks\n",
           "Seconds per full-data run (runs measured): the mean of `cpu_s` where a one-thread CPU run recorded it, "
           "else `wall_s`; `est.` = token-epochs x the method's seconds per token-epoch; `pilot` = that x the task's "
           "pilot factor (its own short runs under `side/`).\n",
           "| task | train examples | mean tokens | epochs | token-epochs (M) | "
           + " | ".join(f"{LABEL[m]} s/run" for m in METHODS) + " | all s/run |",
           "|---|---:|---:|---:|---:|" + "---:|" * len(METHODS) + "---:|"]
    for t, st in stats.items():
        cells = []
        for m in METHODS:
            seconds, how = run_seconds(t, m, measured, rates, work)
            cells.append(_cell(seconds, how, measured.get((t, m), (0, None))[1]))
        overall = f"{task_means[t][0]:.0f} ({task_means[t][1]})" if t in task_means else "-"
        examples = st.examples if st.subset is None else f"{min(st.subset, st.examples)} of {st.examples}"
        if st.eval_subset is not None:
            examples = f"{examples} (dev/test: {st.scored_examples} of {st.eval_examples})"
        out.append(f"| {t} | {examples} | {st.mean_tokens:.1f} | {st.epochs} | {st.token_epochs / 1e6:.3f} | "
                   + " | ".join(cells) + f" | {overall} |")
    out.append("")
    for m in METHODS:
        if m in rates.per_method:
            out.append(f"- {LABEL[m]}: {rates.per_method[m] * 1e6:.1f} s per million token-epochs "
                       f"(least squares over {', '.join(rates.per_method_from[m])})")
        else:
            out.append(f"- {LABEL[m]}: no measured task; the overall ratio is used")
    if rates.overall is not None:
        out.append(f"- overall: {rates.overall * 1e6:.1f} s per million token-epochs (per-task means of "
                   f"{', '.join(rates.overall_from)})")
    for (task, method), (factor, n) in sorted(rates.pilot.items()):
        label = "every method" if method == "all" else LABEL[method]
        out.append(f"- {task}, {label}: pilot factor {factor:.2f} (the fit's seconds per token-epoch x {factor:.2f}; "
                   f"mean over {n} side run{'s' * (n != 1)})")
    unmeasured = [t for t in stats if not any((t, m) in measured for m in METHODS)]
    if unmeasured:
        out.append(f"- no measured run (all methods estimated): {', '.join(unmeasured)}")
    return "\n".join(out) + "\n"


def fewshot_markdown(stats: dict[str, TaskStats], scored: tuple[float, int] = (1.0, 0)) -> str:
    share, runs = scored
    basis = (f"the mean over {runs} committed few-shot runs that score dev/test only when the selection split "
             "improves" if runs else "none of the committed few-shot runs scores lazily yet")
    lines = ["Few-shot runs (unless measured): seconds per token-epoch x mean tokens x epochs x (K-shot draw + "
             f"{EVAL_WEIGHT:.2f} x (K-shot selection split + {share:.2f} x (dev [+ test for NER]))), per run; "
             f"{share:.2f} = share of epochs that score dev/test ({basis}); sizes used:\n"]
    for t, st in stats.items():
        if st.few_shot:
            sizes = ", ".join(f"K={k}: {a} train + {b} select" for k, (a, b) in st.few_shot.items())
            lines.append(f"- {t}: {sizes}; {st.eval_examples} scored from dev/test per epoch")
    return "\n".join(lines) + "\n"


def phases_markdown(rows: dict[str, dict], totals: dict[str, dict], streams: int) -> str:
    out = ["## Remaining runs\n",
           "Hours are single-thread (sum of run times); `*` = includes estimated seconds per run.\n"]
    for phase in PHASES:
        out += [f"### {phase}\n", "| task | expected | present | remaining | hours |", "|---|---:|---:|---:|---:|"]
        for t, r in rows[phase].items():
            out.append(f"| {t} | {r['expected']} | {r['present']} | {r['remaining']} | "
                       f"{r['hours']:.1f}{'*' if r['estimated'] else ''} |")
        tot = totals[phase]
        out += [f"| **total** | {tot['expected']} | {tot['present']} | {tot['remaining']} | {tot['hours']:.1f} |", ""]
    out += ["## Totals\n", f"| phase | remaining runs | single-thread hours | wall-clock hours at {streams} streams |",
            "|---|---:|---:|---:|"]
    for phase in PHASES:
        tot = totals[phase]
        out.append(f"| {phase} | {tot['remaining']} | {tot['hours']:.1f} | {tot['hours'] / streams:.1f} |")
    remaining = sum(t["remaining"] for t in totals.values())
    hours = sum(t["hours"] for t in totals.values())
    out.append(f"| **all** | {remaining} | {hours:.1f} | {hours / streams:.1f} |")
    out.append(f"\nGrand total: {remaining} runs, {hours:.1f} single-thread hours ({hours / 24:.1f} days), "
               f"{hours / streams:.1f} wall-clock hours ({hours / streams / 24:.1f} days) at {streams} parallel "
               "streams. The gates phase (probes; retraining only where a checkout lost an adapter) is not counted.")
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="?", default=str(HERE / "results"), help="collected results (default: "
                   "benchmarks/results)")
    p.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--model", default="minilm", help="packaged name, folder or hub id (default: minilm)")
    p.add_argument("--sample", type=int, default=1500, help="train records tokenised per task (default: 1500)")
    p.add_argument("--streams", type=int, default=2, help="runs in parallel for the wall-clock hours (default: 2)")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON to FILE")
    p.add_argument("--train-subset", nargs="+", default=[], metavar="TASK=N",
                   help="as paper.py's: TASK's full-data runs train on N records (costed so)")
    p.add_argument("--eval-subset", nargs="+", default=[], metavar="TASK=N",
                   help="as paper.py's: TASK's full-data runs score N dev (and NER test) records (costed so)")
    p.add_argument("--inflight", help="parked runs, whose trained epochs are credited (default: inflight/ beside "
                   "RESULTS, as paper.py --park leaves them)")
    ns = p.parse_args(argv)
    ns.train_subset = paper.parse_subsets(ns.train_subset, p.error)
    ns.eval_subset = paper.parse_subsets(ns.eval_subset, p.error, "--eval-subset")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if ns.streams < 1 or ns.sample < 1:
        raise SystemExit("--streams and --sample must be >= 1")
    tokenizer = load_tokenizer(ns.model)
    stats = {t: task_stats(t, ns.data_dir, tokenizer, ns.sample, ns.train_subset.get(t), ns.eval_subset.get(t))
             for t in paper.MAIN_TASKS}
    work = {t: st.token_epochs for t, st in stats.items()}
    runs = read_runs(Path(ns.results))
    measured, task_means = measured_seconds(runs), measured_task_seconds(runs)
    measured_few = measured_few_shot_seconds(runs)
    scored = measured_scored_share(runs)
    rates = fit_rates(measured, task_means, work)
    rates.pilot = pilot_factors(runs, stats, rates)
    sweeps = count_present(runs, protocol_sweeps(Path(ns.results)))
    inflight = Path(ns.inflight) if ns.inflight else Path(ns.results).parent / "inflight"
    sweeps = count_parked(read_parked(inflight, Path(ns.results)), sweeps)
    costs = {(s.phase, s.name): sweep_cost(s, stats, measured, rates, measured_few, work, scored[0]) for s in sweeps}
    rows = phase_rows(sweeps, costs)
    totals = phase_totals(rows)
    print(f"# Remaining cost of the paper protocol\n\nresults: {ns.results}; model {ns.model}; "
          f"{len(runs)} results.json read; token counts from at most {ns.sample} train records per task (seed 0).\n")
    print(tasks_markdown(stats, measured, task_means, rates, work))
    print(fewshot_markdown(stats, scored))
    print(phases_markdown(rows, totals, ns.streams))
    parked = [(s, costs[(s.phase, s.name)][0]) for s in sweeps if s.parked]
    if parked:
        credit = sum(s.parked * (sec or 0.0) for s, sec in parked) / 3600
        print(f"Parked runs in {inflight} ({', '.join(f'{s.phase}/{s.name}: {s.parked:.2f}' for s, _ in parked)} "
              f"run-equivalents trained) resume where they stopped: their {credit:.1f} h are left out of the hours.\n")
    main_dir = Path(ns.results) / "main"
    unknown = [t for t in paper.ABLATION_TASKS if _paper_tables().pt2_lr_differs(main_dir, t) is None]
    unknown_epochs = [t for t in paper.MAIN_TASKS if epochs_sweeps(t, Path(ns.results)) is None]
    if unknown_epochs:
        print(f"Not counted yet: the epochs phase for {', '.join(unknown_epochs)} (2 runs at "
              f"{paper.EPOCH_CHECK_FACTOR:g}x the epochs per task, if a main-table PT2 or APT run peaks at its last "
              "epoch; their cells are missing or partial, with no such run yet).\n")
    if unknown:
        print(f"Not counted yet: PT2+ and PT2* at PT2's own lr ({paper.AT_PT2_LR} arms, 2 x seeds runs per task) for "
              f"{', '.join(unknown)}, whose main-table lr stages are not both in; paper.py runs them where PT2's "
              "chosen lr differs from APT's.")
    if ns.json:
        doc = {"tasks": {t: {**asdict(st), "token_epochs": st.token_epochs} for t, st in stats.items()},
               "measured": {f"{t}/{m}": {"seconds": s, "runs": n} for (t, m), (s, n) in measured.items()},
               "rates": asdict(rates),
               "few_shot_scored_share": {"share": scored[0], "runs": scored[1]},
               "sweeps": [{**asdict(s), "remaining": s.remaining, "seconds_per_run": costs[(s.phase, s.name)][0],
                           "basis": costs[(s.phase, s.name)][1]} for s in sweeps],
               "phases": rows, "totals": totals, "streams": ns.streams,
               "total_hours": sum(t["hours"] for t in totals.values()),
               "total_remaining": sum(t["remaining"] for t in totals.values())}
        Path(ns.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
