"""`%evaluate`, `%predict`, `%models` and `%export` in a shell, on tiny models
trained once per module. Evaluation figures are checked against
scikit-learn's metrics on the same predictions."""

import os
import sqlite3

import numpy as np
import re

import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_digits

from nbkeras.errors import DataError, UsageError
from nbkeras.registry import get_registry
from nbkeras.results import metrics as M
from nbkeras.state import get_info
from nbkeras.view.plots import WRONG_COLOR


@pytest.fixture(scope="module")
def trained():
    import keras
    keras.utils.set_random_seed(0)
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(X[:1000], y[:1000], epochs=3, verbose=0)
    yb = (y > 4).astype("int32")
    b = keras.Sequential([keras.Input((64,)), keras.layers.Dense(1, activation="sigmoid")])
    b.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    b.fit(X, yb, epochs=2, verbose=0)
    yr = np.stack([X.mean(1), X.std(1)], 1)
    r = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2)])
    r.compile("adam", "mse", metrics=["mae"])
    r.fit(X, yr, epochs=3, verbose=0)
    return dict(m=m, b=b, r=r, X=X, y=y, yb=yb, yr=yr, y_onehot=np.eye(10)[y],
                images=X.reshape(-1, 8, 8, 1))


@pytest.fixture
def ns(ip, trained):
    ip.user_ns.update(trained, np=np)
    return ip


@pytest.fixture
def shown(monkeypatch):
    """What the magics pass to IPython's display()."""
    import IPython.display
    seen = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: seen.extend(objs))
    return seen


def _figures(seen):
    """The figures shown (each as a 2x PNG, whatever the matplotlib backend)."""
    from nbkeras.results.common import FigureView
    return [o.figure for o in seen if isinstance(o, FigureView)]


# -- %evaluate -------------------------------------------------------------------

def test_evaluate_classifier_matches_sklearn(ns, run, trained, shown):
    r = run("r = %evaluate m X[1000:] y[1000:]\nr")
    m, X, y = trained["m"], trained["X"][1000:], trained["y"][1000:]
    compiled = m.evaluate(X, y, verbose=0, return_dict=True)
    assert r["loss"] == pytest.approx(compiled["loss"], rel=1e-5)
    assert r["accuracy"] == pytest.approx(compiled["accuracy"], rel=1e-5)
    pred = m.predict(X, verbose=0).argmax(1)
    labels = list(range(10))
    for avg in ("macro", "weighted"):
        p, rc, f, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, average=avg,
                                                          zero_division=0)
        assert (r[f"{avg}_precision"], r[f"{avg}_recall"], r[f"{avg}_f1"]) == \
            pytest.approx((p, rc, f), abs=1e-12)
    p, rc, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    assert [c["f1"] for c in r.per_class] == pytest.approx(list(f), abs=1e-12)
    assert [c["support"] for c in r.per_class] == list(s)
    np.testing.assert_array_equal(r.confusion, skm.confusion_matrix(y, pred, labels=labels))
    assert "roc_auc" not in r
    assert len(_figures(shown)) == 1 and r.figure is _figures(shown)[0]
    table = [o for o in shown if hasattr(o, "_repr_html_")][0]
    assert "macro avg" in repr(table) and "weighted avg" in table._repr_html_()


def test_evaluate_one_hot_labels_give_the_same_figures(ns, run):
    sparse = run("%evaluate m X y --no-plots")
    onehot = run("%evaluate m X y_onehot --no-plots")
    assert onehot["macro_f1"] == pytest.approx(sparse["macro_f1"])


def test_evaluate_binary_sigmoid_has_roc_auc(ns, run, trained):
    r = run("%evaluate b X yb")
    scores = trained["b"].predict(trained["X"], verbose=0).ravel()
    yb = trained["yb"]
    assert r["roc_auc"] == pytest.approx(skm.roc_auc_score(yb, scores), abs=1e-12)
    assert r["macro_f1"] == pytest.approx(
        skm.f1_score(yb, scores > 0.5, average="macro"), abs=1e-12)
    assert r.confusion.shape == (2, 2)


