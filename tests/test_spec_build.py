"""Specs become real Keras models: kinds, arguments, sources, settings, errors."""

import keras
import numpy as np
import pytest

from nbkeras import SpecError
from nbkeras.modelbuild.build import build, layer_kinds
from nbkeras.modelbuild.catalog import parse_spec as parse
from spec_examples import EXAMPLES  # tests/ is on sys.path under pytest


def make(text, name="m", **kw):
    return build(parse(text), name, **kw)


def layer(model, name):
    return model.get_layer(name)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_documented_examples_build_and_train(name):
    text, params = EXAMPLES[name]
    result = make(text, name)
    model = result.model
    assert model.name == name and model.count_params() == params
    rng = np.random.default_rng(0)
    xs = [rng.random((8, *i.shape[1:]), dtype="float32") for i in model.inputs]
    ys = [rng.integers(0, 10, 8) if o.shape[-1] == 10 else rng.random((8, 1))
          for o in model.outputs]
    model.fit(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0], epochs=1, verbose=0)


def test_mnist_settings_reach_compile():
    result = make(EXAMPLES["mnist"][0])
    model = result.model
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    kwargs = dict(result.compile_kwargs)
    assert kwargs.pop("optimizer") is model.optimizer
    assert kwargs == {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    assert result.message is None and result.deferred_losses == {}


def test_two_heads_names_and_per_output_settings():
    result = make(EXAMPLES["two_heads"][0])
    model = result.model
    assert list(model.output_names) == ["digit", "value"]
    assert [l.name for l in model.layers] == ["img", "x", "x_2", "meta", "y", "digit", "value"]
    assert result.compile_kwargs["loss"] == {"digit": "sparse_categorical_crossentropy",
                                             "value": "mse"}
    assert result.compile_kwargs["loss_weights"] == {"digit": 1.0, "value": 0.5}
    assert result.compile_kwargs["metrics"] == {"digit": ["accuracy"], "value": ["mae"]}
    assert layer(model, "x").padding == "same"


def test_residual_adds_the_input():
    model = make(EXAMPLES["residual"][0]).model
    add = next(l for l in model.layers if isinstance(l, keras.layers.Add))
    assert add.name == "s"
    assert {t.name for t in add.input} == {"x", "b"} or len(add.input) == 2


@pytest.mark.parametrize("kind, cls", [
    ("Dense 3", "Dense"), ("DENSE 3", "Dense"), ("batch_normalization", "BatchNormalization"),
    ("BatchNormalization", "BatchNormalization"), ("bn", "BatchNormalization"),
    ("batchnorm", "BatchNormalization"), ("ln", "LayerNormalization"),
    ("layernorm", "LayerNormalization"), ("layer_normalization", "LayerNormalization"),
    ("dropout 0.5", "Dropout"), ("activation tanh", "Activation"), ("leaky_relu 0.1", "LeakyReLU"),
])
def test_kinds_any_case_underscores_and_aliases(kind, cls):
    model = make(f"input 8\nx = {kind}").model
    assert type(layer(model, "x")).__name__ == cls


@pytest.mark.parametrize("spec, cls", [
    ("input 8x8x3\nx = conv 4 3", "Conv2D"), ("input 8x8x3\nx = maxpool", "MaxPooling2D"),
    ("input 8x8x3\nx = pool 2", "MaxPooling2D"), ("input 8x8x3\nx = avgpool 2", "AveragePooling2D"),
    ("input 8x8x3\nx = gap", "GlobalAveragePooling2D"),
    ("input 8x8x3\nx = gmp", "GlobalMaxPooling2D"),
    ("a = input 3\nb = input 3\nx = concat (a, b)", "Concatenate"),
    ("input 5 dtype=int32\nx = embed 100 4", "Embedding"),
    ("q = input 5x8\nx = mha 2 4 (q, q)", "MultiHeadAttention"),
    ("q = input 5x8\nv = input 7x8\nx = attention 2 4 (q, v)", "MultiHeadAttention"),
])
def test_aliases(spec, cls):
    assert type(layer(make(spec).model, "x")).__name__ == cls


def test_every_keras_layer_class_is_a_kind():
    kinds = layer_kinds()
    for name in ("Dense", "Conv1D", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
                 "GaussianNoise", "RandomFlip", "Rescaling", "UpSampling2D", "ZeroPadding2D"):
        assert kinds[name.lower()] == name
    assert "input" not in kinds and "layer" not in kinds


def test_positional_arguments_fill_the_signature():
    model = make("input 28x28x1\nc = conv2d 32 3 relu\np = maxpool 2\nf = flatten\n"
                 "d = dropout 0.2\nh = dense 128 relu\ne = dense 10 softmax").model
    c = layer(model, "c")
    assert (c.filters, c.kernel_size, c.activation.__name__) == (32, (3, 3), "relu")
    assert layer(model, "p").pool_size == (2, 2)
    assert layer(model, "d").rate == 0.2
    assert layer(model, "h").units == 128
    emb = layer(make("input 12 dtype=int32\ne = embedding 1000 16").model, "e")
    assert (emb.input_dim, emb.output_dim) == (1000, 16)


def test_bare_words_keywords_and_value_forms():
    model = make("input 16x16x3\n"
                 "c = Conv2D 8 3x3 ReLU SAME strides=2x2 use_bias=FALSE Kernel_Initializer=he_normal\n"
                 "r = reshape 8x8x8\n"
                 "q = reshape [-1, 16]\n"
                 "l = lstm 4 return_sequences=true activation=Tanh\n"
                 "n = layernorm axis=-1 epsilon=1e-5\n"
                 "d = dense 2 activation=none name='final'").model
    c = layer(model, "c")
    assert (c.kernel_size, c.strides, c.padding, c.use_bias) == ((3, 3), (2, 2), "same", False)
    assert c.activation.__name__ == "relu"
    assert type(c.kernel_initializer).__name__ == "HeNormal"
    assert tuple(layer(model, "q").output.shape) == (None, 32, 16)
    assert layer(model, "l").return_sequences is True
    assert layer(model, "n").epsilon == pytest.approx(1e-5)
    assert layer(model, "final").activation.__name__ == "linear"


def test_causal_padding_and_unknown_sizes():
    model = make("input ?x8\nc = conv1d 4 3 causal\ng = globalmaxpooling1d").model
    assert layer(model, "c").padding == "causal"
    assert tuple(model.input_shape) == (None, None, 8)


def test_rebinding_and_layer_names():
    model = make("x = input 4\nx = dense 4\nx = dense 4 (x)\nh = dense 3 name=named\ndense 2").model
    names = [l.name for l in model.layers]
    assert names[:4] == ["x", "x_2", "x_3", "named"]
    assert names[4].startswith("dense")


def test_unbound_layers_never_clash_with_bound_names():
    model = make("input 4\ndense = dense 3\ndense 2\ndense 1").model
    names = [l.name for l in model.layers]
    assert len(set(names)) == len(names) and "dense" in names


def test_several_sources_are_call_arguments_for_other_layers():
    model = make("q = input 5x8\nv = input 7x8\na = mha 2 4 (q, v)\noutputs a").model
    assert tuple(model.output.shape) == (None, 5, 8)


def test_input_option_supplies_the_input():
    model = build(parse("dense 3", input_shape="4"), "m").model
    assert tuple(model.input_shape) == (None, 4)


def test_optimizer_loss_metric_lookups_are_case_insensitive():
    result = make("input 4\ndense 3 softmax\noptimizer SGD LR=0.01 momentum=0.9\n"
                  "loss SparseCategoricalCrossentropy from_logits=FALSE\n"
                  "metrics Accuracy AUC rmse f1 Precision")
    opt = result.model.optimizer
    assert type(opt).__name__ == "SGD" and float(opt.momentum) == pytest.approx(0.9)
    assert float(opt.learning_rate) == pytest.approx(0.01)
    loss = result.compile_kwargs["loss"]
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    assert result.compile_kwargs["metrics"] == ["accuracy", "auc", "root_mean_squared_error",
                                                "f1_score", "precision"]


def test_metrics_list_applies_to_every_output_of_a_multi_output_model():
    result = make("x = input 4\na = dense 1 (x)\nb = dense 1 (x)\noutputs a, b\nloss mse\n"
                  "metrics mae")
    assert result.compile_kwargs["metrics"] == {"a": ["mae"], "b": ["mae"]}


def test_per_output_loss_options():
    result = make("x = input 4\na = dense 3 (x)\nb = dense 1 (x)\noutputs a, b\n"
                  "loss a=sparse_categorical_crossentropy from_logits=true reduction=sum "
                  "b=mse\n"
                  "loss_weights 1 0.5")
    loss = result.compile_kwargs["loss"]
    assert loss["b"] == "mse" and loss["a"].get_config()["from_logits"] is True
    assert loss["a"].get_config()["reduction"] == "sum"
    assert result.compile_kwargs["loss_weights"] == [1, 0.5]


@pytest.mark.parametrize("spec, loss, metric, deferred", [
    ("input 4\nout = dense 3 softmax", "sparse_categorical_crossentropy", "accuracy", True),
    ("input 4\nout = dense 3\nsoftmax", "sparse_categorical_crossentropy", "accuracy", True),
    ("input 4\nout = dense 1 sigmoid", "binary_crossentropy", "accuracy", False),
    ("input 4\nout = dense 3 sigmoid", "mse", "mae", False),
    ("input 4\nout = dense 1", "mse", "mae", False),
])
def test_default_compile(spec, loss, metric, deferred):
    result = make(spec)
    assert result.compile_kwargs == {"optimizer": "adam", "loss": loss, "metrics": [metric]}
    assert result.model.optimizer is not None
    assert bool(result.deferred_losses) == deferred
    assert result.message.startswith("No loss given")
    assert ("adam" in result.message) and (metric in result.message)


def test_default_compile_per_output_and_given_optimizer():
    result = make("x = input 4\na = dense 3 softmax (x)\nb = dense 1 (x)\noutputs a, b\n"
                  "optimizer rmsprop\nmetrics a=accuracy")
    assert result.compile_kwargs["loss"] == {"a": "sparse_categorical_crossentropy", "b": "mse"}
    assert result.compile_kwargs["optimizer"] == "rmsprop"
    assert result.compile_kwargs["metrics"] == {"a": ["accuracy"]}
    assert result.deferred_losses == {"a": "categorical"}


def test_no_compile_builds_only():
    result = make("input 4\ndense 3", compile=False)
    assert not result.model.compiled


@pytest.mark.parametrize("text, line, column, fragment", [
    ("input 4\ndens 3", 2, 1, "did you mean `Dense`"),
    ("input 4\nbatchnorm2 3", 2, 1, "unknown layer kind `batchnorm2`"),
    ("input 4\ndense 3 sofmax", 2, 9, "did you mean `softmax`"),
    ("input 4\ndense 3 activation=rellu", 2, 9, "did you mean `relu`"),
    ("input 4\ndense 3 unit=4", 2, 9, "did you mean `units`"),
    ("input 4 dtyp=int32\ndense 3", 1, 9, "did you mean `dtype`"),
    ("input 4\ndense 3 units=4", 2, 9, "`units` is given twice"),
    ("input 4\ndense 3 softmax sigmoid", 2, 17, "activation is already set to `softmax`"),
    ("input 4\ndense 3 activation=relu tanh", 2, 25, "activation is already set to `relu`"),
    ("input 8x8x1\nconv2d 3 3 same valid", 2, 17, "padding is already set"),
    ("input 4\ndense 10 relux", 2, 10, "did you mean `relu`"),
    ("input 8x8x1\nconv2d 3 3 relux", 2, 12, "did you mean `relu`"),
    ("input 4\ndense 3 relu true 1 2 3 4 5 6 7 8 9 10 11 12", 2, 40, "unexpected value `11`"),
    ("input 4\noptimizer adm\ndense 3", 2, 11, "did you mean `adam`"),
    ("input 4\ndense 3\noptimizer adam lrr=3", 3, 16, "did you mean `lr`"),
    ("input 4\ndense 3\nloss msee", 3, 6, "did you mean `mse`"),
    ("input 4\ndense 3\nloss binary_crossentropy from_logit=true", 3, 26,
     "did you mean `from_logits`"),
    ("input 4\ndense 3\nmetrics acuracy", 3, 9, "did you mean `accuracy`"),
    ("input 4\nd = dense 3\nloss e=mse", 3, 6, "`e` is not an output"),
    ("input 4\ndigit = dense 3\nloss digt=mse", 3, 6, "did you mean `digit`"),
    ("input 4\nd = dense 3\nmetrics dd=mae", 3, 9, "did you mean `d`"),
    ("input 4\nd = dense 3\nloss_weights e=1", 3, 14, "not an output"),
    ("x = input 4\na = dense 2 (x)\nb = dense 2 (x)\noutputs a, b\nloss a=mse", 5, 1,
     "no loss for output `b`"),
    ("x = input 4\na = dense 2 (x)\nb = dense 2 (x)\noutputs a, b\nloss mse\nloss_weights 1",
     6, 1, "1 weights for 2 outputs"),
    ("x = input 4\ny = input 3\nadd (x, y)", 3, 1, "incompatible shapes"),
    ("input 4\ndense -3", 2, 1, "failed in Keras"),
    ("input 4\nconv2d 3 3", 2, 1, "`conv2d 3 3` failed in Keras"),
    ("input 4\n\nd = dense 3 kernel_initializer=nonsense", 3, 1, "failed in Keras"),
    ("input 4\ndense 3\noptimizer sgd momentum=-1", 3, 1, "failed in Keras"),
    ("input 4\ndense 3\nbidirectional", 3, 1, "`bidirectional` wraps a layer"),
    ("input 4\nx = dense 3\nx = dense 2 name=x", 3, 1, "layer name `x` is already used"),
])
def test_build_errors_point_at_the_statement(text, line, column, fragment):
    with pytest.raises(SpecError) as info:
        make(text)
    err = info.value
    assert fragment in err.message
    assert (err.line, err.column) == (line, column)


# --- Version 2: wrappers, keyword sources, per-output loss options

IMDB = """\
tokens = input ? dtype=int32
embedding 20000 128
bidirectional lstm 64 return_sequences=true
bidirectional lstm 64
dense 1 sigmoid
"""


def test_imdb_bidirectional_lstm_matches_the_keras_example():
    model = make(IMDB, "imdb").model
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(20000, 128)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True))(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(64))(x)
    reference = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    assert model.count_params() == reference.count_params() == 2757761
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds == ["InputLayer", "Embedding", "Bidirectional", "Bidirectional", "Dense"]
    assert type(model.layers[2].forward_layer).__name__ == "LSTM"


