"""The ``adaprefix`` command line.

    adaprefix train --task rte --method apt --data-dir ../shared/data --output runs/rte-apt
    adaprefix eval runs/rte-apt --split val
    adaprefix predict runs/rte-apt/adapter --input records.jsonl --output preds.jsonl
    adaprefix probe runs/rte-apt                       # gates.json, plan.json, gates.png, weights.png
    adaprefix sweep --task rte --method apt,prefix --grid lr=5e-3,1e-2 --seeds 11,12 --output sweeps/rte
    adaprefix report sweeps/rte runs/*                 # one table from any run directories
    adaprefix serve --adapter rte=runs/rte-apt         # HTTP, mixed batches on one frozen backbone
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from .tasks import DataError
from .tasks.registry import TASKS

EPILOG = "Tasks: " + ", ".join(sorted(TASKS)) + ". Data: --data-dir DIR holds superglue/<task>/{train,val,test}.jsonl and ner/..."


def parse_lengths(text: str) -> int | list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or comma-separated ints per layer, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def add_train_options(t: argparse.ArgumentParser, sweep: bool = False) -> None:
    """The options of ``train``; ``sweep`` reuses them (methods and seeds as lists) and passes them through."""
    t.add_argument("--config", metavar="RUN_YAML",
                   help="a YAML file of options (any flag as a key, e.g. lr: 0.01); flags given here win")
    t.add_argument("--task", help="a benchmark (cb, rte, copa, multirc, conll04, ...) or your own data: "
                                  "classification, multiple-choice, token-classification")
    if sweep:
        t.add_argument("--method", default="apt", type=parse_methods,
                       help="methods to sweep, comma-separated: apt,prefix,finetune (default: apt)")
    else:
        t.add_argument("--method", default="apt", choices=["apt", "prefix", "finetune"],
                       help="apt (gated prefixes), prefix (P-tuning v2) or finetune (default: apt)")
    t.add_argument("--model", help="encoder path or hub id (default: the packaged all-MiniLM-L6-v2)")
    t.add_argument("--data-dir", help="folder with the official task files; absent: load from the hub (online only)")
    t.add_argument("--output", help="sweep directory" if sweep else "run directory")
    t.add_argument("--prefix-len", type=parse_lengths, help="prefix length, or one per layer: 4,4,8,8,16,16 (default: task's)")
    t.add_argument("--prefix-plan", metavar="PLAN_JSON",
                   help="PT2*: per-layer prefix lengths from the plan.json of `adaprefix probe`")
    t.add_argument("--match-params", metavar="RUN_OR_ADAPTER_DIR",
                   help="PT2+: the uniform prefix length whose parameter count is closest to that adapter's "
                        "(a run folder without its adapter: the count in its results.json)")
    t.add_argument("--lr", type=float, help="learning rate (default: task's; 1e-2 prefix methods, 3e-5 finetune)")
    t.add_argument("--epochs", type=int, help="epochs (default: task's)")
    t.add_argument("--batch-size", type=int, default=16, help="training batch size per process (default: 16)")
    t.add_argument("--eval-batch-size", type=int, default=64, help="evaluation batch size (default: 64)")
    if sweep:
        t.add_argument("--seeds", type=parse_ints, default=[11], help="seeds, comma-separated (default: 11)")
    else:
        t.add_argument("--seed", type=int, default=11, help="seed for initialisation, shuffling, dropout, few-shot (default: 11)")
    t.add_argument("--max-length", type=int, help="max tokens per input (default: 128)")
    t.add_argument("--no-token-gate", action="store_true", help="APT ablation: token gate off (alpha = 1)")
    t.add_argument("--no-layer-gate", action="store_true", help="APT ablation: layer gate off (lambda = 1)")
    t.add_argument("--gate-pooling", choices=["mean", "cls"], help="APT: token-gate summary of the layer input (default: mean)")
    t.add_argument("--token-gate-bias", type=float,
                   help="APT: initial token-gate bias; gates start at sigmoid(bias) (default: 0 -> 0.5)")
    t.add_argument("--prefix-projection", action="store_true", help="P-tuning v2 reparameterisation MLP (hidden 512)")
    t.add_argument("--attention-dropout", type=float, help="attention dropout (default: the backbone's); 0 is faster on CPU")
    t.add_argument("--shots", type=int, help="few-shot: K training examples per class (K questions for MultiRC, K sentences for NER)")
    t.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute each layer in backward instead of keeping activations (less memory, more time)")
    t.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clipping, 0 = off (default: 1.0)")
    t.add_argument("--shots-dev", action="store_true",
                   help="few-shot: choose the epoch on K per class drawn from train (disjoint from the training "
                        "draw) instead of the official dev set; the dev score at that epoch is reported")
    t.add_argument("--early-stop", type=int, metavar="N", help="stop after N epochs without a better val score")
    t.add_argument("--eval-every-epoch", action="store_true",
                   help="score dev and test at every epoch (full curves in metrics.jsonl); by default the splits "
                        "that do not choose the epoch (test; dev under --shots-dev) are scored only at epochs that "
                        "improve on the best, which gives the same best-epoch scores faster")
    t.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"],
                   help="accelerate's mixed precision: no (default), bf16 (CPU or GPU), fp16 (GPU, with gradient scaling)")
    t.add_argument("--bf16", action="store_true", help="same as --mixed-precision bf16 (slower on CPUs without native bf16)")
    if not sweep:  # a sweep always resumes
        t.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint; with a larger --epochs, NER runs (rate 0.95 per epoch) continue a finished run into the longer one")
    t.add_argument("--limit-train", type=int, help="use only the first N training records (quick runs)")
    t.add_argument("--train-subset", type=int, metavar="N",
                   help="train on a fixed random N of the training records, the same draw for every seed and method "
                        "(a stated subset of a large task; MultiRC draws whole questions; dev and test stay whole unless "
                        "--eval-subset)")
    t.add_argument("--limit-eval", type=int, help="use only the first N val/test records (quick runs)")
    t.add_argument("--eval-subset", type=int, metavar="N",
                   help="score a fixed random N of the dev (and NER test) records, the same draw for every seed and "
                        "method (a stated subset where scoring the whole dev set each epoch costs too much; MultiRC "
                        "draws whole questions)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--metric", help="selection metric (default: the task's; e.g. macro_f1)")
    t.add_argument("--report-to", "--report_to", default="none",
                   help="experiment trackers through accelerate: tensorboard, wandb, mlflow (comma list) or none")
    own = t.add_argument_group("your own data (--task classification | multiple-choice | token-classification)")
    own.add_argument("--train-file", "--train_file", help="CSV, TSV, JSON lines, Parquet; CoNLL or JSON lines for tokens")
    own.add_argument("--validation-file", "--validation_file", help="dev split, same format")
    own.add_argument("--test-file", "--test_file", help="test split, same format (optional)")
    own.add_argument("--dataset", help="a hub dataset name, or a folder saved with datasets' save_to_disk")
    own.add_argument("--dataset-config", "--dataset_config_name", help="the hub dataset's configuration")
    own.add_argument("--text-columns", "--text_column_names", type=parse_names, help="one or two text columns: premise,hypothesis")
    own.add_argument("--label-column", "--label_column_name", help="label column")
    own.add_argument("--context-column", help="multiple choice: the context column")
    own.add_argument("--choice-columns", type=parse_names, help="multiple choice: the choice columns, a,b,c")
    own.add_argument("--tokens-column", help="token classification: the words column (default: tokens)")
    own.add_argument("--tags-column", help="token classification: the tags column (default: tags)")
    own.add_argument("--tag-scheme", choices=["BIO", "IOBES"], help="token classification: tag scheme (default: detected)")
    own.add_argument("--class-weights", choices=["balanced"], help="weigh the loss by inverse class frequency")


def parse_names(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


CUSTOM_OPTIONS = ("train_file", "validation_file", "test_file", "dataset", "dataset_config", "text_columns",
                  "label_column", "context_column", "choice_columns", "tokens_column", "tags_column", "tag_scheme")


def custom_spec(ns: argparse.Namespace) -> dict | None:
    """The CustomTaskSpec (as a dict) that the own-data options describe; None for benchmark tasks."""
    given = {k: getattr(ns, k) for k in CUSTOM_OPTIONS if getattr(ns, k, None) is not None}
    if ns.task not in ("classification", "multiple-choice", "token-classification"):
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ValueError(f"{flags}: own-data options need --task classification, multiple-choice or "
                             f"token-classification (got --task {ns.task})")
        return None
    if ns.metric is not None:
        given["metric"] = ns.metric
    return {"kind": ns.task, **given}


def apply_config_file(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; a ``--config`` YAML supplies defaults (flag names as keys) that explicit flags override."""
    ns = parser.parse_args(argv)
    path = getattr(ns, "config", None)
    if not path:
        return ns
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"--config {path}: no such file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"--config {path}: not valid YAML ({err})") from None
    if not isinstance(values, dict):
        raise ValueError(f"--config {path}: expected a mapping of option: value, got {type(values).__name__}")
    sub = parser.commands[ns.command]
    known = set(vars(sub.parse_known_args([])[0])) - {"config"}
    defaults = {}
    for key, value in from_train_args(values).items():
        dest = str(key).lstrip("-").replace("-", "_")
        if dest not in known:
            raise ValueError(f"--config {path}: unknown option {key!r}")
        # argparse converts string defaults with the option's type, as if typed on the command line
        defaults[dest] = ",".join(map(str, value)) if isinstance(value, list) else value
    sub.set_defaults(**defaults)
    try:
        return parser.parse_args(argv)
    except SystemExit:
        raise ValueError(f"--config {path}: a value does not parse (see the message above)") from None