def test_evaluate_regression_matches_sklearn(ns, run, trained):
    r = run("%evaluate r X yr")
    pred = trained["r"].predict(trained["X"], verbose=0)
    yr = trained["yr"]
    assert r["rmse"] == pytest.approx(skm.root_mean_squared_error(yr, pred), rel=1e-6)
    assert r["mae"] == pytest.approx(skm.mean_absolute_error(yr, pred), rel=1e-6)
    assert r["r2"] == pytest.approx(skm.r2_score(yr, pred), rel=1e-6)
    assert "loss" in r and "mae" in r and r.per_class is None


def test_evaluate_regression_shows_its_metrics_table(ns, run, shown):
    # regression: the table was missing, the notebook showed nothing
    run("%evaluate r X yr --no-plots")
    tables = [str(o) for o in shown if type(o).__name__ == "Table"]
    assert tables and all(k in tables[0] for k in ("rmse", "mae", "r2", "loss"))


def test_no_plots_shows_no_figure(ns, run, shown):
    r = run("%evaluate m X y --no-plots")
    assert _figures(shown) == [] and r.figure is None


def test_evaluation_is_recorded_against_the_latest_run(ns, run, trained):
    reg = get_registry()
    run_id = reg.start_run(model="m", version_id=None, options={}, device="cpu",
                           backend="tensorflow", epochs_planned=1)
    info = get_info(trained["m"], "m")
    info.run_ids.append(run_id)
    try:
        r = run("%evaluate m X y --no-plots")
    finally:
        info.run_ids.remove(run_id)
    evals = reg.run(run_id)["evaluations"]
    assert len(evals) == 1 and evals[0]["metrics"]["accuracy"] == pytest.approx(r["accuracy"])
    assert reg.runs()[0]["evaluations"][0]["metrics"]["macro_f1"] == pytest.approx(r["macro_f1"])


@pytest.mark.parametrize("line, error, message", [
    ("m X[:10] y", DataError, "has 10 samples but `y` has 1797"),
    ("m X[:, :10] y", DataError, "samples of shape 10 but the model takes samples of shape 64"),
    ("m X (y+20)", DataError, "outside 0..9"),
    ("m X y*0.5", DataError, "non-integer labels"),
    ("mm X y", UsageError, "did you mean `m`"),
    ("m X yy", UsageError, "did you mean `y`"),
    ("X X y", UsageError, "not a Keras model"),
])
def test_evaluate_mistakes_are_short_errors(ns, run, line, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace("`", ".")
                       .replace("+", r"\+").replace("*", r"\*")):
        run(f"%evaluate {line}")


# -- the metrics themselves, against scikit-learn -----------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_numpy_metrics_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    p[p == 3] = 2  # class 3 never predicted: zero_division
    cm = M.confusion_matrix(y, p, 4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, p, labels=range(4)))
    avg = M.averages(M.precision_recall_f1(cm))
    for kind in ("macro", "weighted"):
        assert avg[f"{kind}_f1"] == pytest.approx(
            skm.f1_score(y, p, average=kind, labels=range(4), zero_division=0), abs=1e-12)
    yb = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + yb * 0.3, 1)  # many ties
    assert M.roc_auc(yb, scores) == pytest.approx(skm.roc_auc_score(yb, scores), abs=1e-12)
    t, q = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    got = M.regression_metrics(t, q)
    assert got["r2"] == pytest.approx(skm.r2_score(t, q))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(t, q))
    ml_t, ml_p = rng.integers(0, 2, (40, 3)), rng.integers(0, 2, (40, 3))
    ml = M.averages(M.multilabel_precision_recall_f1(ml_t, ml_p))
    assert ml["weighted_recall"] == pytest.approx(
        skm.recall_score(ml_t, ml_p, average="weighted", zero_division=0))


# -- %predict ----------------------------------------------------------------------

def test_predict_returns_predictions_and_classes(ns, run, trained):
    pred = run("%predict m X[:20]")
    np.testing.assert_allclose(pred, trained["m"].predict(trained["X"][:20], verbose=0),
                               rtol=1e-5)
    classes = run("%predict m X[:20] --classes")
    np.testing.assert_array_equal(classes, pred.argmax(1))
    binary = run("%predict b X[:20] --classes")
    probs = trained["b"].predict(trained["X"][:20], verbose=0).ravel()
    np.testing.assert_array_equal(binary, (probs > 0.5).astype(int))
    assert binary.shape == (20,)