def test_wrapper_keywords_and_time_distributed():
    model = make("x = input 5x8\nh = bi merge_mode=sum gru 4 return_sequences=true\n"
                 "y = td dense 3 softmax").model
    h, y = layer(model, "h"), layer(model, "y")
    assert h.merge_mode == "sum" and tuple(h.output.shape) == (None, 5, 4)
    assert type(y).__name__ == "TimeDistributed" and y.layer.activation.__name__ == "softmax"
    assert tuple(model.output.shape) == (None, 5, 3)


def test_every_keras_wrapper_is_a_wrapper_kind():
    import inspect
    from nbkeras.speclang.parse import WRAPPERS
    wrappers = {n for n in dir(keras.layers) if inspect.isclass(getattr(keras.layers, n))
                and issubclass(getattr(keras.layers, n), keras.layers.Wrapper) and n != "Wrapper"}
    assert wrappers | {"Bidirectional"} <= set(WRAPPERS.values())


def test_gru_receives_the_mask():
    spec = ("frames = input 6x3\nmask = input 6 dtype=bool\n"
            "gru 4 (frames, mask=mask)")
    keras.utils.set_random_seed(0)
    model = make(spec).model
    frames = keras.Input((6, 3))
    mask = keras.Input((6,), dtype="bool")
    gru = keras.layers.GRU(4)
    reference = keras.Model([frames, mask], gru(frames, mask=mask))
    reference.set_weights(model.get_weights())
    rng = np.random.default_rng(0)
    x = rng.random((2, 6, 3), dtype="float32")
    m = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    ours = model.predict([x, m], verbose=0)
    np.testing.assert_allclose(ours, reference.predict([x, m], verbose=0), atol=1e-6)
    x2 = x.copy()
    x2[0, 3:] = 9.0  # masked steps change nothing
    np.testing.assert_allclose(model.predict([x2, m], verbose=0)[0], ours[0], atol=1e-6)
    unmasked = keras.Model(frames, gru(frames)).predict(x, verbose=0)
    assert not np.allclose(unmasked[0], ours[0])


