"""digits sweep on tiny data (CliRunner), its determinism, resuming and interruption, the summaries,
and digits evaluate --misclassified."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_digits import metrics

from tinygrad_digits.apps import training as app
from tinygrad_digits.apps import sweep as sw
from tinygrad_digits.cli import sweep as cli_sweep
from tinygrad_digits.cli.main import main
from tinygrad_digits.modelfile import load_model

MNIST_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
TINY = ["--data", str(MNIST_DIR), "--train-size", "1000", "--epochs", "1", "--batch-size", "25", "--lr", "0.01"]
GRID = ["--hidden", "8,12", "--hidden", "8x6", "--act", "relu,tanh"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in sw.TIMING_KEYS}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One tiny sweep: 3 configurations x 2 activations x seed 0, with --json and a plot."""
    out = tmp_path_factory.mktemp("sweep")
    result = run("sweep", *TINY, *GRID, "--out", out, "--json", "--plot", out / "plot.png")
    assert result.exit_code == 0, result.output
    return out, result


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("64,128,256", "128x64"), [(64,), (128,), (256,), (128, 64)]),
        (("128x64x32",), [(128, 64, 32)]),
        (("64, 64", "64"), [(64,)]),
    ],
)
def test_hidden_lists_configurations_and_x_separates_layers(given, expected):
    assert cli_sweep.parse_configurations(given) == expected


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--hidden", "64,0"], ["--hidden", "positive"]),
        (["--hidden", "12a"], ["--hidden", "12a"]),
        (["--act", "relu,swish"], ["--act", "swish"]),
        (["--seeds", "0,one"], ["--seeds", "one"]),
        (["--jobs", "0"], ["--jobs"]),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args, words):
    result = run("sweep", *args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error: ")
    for word in words:
        assert word in err


# ---------------------------------------------------------------- a tiny sweep


def test_sweep_prints_a_ranked_table_a_digit_matrix_and_saves_results(swept):
    out, result = swept
    report = json.loads(result.stdout)
    assert len(report["runs"]) == 6 and report["complete"]
    labels = [row["label"] for row in report["ranking"]]
    assert sorted(labels) == sorted(["8 relu", "8 tanh", "12 relu", "12 tanh", "8x6 relu", "8x6 tanh"])
    accuracies = [row["test_accuracy"] for row in report["ranking"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert all(0.15 < a <= 1 for a in accuracies)  # 40 steps: above chance (0.1)
    for row in report["ranking"]:
        assert row["weakest_digit"] == int(np.argmin(row["per_digit_accuracy"]))
    text = result.stderr  # with --json the human-readable output goes to stderr
    assert "rank" in text and "test acc %" in text and "s/epoch" in text and "params" in text
    assert "per-digit test accuracy" in text
    matrix = text[text.index("per-digit test accuracy") :].splitlines()[2:8]
    assert all(line.count("*") == 1 for line in matrix)  # each row marks its weakest digit
    assert (out / "plot.png").stat().st_size > 0
    lines = (out / sw.RESULTS).read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line)["key"] for line in lines)
    for record in report["runs"]:
        assert Path(record["model"]).is_file()
        assert record["n_params"] == load_model(record["model"])[0].n_params()


def test_a_rerun_resumes_and_a_fresh_sweep_is_identical(swept, tmp_path):
    out, first = swept
    again = run("sweep", *TINY, *GRID, "--out", out, "--json", "--no-plot")
    assert again.exit_code == 0
    assert "6 runs were already" in again.stderr
    assert json.loads(again.stdout)["runs"] == json.loads(first.stdout)["runs"]
    assert len((out / sw.RESULTS).read_text().splitlines()) == 6  # nothing trained again

    fresh = run("sweep", *TINY, *GRID, "--out", tmp_path, "--json", "--no-plot")
    a, b = json.loads(first.stdout)["runs"], json.loads(fresh.stdout)["runs"]
    assert [strip(r) for r in a] == [strip(r) for r in b]  # deterministic for a given seed


def test_a_sweep_run_is_the_same_as_digits_train(swept, tmp_path):
    _, result = swept
    record = next(r for r in json.loads(result.stdout)["runs"] if r["label"] == "8x6 tanh")
    model = tmp_path / "train.npz"
    trained = run("train", *TINY, "--hidden", "8x6", "--act", "tanh", "--no-plot", "--out", model)
    assert trained.exit_code == 0
    _, a, _ = load_model(record["model"])
    _, b, _ = load_model(model)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_an_interrupted_sweep_keeps_finished_runs_and_the_next_trains_the_rest(tmp_path, monkeypatch):
    real = sw.run_one
    calls = []

    def interrupted_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sw, "run_one", interrupted_on_third)
    args = [
        "sweep",
        *TINY,
        "--hidden",
        "8",
        "--act",
        "relu,tanh",
        "--seeds",
        "0,1",
        "--out",
        tmp_path,
        "--no-plot",
    ]
    result = run(*args)
    assert result.exit_code == 130
    assert "interrupted: 2 of 4 runs finished" in result.stderr
    assert len(sw.load_records(tmp_path)) == 2
    monkeypatch.setattr(sw, "run_one", real)
    result = run(*args)
    assert result.exit_code == 0 and "2 runs were already" in result.stderr
    assert len(sw.load_records(tmp_path)) == 4