def test_predict_show_marks_wrong_predictions_red(ns, run, trained, shown):
    assert run("%predict m X[:12] --show 12 --labels y[:12]") is None  # the picture is the output
    classes = run("%predict m X[:12] --classes")
    (fig,) = _figures(shown)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 12
    probs = run("%predict m X[:12]")
    for ax, pred, true, p in zip(axes, classes, trained["y"][:12], probs):
        assert ax.get_title() == f"{pred} · {p.max():.0%}\ntrue {true}"   # with the confidence
        assert (ax.title.get_color() == WRONG_COLOR) == (pred != true)
    assert axes[0].images[0].get_array().shape == (8, 8)  # 64 -> 8x8


def test_predict_show_rows_keep_their_titles_off_the_row_above(ns, run, shown):
    """Two rows of two-line titles: each title clear of every image (the
    second row's titles overlapped the first row's images)."""
    run("%predict m X[:16] --show 16 --labels y[:16]")
    (fig,) = _figures(shown)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig).draw()   # laid out as when it was saved
    renderer = fig.canvas.get_renderer()
    images = [ax.images[0].get_window_extent(renderer) for ax in fig.axes if ax.images]
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert len(images) == len(titles) == 16
    assert not [(t, i) for t in titles for i in images if t.overlaps(i)]


@pytest.mark.parametrize("images", ["images[:30]", "images[:30, :, :, 0]",
                                    "(np.repeat(images[:30], 3, axis=-1) * 255)"])
def test_predict_show_draws_image_shapes(ns, run, shown, images):
    run(f"%predict m X[:30] --show 5 --images {images}")
    (fig,) = _figures(shown)
    drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(drawn) == 5 and drawn[0].shape[:2] == (8, 8)
    assert re.fullmatch(r"\d · \d+%", fig.axes[0].get_title())  # no labels: prediction, confidence


@pytest.mark.parametrize("line, message", [
    ("m X[:30] --show 5 --images X[:30, :10]", "cannot draw samples of shape"),
    ("m X[:30] --show 5 --labels y", "has 1797 labels"),
    ("r X --classes", "not a single-output classifier"),
    ("m X --labels y", "go with `--show N`"),
])
def test_predict_mistakes(ns, run, message, line):
    with pytest.raises((DataError, UsageError), match=message.replace("`", ".")):
        run(f"%predict {line}")


# -- %models -----------------------------------------------------------------------

def _record(reg, model, spec, curve, status="completed"):
    vid = reg.add_model_version(model, spec, 100)
    rid = reg.start_run(model=model, version_id=vid, options={}, device="cpu",
                        backend="tensorflow", epochs_planned=len(curve))
    for e, acc in enumerate(curve):
        reg.log_epoch(rid, e + 1, {"loss": 1 - acc, "val_loss": 1.1 - acc, "accuracy": acc,
                               "val_accuracy": acc - 0.05})
    if status:
        reg.end_run(rid, status)
    return rid


@pytest.fixture
def recorded():
    reg = get_registry()
    a = _record(reg, "mnist", "input 784\ndense 32 relu\ndense 10 softmax", [0.5, 0.7, 0.8])
    b = _record(reg, "mnist", "input 784\ndense 128 relu\ndense 10 softmax", [0.6, 0.9, 0.85])
    c = _record(reg, "cifar", "input 32x32x3\nconv 8 3\ngap\ndense 10 softmax", [0.3], "failed")
    return a, b, c


def test_models_lists_models_and_runs_newest_first(ip, run, recorded):
    a, b, c = recorded
    view = run("%models")
    models, runs = view.tables
    assert [r[0] for r in models.rows] == ["cifar", "mnist"]
    assert [r[0] for r in runs.rows] == [str(c), str(b), str(a)]
    row = dict(zip(runs.columns, runs.rows[1]))
    assert row["status"] == "completed" and row["version"] == "v2" and row["epochs"] == "3/3"
    assert row["metric"] == "val_accuracy" and row["result"] == "0.8000" and row["best (epoch)"] == "0.8500 (2)"
    assert row["device"] == "cpu" and row["duration"].endswith("s")
    assert view._repr_html_().count("<table") == 2 and "failed" in repr(view)
    assert [r["id"] for r in view.runs] == [c, b, a]


def test_models_name_shows_versions_and_runs(ip, run, recorded):
    a, b, _ = recorded
    view = run("%models mnist")
    versions, runs = view.tables
    assert [r[0] for r in versions.rows] == ["v2", "v1"]
    assert [r["id"] for r in view.runs] == [b, a]


