"""Custom tasks (issue 13, "your own data"): every input format, labels, metrics against independent computations,
the spec's round trip, prediction inputs, and the errors bad files get. No model is loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adaprefix.tasks import DataError, Task
from adaprefix.tasks.custom import (CustomTaskSpec, build_custom_task, class_counts, class_weights, iobes_scores,
                                    parse_columns, read_custom_records)
from adaprefix.tasks.records import ChoiceExample, PairExample, TokenExample

DATA = Path(__file__).parent / "data" / "custom"


def nli_spec(**kw) -> CustomTaskSpec:
    args = dict(train_file=str(DATA / "nli_train.csv"), validation_file=str(DATA / "nli_dev.csv"),
                text_columns=["premise", "hypothesis"], label_column="label")
    args.update(kw)
    return CustomTaskSpec("classification", **args)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def cls_files(tmp_path: Path, train: str, dev: str = "text,label\nok,a\n", ext: str = "csv") -> CustomTaskSpec:
    return CustomTaskSpec("classification", train_file=str(write(tmp_path / f"train.{ext}", train)),
                          validation_file=str(write(tmp_path / f"dev.{ext}", dev)), text_columns=["text"],
                          label_column="label")


# ---------------------------------------------------------------- classification: formats


def test_csv_pairs_labels_sorted_and_line_numbers():
    task = build_custom_task(nli_spec())
    assert isinstance(task, Task)
    assert (task.name, task.family, task.head, task.main_metric, task.schedule) == (
        "classification", "custom", "classification", "accuracy", "linear")
    assert (task.default_epochs, task.default_prefix_len, task.default_lr, task.default_ft_lr,
            task.default_max_length) == (10, 16, 1e-2, 3e-5, 128)
    assert task.labels == ("contradiction", "entailment", "neutral") and task.label_names == list(task.labels)
    train = task.load("train", "/ignored/data/dir")
    assert all(isinstance(e, PairExample) for e in train) and len(train) == 6
    # CSV quoting: doubled quotes, a comma, and a newline inside a quoted field
    assert train[1].text_a == 'A woman says "hello, there" to a crowd.'
    assert train[4].text_a == "A poem:\ntwo lines long." and train[4].label == "neutral"
    # idx is the line where the row starts: the multi-line row (lines 6-7) shifts the next row to line 8
    assert [e.idx for e in train] == [2, 3, 4, 5, 6, 8]
    val = task.load("val")
    assert [(e.text_b, e.label) for e in val] == [("A boy is moving.", "entailment"),
                                                 ("A cat is awake.", "contradiction"), ("The book is long.", "neutral")]
    assert task.split_has_labels == {"train": True, "val": True, "test": True}
    assert task.has_split("val") and not task.has_split("test")
    with pytest.raises(DataError, match="no test split"):
        task.load("test")
    with pytest.raises(ValueError, match="unknown split"):
        task.load("dev")


def test_tsv_has_no_quoting_and_single_text_column():
    spec = CustomTaskSpec("classification", train_file=str(DATA / "sst_train.tsv"),
                          validation_file=str(DATA / "sst_dev.tsv"), text_columns=["sentence"], label_column="label")
    task = build_custom_task(spec)
    train = task.load("train")
    assert train[0].text_a == 'A "quoted word is text' and train[0].text_b is None
    assert task.labels == ("negative", "positive")
    assert task.load("val")[1].text_a == 'Boring "film'


def test_jsonl_integer_labels_become_names():
    spec = CustomTaskSpec("classification", train_file=str(DATA / "sst_train.jsonl"),
                          validation_file=str(DATA / "sst_dev.jsonl"), text_columns=["text"], label_column="label")
    task = build_custom_task(spec)
    assert task.labels == ("0", "1")
    train = task.load("train")
    # blank line 3 is skipped; idx is the line number
    assert [(e.idx, e.label) for e in train] == [(1, "1"), (2, "0"), (4, "1")]


def test_json_array_file_and_its_error_location(tmp_path):
    spec = cls_files(tmp_path, '[\n {"text": "a", "label": "x"},\n {"text": "b", "label": "y"}\n]', ext="json",
                     dev='[{"text": "c", "label": "x"}, {"text": 5, "label": "y"}]')
    task = build_custom_task(spec)
    assert [(e.idx, e.text_a, e.label) for e in task.load("train")] == [(2, "a", "x"), (3, "b", "y")]
    with pytest.raises(DataError, match=r"dev\.json:1:31: column 'text' should be a string \(text\), got a number 5"):
        task.load("val")


def test_parquet_matches_csv(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    for split in ("train", "dev"):
        pd.read_csv(DATA / f"nli_{split}.csv", dtype=str).to_parquet(tmp_path / f"{split}.parquet")
    from_csv = build_custom_task(nli_spec())
    task = build_custom_task(nli_spec(train_file=str(tmp_path / "train.parquet"),
                                      validation_file=str(tmp_path / "dev.parquet")))
    assert task.labels == from_csv.labels
    strip = lambda exs: [(e.text_a, e.text_b, e.label) for e in exs]  # noqa: E731
    assert strip(task.load("train")) == strip(from_csv.load("train"))
    assert strip(task.load("val")) == strip(from_csv.load("val"))
    assert [e.idx for e in task.load("train")] == list(range(6))  # 0-based rows: Parquet has no lines
    # a missing value is an error naming the 1-based row
    pd.DataFrame({"premise": ["p", None], "hypothesis": ["h", "h"], "label": ["neutral", "neutral"]}).to_parquet(
        tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: row 2: column 'premise' should be a string \(text\), got null"):
        task.reader(tmp_path / "bad.parquet", True)
    write(tmp_path / "junk.parquet", b"PAR1 not really")
    with pytest.raises(DataError, match=r"junk\.parquet: cannot read as Parquet"):
        build_custom_task(nli_spec(train_file=str(tmp_path / "junk.parquet")))


def test_saved_dataset_dict_with_class_labels(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    make = lambda rows: datasets.Dataset.from_dict(  # noqa: E731
        {"sentence": [r[0] for r in rows], "label": [r[1] for r in rows]}, features=features)
    folder = tmp_path / "sst"
    datasets.DatasetDict(train=make([("good", 1), ("bad", 0), ("fine", 1)]), validation=make([("meh", 0)]),
                         test=make([("yes", 1), ("no", 0)])).save_to_disk(str(folder))
    spec = CustomTaskSpec("classification", dataset=str(folder), text_columns=["sentence"], label_column="label")
    task = build_custom_task(spec)
    assert task.labels == ("neg", "pos")
    assert [(e.text_a, e.label) for e in task.load("train")] == [("good", "pos"), ("bad", "neg"), ("fine", "pos")]
    assert [e.label for e in task.load("val")] == ["neg"]
    assert task.has_split("test") and [e.label for e in task.load("test")] == ["pos", "neg"]
    # rebuilt from the recorded spec alone (the path recorded absolute)
    again = build_custom_task(CustomTaskSpec.from_dict(json.loads(json.dumps(task.spec.to_dict()))), task.labels)
    assert [e.text_a for e in again.load("val")] == ["meh"]
    # a saved single Dataset, and a DatasetDict without a validation split
    make([("a", 0)]).save_to_disk(str(tmp_path / "single"))
    with pytest.raises(DataError, match="holds a single split"):
        build_custom_task(CustomTaskSpec("classification", dataset=str(tmp_path / "single"),
                                         text_columns=["sentence"], label_column="label"))
    datasets.DatasetDict(train=make([("a", 0), ("b", 1)])).save_to_disk(str(tmp_path / "noval"))
    task = build_custom_task(CustomTaskSpec("classification", dataset=str(tmp_path / "noval"),
                                            text_columns=["sentence"], label_column="label"))
    with pytest.raises(DataError, match=r"no val split: expected one named 'validation' or 'val'.*present: \['train'\]"):
        task.load("val")
    with pytest.raises(DataError, match=r"sst\[train\]: no column 'nope' \(--text-columns\); columns present: "
                                        r"\['sentence', 'label'\]"):
        build_custom_task(CustomTaskSpec("classification", dataset=str(folder), text_columns=["nope"],
                                         label_column="label"))


def test_multiple_choice_from_saved_dataset_keeps_label_indices(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"q": datasets.Value("string"), "c0": datasets.Value("string"),
                                  "c1": datasets.Value("string"), "y": datasets.ClassLabel(names=["A", "B"])})
    ds = datasets.Dataset.from_dict({"q": ["x", "z"], "c0": ["p", "r"], "c1": ["s", "t"], "y": [1, 0]},
                                    features=features)
    datasets.DatasetDict(train=ds, dev=ds).save_to_disk(str(tmp_path / "mc"))
    task = build_custom_task(CustomTaskSpec("multiple-choice", dataset=str(tmp_path / "mc"), context_column="q",
                                            choice_columns=["c0", "c1"], label_column="y"))
    assert [(e.rows, e.label) for e in task.load("val")] == [([("x", "p"), ("x", "s")], 1),
                                                            ([("z", "r"), ("z", "t")], 0)]


def test_hub_and_plain_folder_go_through_load_dataset(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(name, config=None):
        calls.append((name, config))
        if name == "offline/thing":
            raise ConnectionError("Couldn't reach 'offline/thing' on the Hub (OfflineModeIsEnabled)")
        ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
        return datasets.DatasetDict(train=ds, validation=ds)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = dict(text_columns=["text"], label_column="label")
    with pytest.raises(DataError, match=r"hub:offline/thing: could not load the dataset \(ConnectionError: .*"
                                        r"hub datasets need a network connection"):
        build_custom_task(CustomTaskSpec("classification", dataset="offline/thing", **spec))
    task = build_custom_task(CustomTaskSpec("classification", dataset="org/ok", dataset_config="en", **spec))
    assert task.labels == ("x", "y") and len(task.load("val")) == 2 and task.files["val"] == "org/ok[val]"
    (tmp_path / "plain").mkdir()  # not a save_to_disk folder: datasets infers its files
    build_custom_task(CustomTaskSpec("classification", dataset=str(tmp_path / "plain"), **spec))
    assert calls == [("offline/thing", None), ("org/ok", "en"), (str(tmp_path / "plain"), None)]
    datasets.DatasetDict(train=datasets.Dataset.from_dict({"text": ["a"], "label": ["x"]})).save_to_disk(
        str(tmp_path / "saved"))
    with pytest.raises(ValueError, match="--dataset-config applies to hub datasets"):
        build_custom_task(CustomTaskSpec("classification", dataset=str(tmp_path / "saved"), dataset_config="en",
                                         **spec))


# ---------------------------------------------------------------- metrics, counts, weights


def test_macro_f1_and_accuracy_by_hand():
    task = build_custom_task(nli_spec())
    gold = [PairExample(i, "a", None, g) for i, g in enumerate(
        ["entailment", "entailment", "contradiction", "neutral", "contradiction"])]
    pred = ["entailment", "contradiction", "contradiction", "entailment", "contradiction"]
    # entailment: tp 1, fp 1, fn 1 -> 1/2; contradiction: tp 2, fp 1, fn 0 -> 4/5; neutral: tp 0 -> 0
    scores = task.score(gold, pred)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)
    assert build_custom_task(nli_spec(metric="macro-f1")).main_metric == "macro_f1"


def test_class_counts_and_balanced_weights():
    task = build_custom_task(nli_spec())
    train = task.load("train")
    counts = class_counts(train, task.labels)
    assert counts == {"contradiction": 2, "entailment": 3, "neutral": 1}
    n, k = 6, 3
    assert class_weights(train, task.labels) == pytest.approx([n / (k * 2), n / (k * 3), n / (k * 1)])
    # a label without training examples gets the largest weight of the others
    assert class_weights(train, ["contradiction", "entailment", "neutral", "other"]) == pytest.approx(
        [1.0, 2 / 3, 2.0, 2.0])


# ---------------------------------------------------------------- multiple choice


def test_multiple_choice_label_by_name_or_index():
    spec = CustomTaskSpec("multiple-choice", train_file=str(DATA / "copa_train.csv"),
                          validation_file=str(DATA / "copa_dev.csv"), context_column="premise",
                          choice_columns=["a", "b"], label_column="answer")
    task = build_custom_task(spec)
    assert (task.head, task.labels, task.main_metric) == ("multiple_choice", ("a", "b"), "accuracy")
    train = task.load("train")
    assert all(isinstance(e, ChoiceExample) for e in train)
    assert [e.label for e in train] == [0, 1, 0]  # "a", "1", "0"
    assert train[1].rows == [("I tipped the bottle.", "The liquid in the bottle froze."),
                             ("I tipped the bottle.", "The liquid poured out.")]
    assert task.score(task.load("val"), [0, 1]) == {"accuracy": 0.5}
    assert class_counts(train, task.labels) == {"a": 2, "b": 1}


def test_multiple_choice_bad_label(tmp_path):
    write(tmp_path / "t.csv", "q,a,b,y\nctx,one,two,c\n")
    spec = CustomTaskSpec("multiple-choice", train_file=str(tmp_path / "t.csv"), validation_file=str(tmp_path / "t.csv"),
                          context_column="q", choice_columns=["a", "b"], label_column="y")
    with pytest.raises(DataError, match=r"t\.csv:2: label 'c' .* neither a choice column name \['a', 'b'\] nor a "
                                        r"choice index 0\.\.1"):
        build_custom_task(spec)
    write(tmp_path / "t.csv", "q,a,b,y\nctx,one,two,2\n")
    with pytest.raises(DataError, match="label '2'"):
        build_custom_task(spec)


# ---------------------------------------------------------------- token classification


def tokens_spec(train: str, dev: str, **kw) -> CustomTaskSpec:
    return CustomTaskSpec("token-classification", train_file=str(train), validation_file=str(dev), **kw)


def test_conll_bio_labels_completed_and_scored():
    task = build_custom_task(tokens_spec(DATA / "ner_train.conll", DATA / "ner_dev.conll"))
    assert (task.head, task.main_metric, task.schedule, task.tag_scheme) == (
        "token_classification", "f1", "exponential", "BIO")
    # training tags plus I- for every type seen (I-ORG only appears in dev), sorted
    assert task.labels == ("B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O")
    train = task.load("train")
    assert all(isinstance(e, TokenExample) for e in train)
    assert [e.words for e in train] == [["John", "Smith", "lives", "in", "New", "York", "."], ["Acme", "hired", "Mary"]]
    assert [e.meta["line"] for e in train] == [3, 11]  # after -DOCSTART- and blank lines
    val = task.load("val")
    assert val[1].tags == ["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG"]
    from seqeval.metrics import f1_score

    pred = [["B-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "O", "B-ORG", "O"]]
    assert task.score(val, pred)["f1"] == pytest.approx(f1_score([e.tags for e in val], pred))
    # by hand: gold PER, LOC | PER, ORG(Acme Corp); predicted PER, LOC | PER, ORG(Acme): 3 of 4 right each way
    assert task.score(val, pred) == pytest.approx({"f1": 0.75, "precision": 0.75, "recall": 0.75})
    assert class_counts(train, task.labels) == {"B-LOC": 1, "B-ORG": 1, "B-PER": 2, "I-LOC": 1, "I-ORG": 0,
                                                "I-PER": 1, "O": 4}


def test_tokens_jsonl_same_as_conll(tmp_path):
    task = build_custom_task(tokens_spec(DATA / "ner_train.jsonl", DATA / "ner_dev.jsonl"))
    assert task.labels == ("B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O")
    assert task.load("val")[0].tags == ["B-PER", "I-PER", "O", "B-LOC"]
    write(tmp_path / "w.jsonl", '{"words": ["a", "b"], "labels": ["B-X", "O"]}\n')
    spec = tokens_spec(tmp_path / "w.jsonl", tmp_path / "w.jsonl", tokens_column="words", tags_column="labels")
    assert build_custom_task(spec).load("train")[0].words == ["a", "b"]


def test_iobes_detected_and_scored_strictly():
    task = build_custom_task(tokens_spec(DATA / "iobes_train.conll", DATA / "iobes_dev.conll"))
    assert task.tag_scheme == "IOBES" and task.spec.tag_scheme == "IOBES"
    assert task.labels == tuple(sorted({"O"} | {f"{p}-{t}" for t in ("ORG", "MISC", "PER") for p in "BIES"}))
    val = task.load("val")
    assert val[0].words == ["Peter", "Blackburn", "in", "EU"]  # four columns, tag = last
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOBES

    gold = [e.tags for e in val]
    # "B-PER I-PER" never closes: strict IOBES drops it; the default (CoNLL) mode would count it as right
    pred = [["B-PER", "I-PER", "O", "S-ORG"]]
    strict = f1_score(gold, pred, mode="strict", scheme=IOBES)
    assert strict == pytest.approx(2 * 1 / (1 + 2)) and strict != f1_score(gold, pred)
    assert task.score(val, pred)["f1"] == pytest.approx(strict)
    assert iobes_scores(gold, gold) == {"f1": 1.0, "precision": 1.0, "recall": 1.0}


def test_tag_errors_name_the_line(tmp_path):
    train = DATA / "ner_train.conll"
    task = build_custom_task(tokens_spec(train, write(tmp_path / "dev.conll", "Ann B-PER\nin O\nRome B-GPE\n")))
    with pytest.raises(DataError, match=r"dev\.conll:3: tag 'B-GPE' was not seen in the training split"):
        task.load("val")
    bad = write(tmp_path / "bad.conll", "a O\n\nb O\nc I-PER\n")
    with pytest.raises(DataError, match=r"bad\.conll:4: malformed BIO tags: 'I-PER' does not continue"):
        build_custom_task(tokens_spec(bad, train))
    with pytest.raises(DataError, match=r"bad\.conll:4: malformed IOBES tags: 'I-PER' does not continue"):
        build_custom_task(tokens_spec(bad, train, tag_scheme="IOBES"))
    # --tag-scheme IOBES on BIO data: a one-token B- entity is never closed
    bio = write(tmp_path / "bio.conll", "Ann B-PER\nran O\n")
    with pytest.raises(DataError, match=r"bio\.conll:2: malformed IOBES tags: 'O' follows an open PER entity"):
        build_custom_task(tokens_spec(bio, train, tag_scheme="iobes"))
    assert build_custom_task(tokens_spec(bio, train, tag_scheme="IOB2")).tag_scheme == "BIO"
    # IOBES: an entity left open at the end of a sentence, on its last line
    unclosed = write(tmp_path / "u.conll", "a S-X\n\nb B-X\nc I-X\n\nd O\n")
    with pytest.raises(DataError, match=r"u\.conll:4: malformed IOBES tags: the X entity is not closed"):
        build_custom_task(tokens_spec(unclosed, train))
    with pytest.raises(DataError, match=r"o\.conll: the training split has no entity tags"):
        build_custom_task(tokens_spec(write(tmp_path / "o.conll", "a O\n\nb O\n"), train))
    with pytest.raises(DataError, match=r"x\.conll:2: tag 'PER' is not BIO"):
        build_custom_task(tokens_spec(write(tmp_path / "x.conll", "a O\nb PER\n"), train))
    with pytest.raises(DataError, match=r"c\.conll:2: expected 2 columns like the first token line, found 3"):
        build_custom_task(tokens_spec(write(tmp_path / "c.conll", "a O\nb NN O\n"), train))
    rows = write(tmp_path / "t.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a", "b"], "tags": ["O", "I-X"]}\n')
    with pytest.raises(DataError, match=r"t\.jsonl:2: tags\[1\]: malformed BIO tags"):
        build_custom_task(tokens_spec(rows, rows))
    write(rows, '{"tokens": ["a", "b"], "tags": ["O"]}\n')
    with pytest.raises(DataError, match=r"t\.jsonl:1: 2 tokens but 1 tags"):
        build_custom_task(tokens_spec(rows, rows))
    write(rows, '{"tokens": ["a", 3], "tags": ["O", "O"]}\n')
    with pytest.raises(DataError, match=r"t\.jsonl:1: tokens\[1\] should be a string, got a number 3"):
        build_custom_task(tokens_spec(rows, rows))


def test_tokens_from_saved_dataset_with_classlabel_sequences(tmp_path):
    datasets = pytest.importorskip("datasets")
    names = ["O", "B-PER", "I-PER"]
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.ClassLabel(names=names))})
    rows = {"tokens": [["Ann", "Lee", "ran"], ["Bo", "sat"]], "ner_tags": [[1, 2, 0], [1, 0]]}
    ds = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict(train=ds, validation=ds).save_to_disk(str(tmp_path / "ner"))
    task = build_custom_task(CustomTaskSpec("token-classification", dataset=str(tmp_path / "ner"),
                                            tags_column="ner_tags"))
    assert task.labels == ("B-PER", "I-PER", "O")
    assert [e.tags for e in task.load("val")] == [["B-PER", "I-PER", "O"], ["B-PER", "O"]]


# ---------------------------------------------------------------- the spec


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="regression"), "--task 'regression'"),
    (dict(text_columns=["a", "b", "c"]), "--text-columns takes one or two"),
    (dict(text_columns=[]), "--text-columns takes one or two"),
    (dict(label_column=None), "--label-column is required"),
    (dict(train_file=None, validation_file=None), "no training data"),
    (dict(validation_file=None), "--validation-file is required"),
    (dict(dataset="some/hub"), "--dataset cannot be combined with --train-file"),
    (dict(dataset_config="x"), "--dataset-config needs --dataset"),
    (dict(metric="f1"), "--metric 'f1' is not reported by classification"),
    (dict(file_format="xlsx"), "--file-format 'xlsx'"),
    (dict(choice_columns=["a", "b"]), "--choice-columns is not used by classification"),
    (dict(tag_scheme="BIO"), "--tag-scheme is not used by classification"),
    (dict(label_column="premise"), "column 'premise' is given to both --text-columns and --label-column"),
    (dict(text_columns=["a", "a"]), "--text-columns names a column twice"),
    (dict(text_columns="premise"), "--text-columns should be a list"),
])
def test_spec_check_names_the_flag(kwargs, message):
    args = nli_spec().to_dict()
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        CustomTaskSpec(**args).check()


def test_spec_check_other_kinds():
    base = dict(train_file="t.csv", validation_file="d.csv")
    with pytest.raises(ValueError, match="--context-column is required"):
        CustomTaskSpec("multiple-choice", choice_columns=["a", "b"], label_column="y", **base).check()
    with pytest.raises(ValueError, match="--choice-columns takes two or more"):
        CustomTaskSpec("multiple-choice", context_column="q", choice_columns=["a"], label_column="y", **base).check()
    with pytest.raises(ValueError, match="--label-column is not used by token-classification"):
        CustomTaskSpec("token-classification", label_column="y", **base).check()
    with pytest.raises(ValueError, match="--tag-scheme 'BILOU'"):
        CustomTaskSpec("token-classification", tag_scheme="BILOU", **base).check()
    with pytest.raises(ValueError, match="--file-format csv cannot hold token lists"):
        CustomTaskSpec("token-classification", file_format="csv", **base).check()
    CustomTaskSpec("token-classification", tag_scheme="iobes", metric="precision", **base).check()
    assert parse_columns(" premise, hypothesis ", "--text-columns") == ["premise", "hypothesis"]
    with pytest.raises(ValueError, match="--choice-columns 'a,,b': empty column name"):
        parse_columns("a,,b", "--choice-columns")


def test_spec_round_trip_and_rebuild_without_reading(tmp_path):
    shutil.copy(DATA / "nli_train.csv", tmp_path / "train.csv")
    shutil.copy(DATA / "nli_dev.csv", tmp_path / "dev.csv")
    task = build_custom_task(nli_spec(train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "dev.csv")))
    record = json.loads(json.dumps({"spec": task.spec.to_dict(), "labels": list(task.labels)}))
    assert record["spec"]["metric"] == "accuracy" and Path(record["spec"]["train_file"]).is_absolute()
    (tmp_path / "train.csv").unlink()  # the adapter's task must not need the training file
    again = build_custom_task(CustomTaskSpec.from_dict(record["spec"]), labels=record["labels"])
    assert again.labels == task.labels and again.spec == task.spec
    assert len(again.load("val")) == 3
    # a file edited after a load is read again (records are cached by mtime and size)
    write(tmp_path / "dev.csv", "premise,hypothesis,label\na,b,neutral\nc,d,unsure\n")
    with pytest.raises(DataError, match=r"dev\.csv:3: label 'unsure' was not seen in the training split"):
        again.load("val")
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        CustomTaskSpec.from_dict({**record["spec"], "colour": "red"})
    with pytest.raises(ValueError, match="--text-columns should be a list"):
        CustomTaskSpec.from_dict({**record["spec"], "text_columns": 3})
    with pytest.raises(ValueError, match="missing key 'kind'"):
        CustomTaskSpec.from_dict({"train_file": "x"})
    with pytest.raises(ValueError, match="labels should be distinct"):
        build_custom_task(task.spec, labels=["a", "a"])


# ---------------------------------------------------------------- prediction inputs


def test_read_custom_records_jsonl_and_csv(tmp_path):
    task = build_custom_task(nli_spec())
    rows = write(tmp_path / "in.jsonl", '{"premise": "P", "hypothesis": "H", "idx": "q1"}\n\n'
                                       '{"premise": "P2", "hypothesis": "H2", "label": "whatever"}\n')
    out = read_custom_records(task, rows)
    assert [(e.idx, e.text_a, e.text_b, e.label) for e in out] == [("q1", "P", "H", None), (3, "P2", "H2", None)]
    csv_in = write(tmp_path / "in.csv", "hypothesis,premise\nH,P\n")
    assert [(e.text_a, e.text_b, e.idx) for e in read_custom_records(task, csv_in)] == [("P", "H", 2)]
    write(rows, '{"premise": "P", "hypothesis": "H"}\n{"premise": "P"}\n')
    with pytest.raises(DataError, match=r"in\.jsonl:2: missing column 'hypothesis'"):
        read_custom_records(task, rows)
    with pytest.raises(DataError, match=r"in\.txt: prediction inputs for classification are"):
        read_custom_records(task, write(tmp_path / "in.txt", "x"))
    tokens = build_custom_task(tokens_spec(DATA / "ner_train.jsonl", DATA / "ner_dev.jsonl"))
    words = read_custom_records(tokens, write(tmp_path / "t.jsonl", '{"tokens": ["Ann", "ran"]}\n{"tokens": []}\n'))
    assert [(e.idx, e.words, e.tags) for e in words] == [(1, ["Ann", "ran"], None), (2, [], None)]
    with pytest.raises(DataError, match="are .jsonl or .json files"):
        read_custom_records(tokens, csv_in)


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize("train, message", [
    (b"text,label\nok,a\nbad \xe9t\xe9,b\n", r"train\.csv:3: byte 0xe9 .* is not UTF-8"),
    (b"", r"train\.csv: empty file"),
    (b"text,label\n", r"train\.csv: no examples"),
    (b"txt,label\nx,a\n", r"train\.csv:1: no column 'text' \(--text-columns\); columns present: \['txt', 'label'\]"),
    (b"text,label\nx,a\ny,b,extra\n", r"train\.csv:3: expected 2 fields"),
    (b"text,label\nx,a\ny,\n", r"train\.csv:3: missing label: column 'label' is empty"),
    (b'text,label\nx,a\n"unclosed,b\n', r"train\.csv:3: malformed CSV"),
    (b"text,text,label\nx,y,a\n", r"train\.csv:1: duplicate column names \['text'\]"),
    (b"text,label\nx,a\ny,a\n", r"train\.csv: the training split has a single label 'a'"),
])
def test_bad_csv_files(tmp_path, train, message):
    with pytest.raises(DataError, match=message):
        build_custom_task(cls_files(tmp_path, train))


@pytest.mark.parametrize("train, message", [
    ('{"text": "a", "label": "x"}\n{"text": "b"}\n', r"train\.jsonl:2: missing label column 'label'"),
    ('{"text": "a", "label": "x"}\n{"text": ["b"], "label": "x"}\n', r"train\.jsonl:2: column 'text' should be a string"),
    ('{"text": "a", "label": 1.5}\n', r"train\.jsonl:1: label column 'label' should be a string or an integer"),
    ('{"text": "a", "label": "x"}\n{"text": "b", \n', r"train\.jsonl:2: malformed JSON"),
    ('["text", "label"]\n', r"train\.jsonl:1: expected a JSON object per line"),
    ('{"text": "a\\ud800", "label": "x"}\n', r"train\.jsonl:1: column 'text' contains a lone surrogate"),
    ('{"text": "a", "label": null}\n', r"train\.jsonl:1: missing label: column 'label' is empty"),
    ('\n\n', r"train\.jsonl: empty split"),
])
def test_bad_jsonl_files(tmp_path, train, message):
    with pytest.raises(DataError, match=message):
        build_custom_task(cls_files(tmp_path, train, dev='{"text": "a", "label": "x"}\n', ext="jsonl"))


def test_missing_files_and_unknown_extensions(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found \(--validation-file\)"):
        build_custom_task(nli_spec(validation_file=str(tmp_path / "nope.csv")))
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        build_custom_task(nli_spec(train_file=str(tmp_path / "nope.csv")))
    odd = write(tmp_path / "train.xlsx", "x")
    with pytest.raises(DataError, match=r"unknown file extension '\.xlsx'"):
        build_custom_task(nli_spec(train_file=str(odd)))
    # --file-format overrides the extension
    shutil.copy(DATA / "nli_train.csv", tmp_path / "train.data")
    assert len(build_custom_task(nli_spec(train_file=str(tmp_path / "train.data"), file_format="csv")).labels) == 3
    with pytest.raises(DataError, match="classification reads"):
        build_custom_task(nli_spec(train_file=str(DATA / "ner_train.conll")))


def test_records_encode_with_a_tokenizer(tmp_path):
    """The records go through encode() unchanged (a tiny WordPiece tokenizer; no model)."""
    from transformers import BertTokenizerFast

    from adaprefix.tasks.encode import encode

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "man", "dog", "john", "smith", ".", "the"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    nli = build_custom_task(nli_spec())
    feats = encode(nli.load("train"), tok, nli.label_names, 32)
    assert [f.label for f in feats] == [nli.label_names.index(e.label) for e in nli.load("train")]
    ner = build_custom_task(tokens_spec(DATA / "ner_train.conll", DATA / "ner_dev.conll"))
    feats = encode(ner.load("train"), tok, ner.label_names, 32)
    assert feats[0].label[1] == ner.label_names.index("B-PER")
    mc = build_custom_task(CustomTaskSpec("multiple-choice", train_file=str(DATA / "copa_train.csv"),
                                          validation_file=str(DATA / "copa_dev.csv"), context_column="premise",
                                          choice_columns=["a", "b"], label_column="answer"))
    feats = encode(mc.load("train"), tok, mc.label_names, 32)
    assert len(feats[0].input_ids) == 2 and feats[1].label == 1