def test_parallel_jobs_give_the_same_results(tmp_path, swept):
    _, first = swept
    result = run(
        "sweep",
        *TINY,
        "--hidden",
        "8x6",
        "--act",
        "relu,tanh",
        "--out",
        tmp_path,
        "--json",
        "--no-plot",
        "--jobs",
        "2",
    )
    assert result.exit_code == 0, result.output
    parallel = {r["label"]: r for r in json.loads(result.stdout)["runs"]}
    sequential = {r["label"]: r for r in json.loads(first.stdout)["runs"] if r["label"] in parallel}
    assert parallel.keys() == sequential.keys() == {"8x6 relu", "8x6 tanh"}
    for label, record in parallel.items():
        # one BLAS thread per worker: the same run, up to the last bits of the arithmetic
        assert record["key"] == sequential[label]["key"]
        assert record["test_accuracy"] == pytest.approx(sequential[label]["test_accuracy"], abs=2e-3)
        assert record["test_loss"] == pytest.approx(sequential[label]["test_loss"], rel=1e-4)


# ---------------------------------------------------------------- the library


def record(label, seed, accuracy, digits, hidden=(8,), act="relu"):
    return {
        "key": f"{label}-{seed}",
        "label": label,
        "hidden": list(hidden),
        "activation": act,
        "seed": seed,
        "n_params": 100,
        "test_accuracy": accuracy,
        "test_loss": 1 - accuracy,
        "val_accuracy": accuracy,
        "val_loss": 0.5,
        "per_digit_accuracy": digits,
        "seconds_per_epoch": 0.1,
        "stopped": None,
    }


def test_summarize_ranks_by_mean_and_reports_the_spread_and_the_weakest_digit():
    even = [0.9] * 10
    weak3 = [0.95] * 10
    weak3[3] = 0.6
    rows = sw.summarize(
        [
            record("a", 0, 0.90, even),
            record("b", 0, 0.93, weak3),
            record("a", 1, 0.92, even),
            record("b", 1, 0.95, weak3),
        ]
    )
    assert [r["label"] for r in rows] == ["b", "a"]
    assert rows[0]["test_accuracy"] == pytest.approx(0.94)
    assert rows[0]["test_accuracy_sd"] == pytest.approx(np.std([0.93, 0.95], ddof=1))
    assert rows[0]["seeds"] == [0, 1] and rows[0]["weakest_digit"] == 3
    table = sw.format_table(rows)
    assert table.splitlines()[1].split()[:2] == ["1", "b"]
    assert "94.00" in table and "1.41" in table
    matrix = sw.format_digit_matrix(rows)
    assert "60.0*" in matrix