def test_models_unknown_name_suggests(ip, run, recorded):
    with pytest.raises(UsageError, match="no model named `mnsit`.*did you mean `mnist`"):
        run("%models mnsit")


def test_models_compare_overlays_curves_and_diffs_specs(ip, run, recorded, shown):
    a, b, _ = recorded
    view = run(f"%models --compare {a} {b}")
    (fig,) = _figures(shown)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy"]
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == [f"run {a} (mnist v1)", f"run {a} (mnist v1) val",
                      f"run {b} (mnist v2)", f"run {b} (mnist v2) val"]
    assert "-dense 32 relu" in view.diff and "+dense 128 relu" in view.diff
    assert "input 784" not in [ln.strip("+- ") for ln in view.diff.splitlines()
                               if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert "<pre" in view._repr_html_() and "Spec differences" in view._repr_html_()


def test_models_compare_puts_results_and_best_side_by_side(ip, run, recorded, shown):
    a, b, _ = recorded
    view = run(f"%models --compare {a} {b}")
    table = view.tables[1]
    rows = {(m, kind): (values, best) for m, kind, values, best in table.rows}
    assert table.rows[0][:2] == ("val_accuracy", "result")  # the primary metric first
    assert rows["val_accuracy", "best"] == ([pytest.approx(0.75), pytest.approx(0.85)], {1})
    # loss improves downwards: the smaller resulting loss is the best of its row
    assert rows["loss", "result"] == ([pytest.approx(0.2), pytest.approx(0.15)], {1})
    assert rows["val_loss", "result"][1] == {1}
    html = view._repr_html_()
    assert "nbkeras-compare" in html and "font-weight:700" in html
    assert "0.8500*" in repr(view)


def test_models_compare_shows_only_the_options_that_differ(ip, run, recorded, shown):
    reg = get_registry()
    opts = dict(name="mnist", x="x", y="y", epochs=20, batch_size=32, val_split=0.2,
                no_shuffle=False, seed=None, epochs_planned=20, initial_epoch=0)
    a = reg.start_run(model="mnist", version_id=None, options=opts, device="cpu",
                      backend="tensorflow", epochs_planned=20)
    b = reg.start_run(model="other", version_id=None, options=dict(opts, batch_size=64, seed=1),
                      device="cpu", backend="tensorflow", epochs_planned=20)
    view = run(f"%models --compare {a} {b}")
    diff = view.tables[2]
    assert diff.title == "Options that differ"
    assert diff.rows == [["-b", "", "64"], ["--seed", "", "1"]]


def test_models_delete_deletes_runs_and_says_so(ip, run, recorded, capsys):
    a, b, c = recorded
    assert run(f"%models --delete {a} {c}") is None
    assert capsys.readouterr().out.strip() == (
        f"deleted runs {a}, {c} (cifar, mnist) from the registry")
    assert [r["id"] for r in get_registry().run_summaries()] == [b]
    with pytest.raises(UsageError, match="no run 999 in the registry"):
        run(f"%models --delete {b} 999")
    assert get_registry().run(b) is not None  # all or nothing


def test_models_compare_unknown_run(ip, run, recorded):
    with pytest.raises(UsageError, match="no run 999 in the registry"):
        run(f"%models --compare {recorded[0]} 999")


def test_models_on_an_empty_registry(ip, run):
    view = run("%models")
    assert "no models recorded yet" in repr(view)


# -- %export -----------------------------------------------------------------------

def test_export_keras_writes_atomically_and_loads_back(ns, run, trained, tmp_path, capsys):
    import keras
    path = tmp_path / "m.keras"
    path.write_text("an older export")
    run(f"%export m {path}")
    assert "Saved `m`" in capsys.readouterr().out
    assert os.listdir(tmp_path) == ["m.keras"]  # no temporary file left behind
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(trained["X"][:5], verbose=0),
                               trained["m"].predict(trained["X"][:5], verbose=0), rtol=1e-6)


