"""Every input mismatch `%fit` catches before training, with its message."""

import numpy as np
import pytest

from nbkeras.errors import DataError, UsageError


@pytest.fixture
def data(ip):
    """Small models and data in the shell; training is detected by a spy."""
    ip.run_cell("""
import numpy as np, pandas as pd, keras
rng = np.random.default_rng(0)
x = rng.random((40, 784)).astype('float32')
x_img = rng.random((40, 28, 28)).astype('float32')
y = rng.integers(0, 10, 40)
y_hot = np.eye(10, dtype='float32')[y]
x_nan = x.copy(); x_nan[3, 17] = np.nan
x_inf = x.copy(); x_inf[5, 2] = np.inf
df = pd.DataFrame({'a': rng.random(40), 'b': rng.random(40)})
df_bad = df.assign(c=['u'] * 40)
clf = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation='softmax')])
clf.compile('adam', 'sparse_categorical_crossentropy')
cat = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation='softmax')])
cat.compile('adam', 'categorical_crossentropy')
binary = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation='sigmoid')])
binary.compile('adam', 'binary_crossentropy')
reg = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
reg.compile('adam', 'mse')
img = keras.Input((4,), name='img'); meta = keras.Input((2,), name='meta')
h = keras.layers.Concatenate()([img, meta])
two = keras.Model([img, meta], [keras.layers.Dense(3, activation='softmax', name='digit')(h),
                                keras.layers.Dense(1, name='size')(h)])
two.compile('adam', {'digit': 'sparse_categorical_crossentropy', 'size': 'mse'})
xi = rng.random((40, 4)).astype('float32'); xm = rng.random((40, 2)).astype('float32')
yd = rng.integers(0, 3, 40); ys = rng.random(40).astype('float32')
""").raise_error()
    trained = []
    for name in ("clf", "cat", "binary", "reg", "two"):
        model = ip.user_ns[name]
        model.fit = lambda *a, **k: trained.append(a)  # noqa: B023 - a spy, never trains
    ip.user_ns["_trained"] = trained
    return ip


@pytest.mark.parametrize("line, expected", [
    ("clf x_img y", ["x_img has shape (40, 28, 28)", "model's input is (784,)", "flatten"]),
    ("clf x[:, :100] y", ["x[:, :100] has shape (40, 100)", "(784,)"]),
    ("clf x y[:30]", ["x has 40 samples but y[:30] has 30"]),
    ("clf x y+1", ["y+1 has labels from 1 to 10", "10 units", "give it 11 units"]),
    ("clf x y-1", ["labels from -1 to 8"]),
    ("clf x y_hot", ["y_hot is one-hot", "categorical_crossentropy", "argmax"]),
    ("clf x y*0.5", ["non-integer"]),
    ("cat x y", ["y holds class indices", "to_categorical(y, 10)"]),
    ("binary df y", ["y has values from 0 to 9", "between 0 and 1"]),
    ("reg df x[:, :3]", ["x[:, :3] has shape (40, 3)", "output", "(1,)"]),
    ("clf x_nan y", ["x_nan holds 1 NaN or infinite values", "NaN at index (3, 17)",
                     "nan_to_num"]),
    ("clf x_inf y", ["infinite at index (5, 2)"]),
    ("clf x[:0] y[:0]", ["x[:0] is empty", "shape (0, 784)"]),
    ("reg df_bad y", ["non-numeric columns c", "get_dummies"]),
    ("two [xi, xm] {'digit': yd, 'size': ys, 'sz': ys}", ["has key 'sz'", "did you mean"]),
    ("two {'img': xi} {'digit': yd, 'size': ys}", ["has no key 'meta'"]),
    ("two [xi] {'digit': yd, 'size': ys}", ["has 1 arrays but the model has 2 inputs"]),
    ("two xi yd", ["xi is one array but the model has 2 inputs"]),
    ("two [xi, xm] {'digit': yd + 5, 'size': ys}", ["['digit']", "labels from 5 to 7",
                                                    "output 'digit' has 3 units"]),
    ("clf x y --val x_img y", ["x_img has shape (40, 28, 28)"]),
])
def test_mismatch_is_a_short_data_error_and_nothing_trains(data, line, expected):
    with pytest.raises(DataError) as err:
        data.run_line_magic("fit", line)
    message = str(err.value)
    for part in expected:
        assert part in message, message
    assert "\n" not in message and len(message) < 300
    assert data.user_ns["_trained"] == []