def test_per_output_loss_statements_build():
    result = make("x = input 4\npriority = dense 1 (x)\ndepartment = dense 4 (x)\n"
                  "value = dense 1 (x)\noutputs priority, department, value\n"
                  "loss priority: binary_crossentropy from_logits=true\n"
                  "loss department: categorical_crossentropy from_logits=true label_smoothing=0.1\n"
                  "loss value=mse")
    loss = result.compile_kwargs["loss"]
    assert loss["value"] == "mse"
    assert loss["priority"].get_config()["from_logits"] is True
    assert loss["department"].get_config()["label_smoothing"] == pytest.approx(0.1)
    assert result.model.compiled


@pytest.mark.parametrize("text, line, column, fragment", [
    ("frames = input 6x3\nm = input 6\ngru 4 (frames, masks=m)", 3, 16,
     "`GRU` takes no `masks` when called (did you mean `mask`?); its call parameters are "
     "sequences, initial_state, mask, training"),
    ("frames = input 6x3\nm = input 6\nbi gru 4 (frames, masc=m)", 3, 19, "did you mean `mask`"),
    ("x = input 6x3\nbi merge_mod=sum gru 4", 2, 4, "did you mean `merge_mode`"),
    ("x = input 6x3\nbi gru", 2, 1, "`GRU` needs `units`"),
    ("x = input 4\na = dense 1 (x)\nb = dense 1 (x)\noutputs a, b\nloss a: mse", 5, 1,
     "no loss for output `b`: add a line `loss b: LOSS`"),
    ("x = input 4\na = dense 1 (x)\nloss c: mse", 3, 6, "`c` is not an output"),
    ("x = input 4\na = dense 1 (x)\nloss a: mse delt=1", 3, 13, "no option `delt`"),
])
def test_version_2_build_errors(text, line, column, fragment):
    with pytest.raises(SpecError) as info:
        make(text)
    err = info.value
    assert fragment in err.message, err.message
    assert (err.line, err.column) == (line, column)