def test_export_savedmodel_replaces_an_older_one(ns, run, tmp_path):
    path = tmp_path / "sm"
    run(f"%export m {path} --format savedmodel")
    run(f"%export b {path} --format savedmodel")
    assert (path / "saved_model.pb").exists()
    assert sorted(os.listdir(tmp_path)) == ["sm"]
    import tensorflow as tf
    loaded = tf.saved_model.load(str(path))
    served = loaded.serve(np.zeros((2, 64), "float32"))
    assert tuple(served.shape) == (2, 1)  # the second export (b) won


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_export_tflite_runs_in_the_interpreter(ns, run, trained, tmp_path):
    import tensorflow as tf
    path = tmp_path / "m.tflite"
    run(f"%export m {path} --format tflite")
    interp = tf.lite.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.set_tensor(inp["index"], trained["X"][:1])
    interp.invoke()
    np.testing.assert_allclose(interp.get_tensor(out["index"]),
                               trained["m"].predict(trained["X"][:1], verbose=0), atol=1e-5)


@pytest.mark.parametrize("line, message", [
    ("m {tmp}/m.h5", "needs a path ending in .\\.keras."),
    ("m {tmp}/nope/m.keras", "does not exist"),
    ("m {tmp}/m.keras --format tflite", "ending in .\\.tflite."),
    ("zz {tmp}/m.keras", "no model named .zz."),
])
def test_export_mistakes(ns, run, tmp_path, line, message):
    with pytest.raises(UsageError, match=message):
        run(f"%export {line.format(tmp=tmp_path)}")


def test_export_then_model_from_round_trip(ns, run, trained, tmp_path):
    path = tmp_path / "digits.keras"
    run(f"%export m {path}")
    run(f"%model m2 --from {path}")  # the line form of `%%model NAME --from PATH`
    np.testing.assert_allclose(run("%predict m2 X[:5]"), run("%predict m X[:5]"), rtol=1e-6)
    assert get_registry().model_versions("m2")[0]["source"] == "file"
    r = run("%evaluate m2 X y --no-plots")  # compiled state came back too
    assert r["accuracy"] == pytest.approx(run("%evaluate m X y --no-plots")["accuracy"])


def test_fit_then_evaluate_and_models_end_to_end(ns, run):
    run("%%model net --seed 0\ninput 64\ndense 16 relu\ndense 10 softmax\n")
    run("%fit net X[:1200] y_onehot[:1200] -e 2 -b 64 --val-split 0.2 --quiet")
    r = run("%evaluate net X[1200:] y[1200:] --no-plots")  # sparse labels, one-hot loss
    (summary,) = [s for s in get_registry().run_summaries() if s["model"] == "net"]
    assert summary["status"] == "completed" and summary["epochs"] == 2
    evals = get_registry().run(summary["id"])["evaluations"]
    assert evals[0]["metrics"]["accuracy"] == pytest.approx(r["accuracy"])
    view = run("%models net")
    row = dict(zip(view.tables[1].columns, view.tables[1].rows[0]))
    assert (row["version"], row["status"], row["epochs"], row["metric"]) == \
        ("v1", "completed", "2/2", "val_accuracy")
    assert row["best (epoch)"].endswith(("(1)", "(2)"))


# -- a registry that cannot record never breaks %fit ---------------------------------

FIT_CELLS = ("%%model tiny --seed 0\ninput 64\ndense 10 softmax\n",
             "%fit tiny X[:200] y[:200] -e 2 -b 64 --quiet")


def test_fit_trains_with_a_corrupt_registry_and_warns_once(ns, run, nbkeras_home):
    from nbkeras.registry import RegistryWarning
    nbkeras_home.mkdir()
    (nbkeras_home / "registry.sqlite3").write_bytes(b"garbage" * 500)
    with pytest.warns(RegistryWarning, match="runs are not being recorded") as record:
        for cell in FIT_CELLS:
            run(cell)
        run("%fit tiny X[:200] y[:200] -e 1 -b 64 --quiet")
    assert len(record) == 1
    assert len(ns.user_ns["tiny"].history.history["loss"]) == 1  # trained all the same
    assert "not being recorded" in repr(run("%models"))
    with pytest.raises(UsageError, match="nothing to show: runs are not being recorded"):
        run("%models tiny")
    assert (nbkeras_home / "registry.sqlite3").read_bytes() == b"garbage" * 500  # left alone