def test_grid_keys_and_records_file(tmp_path):
    base = app.TrainRun(epochs=3)
    runs = sw.grid([(64,), (128, 64)], ["relu", "tanh"], [0, 1], base)
    assert len(runs) == 8
    assert runs[-1].spec_args["hidden"] == (128, 64) and runs[-1].spec_args["activations"] == ("tanh", "tanh")
    assert runs[-1].seed == 1 and runs[-1].epochs == 3
    assert len({sw.run_key(r) for r in runs}) == 8
    assert sw.run_key(runs[0]) == sw.run_key(sw.grid([(64,)], ["relu"], [0], base)[0])
    whole = {"key": "a", "label": "64-relu", "hidden": [64], "activation": "relu", "seed": 0, "config": {},
             "n_params": 50890, "test_accuracy": 0.9, "test_loss": 0.3, "val_accuracy": None, "val_loss": 0.3,
             "per_digit_accuracy": [0.9] * 10, "seconds_per_epoch": 0.2, "epochs_done": 3}
    lines = [{**whole, "test_accuracy": 0.8}, '{"key": "b"', whole, {"key": "a"}, {**whole, "seed": "x"},
             {**whole, "key": "c", "per_digit_accuracy": [1]}]
    (tmp_path / sw.RESULTS).write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    records = sw.load_records(tmp_path)  # cut-short lines and partial or mistyped records are skipped
    assert list(records) == ["a"] and records["a"]["test_accuracy"] == 0.9
    assert math.isnan(records["a"]["val_accuracy"])  # null in the file: not a number


# ---------------------------------------------------------------- evaluate --misclassified


def test_most_confident_mistakes_are_ranked_by_confidence():
    labels = np.array([0, 1, 2, 0])
    probs = np.array([[0.2, 0.8, 0.0], [0.1, 0.9, 0.0], [0.05, 0.0, 0.95], [0.4, 0.0, 0.6]])
    mistakes = metrics.most_confident_mistakes(labels, probs)
    assert [m["index"] for m in mistakes] == [0, 3]
    assert mistakes[0] == {"index": 0, "label": 0, "predicted": 1, "confidence": 0.8}
    assert metrics.most_confident_mistakes(labels, probs, count=1) == mistakes[:1]


