"""`%fit --cv K`: K folds, each a copy trained from the same initial weights."""

import numpy as np
import pytest

from nbkeras.errors import UsageError


@pytest.fixture
def cvm(ip):
    ip.run_cell("""
import numpy as np
from sklearn.datasets import load_digits
d = load_digits(); x = (d.data[:300] / 16).astype('float32'); y = d.target[:300]
""").raise_error()
    ip.run_cell("%%model cvm --seed 0\ninput 64\ndense 16 relu\ndense 10 softmax").raise_error()
    return ip


def test_cv_folds_match_scikit_learn_and_keep_the_initial_weights(cvm):
    from sklearn.model_selection import StratifiedKFold
    w0 = [w.copy() for w in cvm.user_ns["cvm"].get_weights()]
    df = cvm.run_line_magic("fit", "cvm x y --cv 3 -e 2 --quiet")
    expected = [len(held) for _, held in StratifiedKFold(3).split(cvm.user_ns["y"],
                                                                cvm.user_ns["y"])]
    assert list(df.loc[[1, 2, 3], "n_val"]) == expected
    assert list(df.index) == [1, 2, 3, "mean", "std"]
    vals = df.loc[[1, 2, 3], "val_loss"].astype(float)
    assert df.loc["mean", "val_loss"] == pytest.approx(vals.mean())
    assert df.loc["std", "val_loss"] == pytest.approx(vals.std())
    # a cross-validation estimates: NAME keeps its initial weights
    assert all(np.array_equal(a, b) for a, b in zip(w0, cvm.user_ns["cvm"].get_weights()))
    import nbkeras
    folds = [r for r in nbkeras.runs(model="cvm") if r["options"].get("cv_group")]
    assert sorted(r["options"]["fold"] for r in folds) == [1, 2, 3]
    assert len({r["options"]["cv_group"] for r in folds}) == 1


def test_cv_shuffle_with_a_seed_is_reproducible(cvm):
    a = cvm.run_line_magic("fit", "cvm x y --cv 3 -e 1 --cv-shuffle --seed 4 --quiet")
    b = cvm.run_line_magic("fit", "cvm x y --cv 3 -e 1 --cv-shuffle --seed 4 --quiet")
    assert list(a.loc[[1, 2, 3], "n_val"]) == list(b.loc[[1, 2, 3], "n_val"])
    assert a.loc[1, "val_loss"] == pytest.approx(b.loc[1, "val_loss"], rel=1e-3)
    # two cross-validations, even in the same second, are two groups (sidebar rows)
    import nbkeras
    groups = {r["options"]["cv_group"] for r in nbkeras.runs(model="cvm")}
    assert len(groups) == 2


@pytest.mark.parametrize("extra, message", [
    ("--val-split 0.2", "holds out each fold"),
    ("--cv 1", "between 2 and"),
])
def test_cv_refusals(cvm, extra, message):
    line = "cvm x y -e 1 --quiet " + (extra if extra.startswith("--cv") else "--cv 3 " + extra)
    with pytest.raises(UsageError, match=message):
        cvm.run_line_magic("fit", line)