def test_fit_trains_when_the_disk_fills_up_mid_run(ns, run):
    from nbkeras.registry import RegistryWarning
    reg = get_registry()
    run(FIT_CELLS[0])
    db = reg._db  # fill the file to a hard size limit: SQLite's "database or disk is full"
    db.execute("PRAGMA max_page_count = %d" % db.execute("PRAGMA page_count").fetchone()[0])
    epoch = 0
    for size in (1000, 100, 10, 1):  # fill the epochs table's pages to the brim
        try:
            while True:
                epoch += 1
                db.execute("INSERT INTO epochs (run_id, epoch, metrics) VALUES (0, ?, ?)",
                           (epoch, "x" * size))
        except sqlite3.OperationalError:
            pass
    with pytest.warns(RegistryWarning, match="full") as record:
        run("%fit tiny X[:200] y[:200] -e 3 -b 64 --quiet")
    assert len(record) == 1
    assert len(ns.user_ns["tiny"].history.history["loss"]) == 3
    assert reg.broken and "full" in reg.broken
    (tiny,) = [r for r in reg.run_summaries() if r["model"] == "tiny"]
    assert (tiny["status"], tiny["epochs"]) == ("completed", 0)  # closed, not 'running' 


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_export_tf_formats_explain_the_backend_they_need(ns, run, tmp_path, monkeypatch, fmt):
    import keras
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    suffix = ".tflite" if fmt == "tflite" else ""
    with pytest.raises(UsageError, match="needs the TensorFlow backend but this kernel uses `jax`"):
        run(f"%export m {tmp_path}/out{suffix} --format {fmt}")
    assert os.listdir(tmp_path) == []


def test_a_failed_export_leaves_the_previous_file_whole(ns, run, tmp_path, monkeypatch):
    from nbkeras.results import export
    path = tmp_path / "m.keras"
    path.write_text("the previous export")

    def crash(model, tmp):
        with open(tmp, "w") as f:
            f.write("half a file")
        raise OSError("disk full")

    monkeypatch.setattr(export, "_write_keras", crash)
    with pytest.raises(OSError, match="disk full"):
        run(f"%export m {path}")
    assert path.read_text() == "the previous export"
    assert os.listdir(tmp_path) == ["m.keras"]


def test_evaluate_multi_output_reports_each_output(run, ip):
    # two heads: the class head gets per-class figures, the value head RMSE/MAE/R²
    import numpy as np
    rng = np.random.default_rng(0)
    ip.user_ns.update(img=rng.random((60, 4, 4, 1)).astype("float32"),
                      meta=rng.random((60, 3)).astype("float32"),
                      digit=rng.integers(0, 3, 60), ink=rng.random(60).astype("float32"))
    run("%%model two --seed 0\nimg = input 4x4x1\nmeta = input 3\nx = flatten (img)\n"
        "y = concat (x, meta)\ndigit = dense 3 softmax (y)\nvalue = dense 1 (y)\n"
        "outputs digit, value\nloss digit=sparse_categorical_crossentropy value=mse\n"
        "metrics digit=accuracy value=mae")
    r = run("%evaluate two [img, meta] {'digit': digit, 'value': ink} --no-plots")
    pred_digit, pred_value = ip.user_ns["two"].predict([ip.user_ns["img"], ip.user_ns["meta"]],
                                                      verbose=0)
    assert set(r.outputs) == {"digit", "value"}
    assert r["digit_macro_f1"] == pytest.approx(
        skm.f1_score(ip.user_ns["digit"], pred_digit.argmax(-1), average="macro",
                     zero_division=0), abs=1e-6)
    assert r["value_r2"] == pytest.approx(skm.r2_score(ip.user_ns["ink"], pred_value), rel=1e-5)
    assert "digit_accuracy" in r and "loss" in r


def test_figures_show_as_images_whatever_the_matplotlib_backend(ns, run, monkeypatch):
    """Under Agg (or any non-inline backend) IPython shows a Figure as the text
    `<Figure size ...>`; nbkeras' figures are 2x PNGs at their CSS size."""
    import matplotlib
    assert matplotlib.get_backend().lower() == "agg"  # as in these tests
    import IPython.display
    seen = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: seen.extend(objs))
    run("r = %evaluate m X[1000:] y[1000:]")
    from nbkeras.results.common import FigureView
    (view,) = [o for o in seen if isinstance(o, FigureView)]
    data, meta = ns.display_formatter.format(view)
    assert "image/png" in data and "Figure size" not in data["text/plain"]
    width, height = meta["image/png"]["width"], meta["image/png"]["height"]
    assert 150 < width < 700 and 150 < height < 700  # no larger than the training record