@pytest.mark.parametrize("line, expected", [
    ("clff x y", "no model named 'clff' (did you mean `clf`?)"),
    ("x x y", "'x' is a ndarray, not a Keras model"),
    ("clf x", "give the targets"),
    ("clf xx y", "name 'xx' is not defined (did you mean `x`?)"),
    ("clf x y --val x", "give the validation targets too"),
    ("clf x y --val x y --val-split 0.2", "--val or --val-split"),
    ("clf x y --lr-schedule cosin", "did you mean `cosine`"),
    ("clf x y --lr-schedule step --reduce-lr 2", "use one"),
    ("clf x y --checkpoint best.h5", "must end in `.keras`"),
    ("clf x y -e 3 --initial-epoch 5", "is not past --initial-epoch 5"),
    ("clf x y --class-weight [1, 2]", "give `balanced` or a dict"),
])
def test_usage_errors(data, line, expected):
    with pytest.raises(UsageError) as err:
        data.run_line_magic("fit", line)
    assert expected in str(err.value)
    assert data.user_ns["_trained"] == []


def test_multi_input_dict_and_pandas_pass(data):
    data.run_line_magic("fit", "two {'img': xi, 'meta': xm} {'digit': yd, 'size': ys} -e 1 --quiet")
    data.run_line_magic("fit", "reg df pd.Series(ys) -e 1 --quiet")
    calls = data.user_ns["_trained"]
    assert len(calls) == 2
    assert isinstance(calls[1][0], np.ndarray)   # the DataFrame reached Keras as an array


def test_user_sees_one_line_without_traceback(data, capsys):
    data.run_cell("%fit clf x_img y")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "DataError: x_img has shape (40, 28, 28)" in text
    assert "Traceback" not in text


def test_deferred_softmax_loss_is_settled_from_one_hot_labels(ip, capsys):
    from nbkeras.state import ModelInfo, set_info
    ip.run_cell("""
import numpy as np, keras
x = np.random.default_rng(0).random((32, 4)).astype('float32')
y = np.random.default_rng(1).integers(0, 3, 32)
y_hot = np.eye(3, dtype='float32')[y]
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='softmax', name='out')])
m.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
""").raise_error()
    m = ip.user_ns["m"]
    info = set_info(m, ModelInfo(name="m", compile_kwargs={"optimizer": "adam",
                                                           "loss": "sparse_categorical_crossentropy"},
                                 deferred_losses={"out": "categorical"}))
    ip.run_line_magic("fit", "m x y_hot -e 1 --quiet")
    out = capsys.readouterr().out
    assert "y_hot holds one-hot: using categorical_crossentropy for output 'out'" in out
    assert m.loss == "categorical_crossentropy"
    assert info.compile_kwargs["loss"] == "categorical_crossentropy"
    assert info.deferred_losses == {}
    ip.run_line_magic("fit", "m x y_hot -e 1 --quiet")       # settled: no second note
    assert "using" not in capsys.readouterr().out


def test_val_split_of_labels_sorted_by_class_warns_which_classes_are_left_out(ip, capsys):
    import numpy as np
    rng = np.random.default_rng(0)
    ip.user_ns.update(xs=rng.normal(size=(50, 4)).astype("float32"),
                      ys=np.repeat(np.arange(5), 10))  # sorted: the last 20% are all 4
    ip.run_cell_magic("model", "sorted_m", "input 4\ndense 5 softmax")
    ip.run_line_magic("fit", "sorted_m xs ys -e 1 --val-split 0.2 --quiet")
    out = capsys.readouterr().out
    assert "training has no class 4" in out and "validation has no class 0, 1, 2, 3" in out
    ip.user_ns["ys"] = rng.permutation(ip.user_ns["ys"])
    ip.user_ns["ys"][-5:] = np.arange(5)
    ip.run_line_magic("fit", "sorted_m xs ys -e 1 --val-split 0.2 --quiet")
    assert "--val-split" not in capsys.readouterr().out
