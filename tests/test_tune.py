"""`%tune`: a real search of a spec's spaces with Optuna, as a user runs it."""

import os
import subprocess
import sys
import textwrap

import pytest

from nbkeras.errors import UsageError

pytest.importorskip("optuna")

DATA = """
import numpy as np, keras
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:400] / 16).astype('float32'); y = d.target[:400]
xv = (d.data[400:500] / 16).astype('float32'); yv = d.target[400:500]
"""
SPEC = """%%model tn
input 64
dense {8, 32}@width relu
dropout 0.0..0.5
dense 10 softmax
optimizer adam lr=1e-3..1e-2:log"""


@pytest.fixture
def tn(ip):
    ip.run_cell(DATA).raise_error()
    ip.run_cell(SPEC).raise_error()
    return ip


def test_a_search_returns_its_trials_best_first_and_binds_the_best_model(tn):
    df = tn.run_line_magic("tune", "tn x y --trials 3 -e 2 --val xv yv --seed 3 --quiet")
    assert list(df.columns) == ["trial", "value", "state", "duration", "width", "dropout.rate",
                                "optimizer.learning_rate"]
    assert len(df) == 3 and list(df["state"]) == ["complete"] * 3
    assert list(df["value"]) == sorted(df["value"])          # val_loss: lower first
    best = df.iloc[0]
    tn_model = tn.user_ns["tn"]
    assert tn_model.best_params["width"] == best["width"]
    # NAME holds the best trial's trained weights, not a retrained copy
    held = tn_model.evaluate(tn.user_ns["xv"], tn.user_ns["yv"], verbose=0, return_dict=True)
    assert held["loss"] == pytest.approx(best["value"], rel=1e-4)
    import nbkeras
    trials = [r for r in nbkeras.runs(model="tn") if r["study"] == "tn"]
    assert sorted(r["trial"] for r in trials) == [0, 1, 2]
    assert all(r["status"] == "completed" for r in trials)


def test_the_same_seed_gives_the_same_trial_values(tn):
    a = tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --seed 7 --study a --quiet")
    b = tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --seed 7 --study b --quiet")
    cols = ["trial", "width", "dropout.rate", "optimizer.learning_rate"]
    assert a.sort_values("trial")[cols].values.tolist() == b.sort_values("trial")[cols].values.tolist()


def test_a_trial_keras_rejects_fails_alone_and_the_search_goes_on(ip):
    ip.run_cell(DATA + "\nimg = x.reshape(-1, 8, 8, 1)").raise_error()
    ip.run_cell("%%model cnn\ninput 8x8x1\nconv2d 4 {3, 12} relu\nflatten\ndense 10 softmax"
                ).raise_error()
    df = ip.run_line_magic("tune", "cnn img y --trials 4 -e 1 --val-split 0.2 --sampler grid "
                                   "--quiet")
    states = dict(zip(df["conv2d.kernel_size"].astype(str), df["state"]))
    assert states["3"] == "complete" and states["12"] == "failed"


@pytest.mark.parametrize("line, message", [
    ("plain x y --trials 2", "has no search space"),
    ("tn x y --trials 2 --sampler grid", "--sampler grid needs every space"),
    ("tn x y --trials 2 --workers 0", "--workers 0: give at least 1"),
    ("tn x y --trials 2 --workers 2 --storage nosuch://x", "'nosuch://x' cannot be opened"),
    ("tn x y --trials 2 --cv 2 --val-split 0.2", "holds out each fold"),
    ("tn x y", "give --trials N"),
    ("tn x y --trials 1 --storage nosuch://x", "cannot be opened"),
    ("tn x y --trials 1 --sampler tpr", "did you mean `tpe`"),
])
def test_user_errors_are_one_line_before_any_trial(tn, line, message):
    tn.run_cell("%%model plain\ninput 64\ndense 10 softmax").raise_error()
    with pytest.raises(UsageError, match=message):
        tn.run_line_magic("tune", line + " -e 1 --quiet")
    import nbkeras
    assert not [r for r in nbkeras.runs() if r["study"]]     # nothing ran