def test_evaluate_misclassified_draws_the_grid(swept, tmp_path):
    _, result = swept
    model = json.loads(result.stdout)["runs"][0]["model"]
    png = tmp_path / "wrong.png"
    evaluated = run("evaluate", model, "--data", MNIST_DIR, "--misclassified", png, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    mistakes = json.loads(evaluated.stdout)["misclassified"]
    assert len(mistakes) == 36 and png.stat().st_size > 0
    confidences = [m["confidence"] for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)
    assert all(m["label"] != m["predicted"] and not math.isnan(m["confidence"]) for m in mistakes)


# ---------------------------------------------------------------- resuming from the command line


def _ranking(result) -> list[dict]:
    """The ranking of a sweep's --json output (a strict parse), without its timings."""

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    rows = json.loads(result.stdout, parse_constant=refuse)["ranking"]
    return [{k: v for k, v in row.items() if k != "seconds_per_epoch"} for row in rows]


def test_resuming_past_a_line_holding_only_an_existing_key(tmp_path):
    args = ["sweep", *TINY, "--hidden", "8", "--out", tmp_path, "--no-plot", "--json"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    (key,) = sw.load_records(tmp_path)
    with open(tmp_path / sw.RESULTS, "a") as f:
        f.write(json.dumps({"key": key}) + "\n")  # a hand edit, or a write cut short
    again = CliRunner().invoke(main, [str(a) for a in args])
    assert again.exit_code == 0 and again.exception is None, again.output
    assert "Traceback" not in again.output and "1 runs were already" in again.stderr
    assert _ranking(again) == _ranking(first)


def test_an_interrupted_then_resumed_sweep_reaches_the_same_table(tmp_path, monkeypatch):
    args = ["sweep", *TINY, "--hidden", "8", "--act", "relu,tanh", "--seeds", "0,1", "--no-plot", "--json"]
    straight = run(*args, "--out", tmp_path / "straight")
    assert straight.exit_code == 0, straight.output

    real, calls = sw.run_one, []

    def interrupted_on_second(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(sw, "run_one", interrupted_on_second)
    cut = run(*args, "--out", tmp_path / "resumed")
    assert cut.exit_code == 130 and "interrupted: 1 of 4 runs finished" in cut.stderr
    monkeypatch.setattr(sw, "run_one", real)
    resumed = run(*args, "--out", tmp_path / "resumed")
    assert resumed.exit_code == 0 and "1 runs were already" in resumed.stderr
    assert _ranking(resumed) == _ranking(straight)  # the table's rows, but for the timings


# ---------------------------------------------------------------- convnets in a sweep


def test_conv_configurations_read_as_hidden_ones():
    assert cli_sweep.parse_configurations(("none,4x8", "4"), "--conv") == [(), (4, 8), (4,)]
    assert cli_sweep.parse_configurations(("none", "16"), "--hidden") == [(), (16,)]
    assert cli_sweep.parse_configurations(("4x8+8",), "--conv") == [(4, (8, 8))]  # two convolutions, one pool


@pytest.mark.parametrize(("conv", "words"), [("0", ["--conv", "positive"]), ("4x4x4x4", ["--conv", "at most 3"]),
                                             ("a", ["--conv", "'a'"])])
def test_bad_conv_configurations_are_refused(conv, words):
    result = run("sweep", *TINY, "--conv", conv)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert all(word in result.stderr for word in words)


def test_grid_adds_conv_as_an_axis_and_keeps_mlp_keys():
    base = app.TrainRun(epochs=3)
    runs = sw.grid([(16,), ()], ["relu", "tanh"], [0], base, convs=[(), (4,)])
    # conv-major; without hidden layers the two activations are one run
    assert [(r.spec_args.get("conv"), r.spec_args["hidden"], r.spec_args["activations"]) for r in runs] == [
        (None, (16,), ("relu",)), (None, (16,), ("tanh",)), (None, (), ()),
        ((4,), (16,), ("relu",)), ((4,), (16,), ("tanh",)), ((4,), (), ())]
    assert sw.run_key(runs[0]) == sw.run_key(sw.grid([(16,)], ["relu"], [0], base)[0])
    assert [sw.config_label(r.spec_args["hidden"], sw.run_activation(r), r.spec_args.get("conv", ())) for r in runs] == [
        "16 relu", "16 tanh", "none", "conv4 16 relu", "conv4 16 tanh", "conv4 none"]
    blocks = sw.grid([(16,)], ["relu"], [0], base, convs=[(4, (8, 8))])[0].spec_args["conv"]
    assert blocks == (4, (8, 8)) and sw.config_label((16,), "relu", blocks) == "conv4x8+8 16 relu"


def test_a_sweep_with_batch_norm_trains_its_runs_with_it(tmp_path):
    result = run("sweep", "--data", MNIST_DIR, "--train-size", "256", "--epochs", "1", "--conv", "2x2+2",
                 "--hidden", "8", "--batch-norm", "--out", tmp_path, "--no-plot", "--json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["runs"]
    assert record["config"]["spec_args"]["batch_norm"] is True and record["conv"] == [2, [2, 2]]
    spec, params, _ = load_model(record["model"])
    assert spec.batch_norm and spec.conv == (2, (2, 2)) and "batchnorm0.mean" in params


def test_a_sweep_over_conv_configurations(tmp_path):
    result = run("sweep", "--data", MNIST_DIR, "--train-size", "256", "--epochs", "1", "--conv", "none,2",
                 "--hidden", "8", "--out", tmp_path, "--no-plot", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted((r["label"], tuple(r["conv"])) for r in report["runs"]) == [("8 relu", ()), ("conv2 8 relu", (2,))]
    assert {row["label"]: row["conv"] for row in report["ranking"]} == {"8 relu": [], "conv2 8 relu": [2]}
    cnn = next(r for r in report["runs"] if r["conv"])
    spec, _, _ = load_model(cnn["model"])
    assert spec.conv == (2,) and cnn["n_params"] == spec.n_params()