# --- Version 2: search spaces and repeat

TUNABLE = """\
input 8
repeat {1, 2, 3} dense 32..128:32 {relu, gelu}
dropout 0.1..0.5
dense {4, 6}@classes softmax
optimizer adam lr=1e-4..1e-2:log
"""


def test_spaces_build_the_default_model():
    result = make(TUNABLE)
    model = result.model
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert model.layers[1].units == 32 and model.layers[1].activation.__name__ == "relu"
    assert model.layers[2].rate == pytest.approx(0.1) and model.layers[3].units == 4
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
    assert result.values == {"repeat.count": 1, "dense.units": 32, "dense.activation": "relu",
                             "dropout.rate": 0.1, "classes": 4,
                             "optimizer.learning_rate": 1e-4}


def test_values_build_other_models():
    values = {"repeat.count": 3, "dense.units": 96, "dense.activation": "gelu",
              "dropout.rate": 0.3, "classes": 6, "optimizer.learning_rate": 0.005}
    result = make(TUNABLE, values=values)
    model = result.model
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert [d.units for d in dense] == [96, 96, 96, 6]
    assert {d.activation.__name__ for d in dense[:3]} == {"gelu"}
    assert model.layers[4].rate == pytest.approx(0.3)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    assert result.values == values
    partial = make(TUNABLE, values={"classes": 6}).values
    assert partial["classes"] == 6 and partial["dense.units"] == 32