def from_train_args(values: dict) -> dict:
    """Accept a run's own train_config.yaml too: TrainArgs names -> option names."""
    out = {}
    for key, value in values.items():
        if key in ("token_gate", "layer_gate"):
            if value is False:
                out[f"no_{key}"] = True
        elif key == "custom":
            out.update({k: v for k, v in (value or {}).items() if k != "kind"})
        elif key == "progress":
            out["no_progress"] = value is False
        elif key in ("prefix_source", "resume") or value is None:
            continue
        else:
            out[key] = value
    return out


def parse_ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in ("apt", "prefix", "finetune")]
    if bad or not methods:
        raise argparse.ArgumentTypeError(f"methods are apt, prefix, finetune; got {text!r}")
    return methods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adaprefix",
        description="Adaptive Prefix Tuning (APT), P-tuning v2 and full fine-tuning of frozen encoders.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = sub.choices  # name -> its parser (for --config)

    t = sub.add_parser("train", help="train on a task; writes metrics.jsonl, checkpoint/, adapter/ and results.json",
                       description="Train APT, P-tuning v2 or full fine-tuning on one task. Unset options take the "
                                   "task's defaults (see adaprefix/tasks/registry.py). Runs unchanged under "
                                   "`accelerate launch`.", epilog=EPILOG)
    add_train_options(t)

    sw = sub.add_parser("sweep", help="a resumable hyper-parameter sweep on Optuna (grid or TPE, optional pruning)",
                        description="Train every configuration of a grid (or TPE-sampled ones) over several seeds. "
                                    "Each run is an ordinary run directory under OUTPUT/runs; the study is stored in "
                                    "OUTPUT/study.db (SQLite) or --storage, so a killed sweep resumes where it "
                                    "stopped. Writes OUTPUT/summary.md and summary.json. Every train option passes "
                                    "through.", epilog=EPILOG)
    sw.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2",
                    help="values to sweep, e.g. lr=5e-3,1e-2,2e-2 prefix_len=8,16")
    sw.add_argument("--sampler", choices=["grid", "tpe"], default="grid", help="grid (default) or tpe")
    sw.add_argument("--trials", type=int, help="tpe: number of configurations to try")
    sw.add_argument("--prune", action="store_true", help="stop hopeless trials early (median pruner on dev scores)")
    sw.add_argument("--storage", help="Optuna storage URL (default: sqlite in OUTPUT; postgresql://... for several machines)")
    sw.add_argument("--jobs", type=int, default=1, help="worker processes on this machine (default: 1)")
    add_train_options(sw, sweep=True)

    rp = sub.add_parser("report", help="one table (markdown and JSON) from run and sweep directories",
                        description="Group every results.json under the given folders by configuration and report "
                                    "mean ± std over seeds of dev (and test) scores, parameters and time.")
    rp.add_argument("paths", nargs="+", metavar="DIR")
    rp.add_argument("--output", help="write OUTPUT.md and OUTPUT.json (default: print the markdown only)")
    rp.add_argument("--title", default="Results")

    e = sub.add_parser("eval", help="score a run or adapter on a labelled split",
                       description="Evaluate RUN_OR_ADAPTER_DIR (a run directory's best adapter, or an adapter "
                                   "directory) on a split; prints the metrics as JSON.", epilog=EPILOG)
    e.add_argument("path", metavar="RUN_OR_ADAPTER_DIR")
    e.add_argument("--task", help="task (default: the one the adapter was trained on)")
    e.add_argument("--split", choices=["val", "test"], default="val", help="split (default: val; SuperGLUE test has no labels)")
    e.add_argument("--data-dir", help="folder with the official task files (default: the one used in training; else the hub)")
    e.add_argument("--model", help="base encoder (default: the one recorded in the adapter)")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--output", help="also write the metrics and per-example predictions (JSON) here")

    p = sub.add_parser("predict", help="label task records from a JSON lines file",
                       description="Predict labels for records in the task's official format, one JSON object per "
                                   "line (SuperGLUE rows; NER: {\"tokens\": [...]}). Writes one JSON line per "
                                   "example: label and probabilities (NER: tags per token).", epilog=EPILOG)
    p.add_argument("path", metavar="ADAPTER_DIR", help="adapter directory, or a run directory")
    p.add_argument("--input", required=True, help="JSON lines file of task records")
    p.add_argument("--output", required=True, help="where to write predictions (JSON lines)")
    p.add_argument("--task", help="task (default: the one the adapter was trained on)")
    p.add_argument("--model", help="base encoder (default: the one recorded in the adapter)")
    p.add_argument("--batch-size", type=int, default=64)
    pr = sub.add_parser("probe", help="gate probing: per-layer gate weights, a PT2* plan and two pictures",
                        description="Run an APT adapter over a split and write gates.json (per layer: lambda, "
                                    "per-slot mean and std of the token gate, weight), plan.json (per-layer "
                                    "prefix lengths for PT2*: --prefix-plan), gates.png and weights.png.")
    pr.add_argument("path", metavar="RUN_OR_ADAPTER_DIR")
    pr.add_argument("--split", choices=["train", "val", "test"], default="train", help="split to probe (default: train)")
    pr.add_argument("--data-dir", help="folder with the task files (default: the one used in training)")
    pr.add_argument("--task", help="task (default: the one the adapter was trained on)")
    pr.add_argument("--budget", type=int, help="the plan's largest length L (default: the adapter's largest length)")
    pr.add_argument("--output", help="output folder (default: RUN_OR_ADAPTER_DIR/probe)")
    pr.add_argument("--batch-size", type=int, default=64)
    pr.add_argument("--limit", type=int, help="probe only the first N examples")
    pr.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("serve", help="serve adapters over HTTP on one shared frozen backbone",
                       description="Serve one or more adapters (mixed batches on one frozen encoder) over HTTP: "
                                   "POST /predict, GET /adapters, GET /health. Binds to localhost by default.")
    s.add_argument("--adapter", action="append", required=True, metavar="NAME=DIR",
                   help="an adapter or run directory under a name; repeat for several")
    s.add_argument("--model", help="base encoder (default: the one recorded in the adapters)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    s.add_argument("--max-batch", type=int, default=64, help="rows gathered into one mixed batch at most (default: 64)")
    s.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests (default: 5)")
    s.add_argument("--max-records", type=int, default=256, help="records per request at most; more get 413 (default: 256)")
    return parser


def mixed_precision(ns: argparse.Namespace) -> str:
    if ns.bf16 and ns.mixed_precision not in (None, "bf16"):
        raise ValueError(f"--bf16 contradicts --mixed-precision {ns.mixed_precision}")
    return "bf16" if ns.bf16 else (ns.mixed_precision or "no")


def train_args_from(ns: argparse.Namespace):
    """TrainArgs from parsed ``train`` options (also used by ``sweep`` for its pass-through flags)."""
    from .experiments.variants import apply_prefix_variant
    from .training import TrainArgs

    sweep = isinstance(ns.method, list)
    for flag in ("task", "output"):
        if not getattr(ns, flag):
            raise ValueError(f"--{flag} is required (on the command line or in --config)")
    args = TrainArgs(
        task=ns.task, output=ns.output, method=ns.method[0] if sweep else ns.method, model=ns.model,
        data_dir=ns.data_dir, prefix_len=ns.prefix_len, lr=ns.lr, epochs=ns.epochs, batch_size=ns.batch_size,
        eval_batch_size=ns.eval_batch_size, seed=ns.seeds[0] if sweep else ns.seed, max_length=ns.max_length,
        token_gate=False if ns.no_token_gate else None, layer_gate=False if ns.no_layer_gate else None,
        gate_pooling=ns.gate_pooling, token_gate_bias=ns.token_gate_bias, prefix_projection=ns.prefix_projection, attention_dropout=ns.attention_dropout,
        shots=ns.shots, shots_dev=ns.shots_dev, early_stop=ns.early_stop, eval_every_epoch=ns.eval_every_epoch, mixed_precision=mixed_precision(ns), resume=getattr(ns, "resume", True),
        limit_train=ns.limit_train, limit_eval=ns.limit_eval, train_subset=ns.train_subset, eval_subset=ns.eval_subset,
        progress=not ns.no_progress,
        grad_clip=ns.grad_clip, gradient_checkpointing=ns.gradient_checkpointing, custom=custom_spec(ns), metric=ns.metric, class_weights=ns.class_weights, report_to=ns.report_to,
    )
    return apply_prefix_variant(args, ns.prefix_plan, ns.match_params)


def cmd_train(ns: argparse.Namespace) -> int:
    from .training import train

    args = train_args_from(ns)
    results = train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        best = results["best"]
        shown = {split: {k: round(v, 4) for k, v in scores.items()} for split, scores in best.items()}
        print(f"{results['task']} {results['method']}: best epoch {results['best_epoch']} {json.dumps(shown)} "
              f"({results['trainable_params']} trainable parameters, {results['wall_s']:.0f} s) -> {ns.output}/results.json")
    return 0


def cmd_eval(ns: argparse.Namespace) -> int:
    from .serving import evaluate_adapter

    scores, preds = evaluate_adapter(ns.path, ns.task, ns.split, ns.data_dir, ns.model, ns.batch_size)
    print(json.dumps(scores, indent=2))
    if ns.output:
        Path(ns.output).write_text(json.dumps({"scores": scores, "predictions": preds}, indent=1) + "\n")
    return 0


def cmd_predict(ns: argparse.Namespace) -> int:
    from .serving import predict_file

    n = predict_file(ns.path, ns.input, ns.output, ns.task, ns.model, ns.batch_size)
    print(f"wrote {n} predictions to {ns.output}")
    return 0


def cmd_sweep(ns: argparse.Namespace) -> int:
    from .experiments.sweep import SweepSpec, parse_grid, run_sweep

    grid = parse_grid(ns.grid)
    if "prefix_len" in grid and (ns.prefix_len is not None or ns.prefix_plan or ns.match_params):
        raise ValueError("--grid prefix_len=... contradicts --prefix-len / --prefix-plan / --match-params")
    base = train_args_from(ns)
    spec = SweepSpec(task=ns.task, methods=ns.method, grid=grid, seeds=ns.seeds, output=ns.output, base=base,
                     sampler=ns.sampler, trials=ns.trials, prune=ns.prune, storage=ns.storage, jobs=ns.jobs,
                     progress=not ns.no_progress)
    summary = run_sweep(spec)
    print(f"sweep {ns.output}: trials {summary.get('study', {}).get('trials')}")
    if (Path(ns.output) / "summary.md").is_file():
        print((Path(ns.output) / "summary.md").read_text())
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from .experiments.report import write_report

    md, _ = write_report(ns.paths, ns.output, ns.title)
    print(md)
    return 0


def cmd_probe(ns: argparse.Namespace) -> int:
    from .experiments.probe import probe_adapter

    if ns.batch_size < 1 or (ns.limit is not None and ns.limit < 1):
        raise ValueError("--batch-size and --limit must be >= 1")
    gates, plan, out = probe_adapter(ns.path, ns.split, ns.data_dir, ns.task, ns.budget, ns.output, ns.batch_size,
                                     ns.limit, progress=not ns.no_progress)
    weights = ", ".join(f"{w:.3f}" for w in plan["weights"])
    print(f"{gates['task']} {ns.split}: {gates['examples']} examples; layer weights [{weights}]")
    print(f"plan (budget {plan['budget']}): --prefix-len {','.join(map(str, plan['prefix_len']))}")
    print(f"wrote {out}/gates.json, plan.json, gates.png, weights.png")
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    from .serving.server import parse_adapter_specs, serve

    serve(parse_adapter_specs(ns.adapter), model=ns.model, host=ns.host, port=ns.port, max_batch=ns.max_batch,
          max_wait_ms=ns.max_wait_ms, max_records=ns.max_records)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = apply_config_file(parser, sys.argv[1:] if argv is None else argv)
    except (ValueError, FileNotFoundError) as err:
        print(f"adaprefix: error: {err}", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars say nothing useful here
    handlers = {"train": cmd_train, "eval": cmd_eval, "predict": cmd_predict, "probe": cmd_probe,
                "sweep": cmd_sweep, "report": cmd_report,
                "serve": cmd_serve}
    try:
        return handlers[ns.command](ns)
    except (DataError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"adaprefix {ns.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; `adaprefix train ... --resume` continues from the last checkpoint", file=sys.stderr)
        return 130
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"adaprefix {ns.command}: error: no space left on the device ({err.filename or 'while writing'}); "
              "files are replaced atomically, so the previous checkpoint and adapter are intact. Free space, then "
              "rerun with --resume", file=sys.stderr)
        return 1
    except RuntimeError as err:
        if type(err).__name__ not in ("NonFiniteLossError", "RunBusyError"):
            raise
        print(f"adaprefix {ns.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