def test_a_study_resumes_in_a_new_process(tn, nbkeras_home):
    tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --seed 1 --quiet")
    code = textwrap.dedent(f"""
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "nbkeras")
        ip.run_cell({DATA!r}).raise_error()
        ip.run_cell({SPEC!r}).raise_error()
        df = ip.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --resume --quiet")
        print("TRIALS", sorted(df["trial"]))
    """)
    env = dict(os.environ, NBKERAS_HOME=str(nbkeras_home), TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert "TRIALS [0, 1, 2, 3]" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_resuming_binds_the_study_best_even_when_it_is_an_earlier_trial(tn, monkeypatch):
    """After a restart NAME is the default model: `--resume` binds the study's
    best trained model, kept in the study folder, even if no new trial wins."""
    first = tn.run_line_magic("tune", "tn x y --trials 2 -e 2 --val xv yv --seed 1 --quiet")
    tn.run_cell(SPEC).raise_error()  # as after a restart: NAME at its defaults
    import nbkeras.tune.search as search
    import nbkeras.tune.trial as trials

    def failing(ctx, study, trial, row, view, optuna):  # every new trial fails (say, OOM)
        row.state, row.message = "failed", "out of memory"
        return None, False, trials._tell(study, trial, state=optuna.trial.TrialState.FAIL)

    monkeypatch.setattr(search, "run_trial", failing)
    df = tn.run_line_magic("tune", "tn x y --trials 1 -e 2 --val xv yv --resume --quiet")
    assert list(df["state"]).count("failed") == 1
    best = first.iloc[0]
    model = tn.user_ns["tn"]
    held = model.evaluate(tn.user_ns["xv"], tn.user_ns["yv"], verbose=0, return_dict=True)
    assert held["loss"] == pytest.approx(best["value"], rel=1e-4)
    assert model.best_params["width"] == best["width"]


def test_a_zero_timeout_is_refused_not_an_endless_search(tn):
    with pytest.raises(UsageError, match="above 0"):
        tn.run_line_magic("tune", "tn x y --timeout 0 -e 1 --val xv yv --quiet")


def test_a_cross_validated_search_scores_each_trial_by_the_mean_over_folds(tn):
    df = tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --cv 2 --seed 5 --quiet")
    assert list(df["state"]) == ["complete", "complete"]
    import nbkeras
    folds = [r for r in nbkeras.runs(model="tn") if r["options"].get("cv_group")]
    assert len(folds) == 4 and {r["trial"] for r in folds} == {0, 1}
    for trial, value in zip(df["trial"], df["value"]):
        runs = [r for r in folds if r["trial"] == trial]
        mean = sum(r["last"]["val_loss"] for r in runs) / len(runs)
        assert value == pytest.approx(mean, rel=1e-6)


def test_the_record_chart_adds_parallel_coordinates_and_stays_small():
    import io
    import random

    from PIL import Image

    from nbkeras.tune.view import HEIGHT, WIDTH, SearchState, TrialRow, objective_png
    rng = random.Random(0)
    state = SearchState(study="s", objective="val_loss", direction="min",
                        spaces=["width", "dropout.rate"], planned=50)
    for i in range(50):
        state.rows.append(TrialRow(number=i, values={"width": rng.choice([16, 32, 64]),
                                                     "dropout.rate": rng.random() / 2},
                                   state="complete", value=rng.uniform(0.1, 1.5)))
    png = objective_png(state)
    assert Image.open(io.BytesIO(png)).size == (2 * WIDTH, 2 * 2 * HEIGHT)  # two panels, 2x
    assert len(png) < 80_000


def test_count_metrics_are_lower_is_better_in_the_study_and_every_trial_callback(
        tn, monkeypatch):
    """`false_negatives` is a count of mistakes: the study minimizes it and
    each trial's early stopping watches it the same way, as a given
    --direction does too (one direction, decided once)."""
    from nbkeras.metricvocab import direction
    assert direction("val_false_negatives") == direction("false_positives") == "min"
    tn.run_cell("yb = (y == 3).astype('float32'); yvb = (yv == 3).astype('float32')"
                ).raise_error()
    tn.run_cell("%%model fnm\ninput 64\ndense {4, 8} relu\ndense 1 sigmoid\n"
                "loss binary_crossentropy\nmetrics false_negatives").raise_error()
    import nbkeras.tune.trial as trials
    modes = []
    build = trials._build_trial

    def recording(ctx, values, trial):
        model, info, plan = build(ctx, values, trial)
        modes.extend(cb.mode for cb in plan.callbacks if hasattr(cb, "mode"))
        return model, info, plan

    monkeypatch.setattr(trials, "_build_trial", recording)
    df = tn.run_line_magic("tune", "fnm x yb --trials 2 -e 1 --val xv yvb --early-stop 2 "
                                   "--objective val_false_negatives --quiet")
    import optuna
    assert optuna.load_study(study_name="fnm", storage=_storage()).direction.name == "MINIMIZE"
    assert modes == ["min", "min"]
    assert list(df["value"]) == sorted(df["value"])
    modes.clear()
    tn.run_line_magic("tune", "fnm x yb --trials 1 -e 1 --val xv yvb --early-stop 2 "
                              "--objective val_loss --direction max --study up --quiet")
    assert modes == ["max"]
    import nbkeras
    assert {r["options"]["direction"] for r in nbkeras.runs(model="fnm")
            if r["study"] == "up"} == {"max"}


def _storage():
    from nbkeras.tune.study import default_storage
    return default_storage()


def test_rerunning_a_cell_starts_a_new_study_and_keeps_the_old_one(tn, capsys):
    """Restart and Run All runs the same `%tune` line again: a new study,
    named in one line; the old one keeps its trials."""
    tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --seed 1 --quiet")
    capsys.readouterr()
    df = tn.run_line_magic("tune", "tn x y --trials 1 -e 1 --val xv yv --seed 1 --quiet")
    assert ("nbkeras: a study named 'tn' exists already (--resume continues it): this search "
            "is study 'tn-2'") in capsys.readouterr().out
    assert df["trial"].tolist() == [0]
    import optuna
    assert len(optuna.load_study(study_name="tn", storage=_storage()).trials) == 2
    assert len(optuna.load_study(study_name="tn-2", storage=_storage()).trials) == 1
    tn.run_line_magic("tune", "tn x y --trials 1 -e 1 --val xv yv --quiet")
    assert "this search is study 'tn-3'" in capsys.readouterr().out
    import nbkeras
    studies = sorted((r["study"], r["trial"]) for r in nbkeras.runs(model="tn"))
    assert studies == [("tn", 0), ("tn", 1), ("tn-2", 0), ("tn-3", 0)]


def test_a_resumed_search_with_the_same_seed_samples_new_values(tn):
    first = tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --seed 4 "
                                      "--sampler random --quiet")
    df = tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --seed 4 "
                                   "--sampler random --resume --quiet")
    assert sorted(df["trial"]) == [0, 1, 2, 3]
    rates = df["dropout.rate"].tolist()
    assert len(set(rates)) == 4, rates                       # no configuration replayed
    assert set(first["dropout.rate"]) <= set(rates)