def test_repeat_binds_the_last_repetition_and_keeps_names_unique():
    model = make("x = input 4\nrepeat 3 h = dense 8 relu\nout = dense 1 (h)\noutputs out").model
    names = [l.name for l in model.layers]
    assert names == ["x", "h_rep1", "h_rep2", "h", "out"]
    assert model.get_layer("out").input.shape[-1] == 8


@pytest.mark.parametrize("values, fragment, line", [
    ({"dense.unit": 64}, "unknown search space `dense.unit` (did you mean `dense.units`?)", None),
    ({"nothing": 1}, "its spaces are repeat.count, dense.units", None),
    ({"dense.units": 100}, "100 is outside the domain of `dense.units`: 32..128:32", 2),
    ({"dense.units": 256}, "outside the domain", 2),
    ({"dropout.rate": 0.9}, "outside the domain of `dropout.rate`: 0.1..0.5", 3),
    ({"classes": 5}, "outside the domain of `classes`: {4, 6}", 4),
    ({"repeat.count": 4}, "outside the domain of `repeat.count`", 2),
    ({"dense.activation": "tanh"}, "{relu, gelu}", 2),
])
def test_bad_values_are_spec_errors_naming_the_space(values, fragment, line):
    with pytest.raises(SpecError) as info:
        make(TUNABLE, values=values)
    assert fragment in info.value.message and info.value.line == line


def test_values_for_a_spec_without_spaces():
    with pytest.raises(SpecError, match="the spec has no spaces"):
        make("input 4\ndense 1", values={"dense.units": 3})
    assert make("input 4\ndense 1", values={}).values == {}