def test_worker_and_resumed_sampler_streams_differ_from_the_kernel_stream():
    from nbkeras.tune.study import stream_seed
    assert stream_seed(None, 3) is None
    assert stream_seed(5, 0) == 5                            # a new search: the seed itself
    seeds = {stream_seed(5, 0, worker=0), stream_seed(5, 0, worker=1), stream_seed(5, 2),
             stream_seed(5, 2, worker=0), 5, 6}                 # 6: seed + 1 (worker 1 once)
    assert len(seeds) == 6
    assert stream_seed(5, 2, worker=1) == stream_seed(5, 2, worker=1)


def test_a_resumed_grid_runs_only_the_points_left(ip, capsys, monkeypatch):
    ip.run_cell(DATA).raise_error()
    ip.run_cell("%%model g\ninput 64\ndense {4, 8, 16} relu\ndense 10 softmax").raise_error()
    ip.run_line_magic("tune", "g x y --trials 2 -e 1 --val xv yv --sampler grid --quiet")
    df = ip.run_line_magic("tune", "g x y --trials 5 -e 1 --val xv yv --sampler grid --resume "
                                   "--quiet")
    assert sorted(df["dense.units"]) == [4, 8, 16]           # the third point, once
    capsys.readouterr()
    import nbkeras.view.text
    monkeypatch.setattr(nbkeras.view.text, "has_rich_frontend", lambda shell: True)
    df = ip.run_line_magic("tune", "g x y --trials 2 -e 1 --val xv yv --sampler grid --resume")
    assert len(df) == 3
    assert ("nbkeras: study 'g' has run every point of its grid (3): no new trial"
            in capsys.readouterr().out)


def test_a_resumed_search_counts_only_its_new_trials(tn, monkeypatch):
    import re

    import nbkeras.view.text
    tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --quiet")
    monkeypatch.setattr(nbkeras.view.text, "has_rich_frontend", lambda shell: True)
    shown = []
    monkeypatch.setattr(tn.display_pub, "publish",
                        lambda data, *a, **k: shown.append(data.get("text/html", "")))
    tn.run_line_magic("tune", "tn x y --trials 2 -e 1 --val xv yv --resume")
    counts = [re.search(r"</span></span> (\d+/\d+)", h) for h in shown
              if "nbkeras-tune" in h]
    counts = [c.group(1) for c in counts if c]
    assert counts[0] == "0/2" and counts[-1] == "2/2", counts


def test_the_trial_in_flight_is_named_by_the_table_numbering():
    from nbkeras.tune.view import SearchState, TrialRow, search_html
    s = SearchState(study="s", objective="val_loss", direction="min", spaces=[], planned=3)
    s.rows = [TrialRow(0, {}, "complete", 0.5), TrialRow(1, {}, "running")]
    s.current = "epoch 1/2"
    assert ">trial 1</span>" in search_html(s)


def test_a_model_built_with_an_input_option_can_be_searched(ip, capsys):
    ip.run_cell(DATA).raise_error()
    ip.run_cell("%%model ti --input 64\ndense {4, 8} relu\ndense 10 softmax").raise_error()
    df = ip.run_line_magic("tune", "ti x y --trials 2 -e 1 --val xv yv --quiet")
    assert list(df["state"]) == ["complete"] * 2
    capsys.readouterr()
    ip.run_line_magic("model", "ti --code")                 # the winner's code, at its values
    assert "keras.Input(shape=(64,))" in capsys.readouterr().out


def test_a_dataset_without_validation_data_is_refused_in_one_line(tn):
    tn.run_cell("import tensorflow as tf\nds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)"
                ).raise_error()
    with pytest.raises(UsageError, match="a dataset cannot be split: give --val VAL_DATASET"):
        tn.run_line_magic("tune", "tn ds --trials 1 -e 1 --quiet")
    import nbkeras
    assert not nbkeras.runs()
