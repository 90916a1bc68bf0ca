"""Conformance with `shared/design/spec-language.md`, read sentence by sentence.

Each table holds specs written from the design doc (not from the code), with
what the doc says they mean or how they must fail. Most rows only parse, or
resolve a statement against Keras without building a model; a model is
built only where the build itself is the behaviour under test.
"""

import pytest

from nbkeras import SpecError
from nbkeras.modelbuild.build import build, resolve_layer
from nbkeras.speclang.codegen import generate
from nbkeras.speclang.lint import lint
from nbkeras.modelbuild.catalog import parse_spec as parse


def value(text):
    """The Arg a single written value becomes."""
    return parse(f"input 4\ndense {text}").graph[1].args[0]


def layer_of(line, input_line="input 8x8x3"):
    """(class name, kwargs) of one layer statement, resolved without building."""
    cls, kwargs = resolve_layer(parse(f"{input_line}\n{line}").graph[1])
    return cls.__name__, kwargs


def spec_error(text, **kw):
    with pytest.raises(SpecError) as info:
        spec = parse(text, **kw)
        build(spec, "m")
    return info.value


# --- Values: "integers and floats, signed or not (`-1`, `0.2`, `1e-3`), `true`/`false`,
# `none`, quoted strings, bare words (strings), tuples written `AxB`, and lists `[a, b]`."

@pytest.mark.parametrize("text, kind, python", [
    ("-1", "int", -1), ("+3", "int", 3), ("128", "int", 128),
    ("0.2", "float", 0.2), ("-0.5", "float", -0.5), ("1e-3", "float", 1e-3),
    ("1E-3", "float", 1e-3), (".5", "float", 0.5), ("-1e+3", "float", -1000.0),
    ("true", "bool", True), ("TRUE", "bool", True), ("False", "bool", False),
    ("none", "none", None), ("NONE", "none", None), ("None", "none", None),
    ("'he_normal'", "str", "he_normal"), ("'a b # c'", "str", "a b # c"),
    ('"it\'s"', "str", "it's"), ("he_normal", "word", "he_normal"), ("café", "word", "café"),
    ("3x3", "tuple", (3, 3)), ("3X3", "tuple", (3, 3)), ("2x3x4", "tuple", (2, 3, 4)),
    ("?x8", "tuple", (None, 8)), ("nonex8", "tuple", (None, 8)),
    ("[1, 2]", "list", [1, 2]), ("[a, 'b c', -1]", "list", ["a", "b c", -1]),
    ("[[1, 1], [2, 2]]", "list", [[1, 1], [2, 2]]), ("[]", "list", []),
])
def test_value_forms(text, kind, python):
    arg = value(text)
    assert (arg.kind, arg.python()) == (kind, python)


@pytest.mark.parametrize("text, column, fragment", [
    ("1/255", 11, "malformed value `1/255`"),
    ("1.2.3", 11, "malformed value `1.2.3`"),
    ("3x", 11, "malformed value `3x`"),
    ("1_000", 11, "malformed value `1_000`"),
    ("$x", 11, "unexpected `$` in `$x`"),
    ("0.5;", 11, "malformed value `0.5;`"),
    ("[1 2]", 14, "expected `,` or `]`"),
    ("[1, 2", 11, "unclosed `[`"),
    ("'half", 11, "unclosed quote"),
    ("[" * 40 + "]" * 40, 11 + 16, "nested more than 16 deep"),
])
def test_malformed_values_are_spec_errors_with_the_expected_form(text, column, fragment):
    err = spec_error(f"input 4\nrescaling {text}")
    assert (err.line, err.column) == (2, column)
    assert fragment in err.message


# --- Shapes: "dimensions joined by `x`, a single integer, and `?` (or `none`)".

@pytest.mark.parametrize("shape, dims", [
    ("784", (784,)), ("28x28", (28, 28)), ("28x28x1", (28, 28, 1)), ("28X28", (28, 28)),
    ("?x8", (None, 8)), ("nonex8", (None, 8)), ("NONEx8", (None, 8)), ("NONE", (None,)),
    ("?", (None,)), ("[28, 28]", (28, 28)), ("?x?x3", (None, None, 3)),
])
def test_input_shapes(shape, dims):
    assert parse(f"input {shape}\nflatten").graph[0].shape == dims


@pytest.mark.parametrize("shape", ["0x3", "8x", "x8", "3.5", "-1", "8xx8", "axb"])
def test_malformed_shapes(shape):
    err = spec_error(f"# c\ninput {shape}\nflatten")
    assert (err.line, err.column) == (2, 7) and f"`{shape}`" in err.message


# --- Lexical rules: continuation, comments, blank lines, case.

@pytest.mark.parametrize("text, line, column", [
    ("input 4\ndense 3 \\\n  reluu", 3, 3),
    ("\n\n# c\ninput 4\n\n   dense 3 reluu  # c", 6, 12),
    ("input 4\r\ndense 3 reluu\r\n", 2, 9),
    ("input 4 # a 'quote\ndense 3 name='a # b' \\\n  \\\n  reluu", 4, 3),
    ("input 4\ndense 3 \\ # note\n  reluu", 3, 3),
])
def test_positions_count_from_the_first_body_line(text, line, column):
    err = spec_error(text)
    assert (err.line, err.column) == (line, column) and "`reluu`" in err.message


def test_keywords_kinds_and_literals_are_case_insensitive_names_are_not():
    spec = parse("INPUT 4\nH = DENSE 3 RELU USE_BIAS=FALSE\nh = Dense 2 (H)\nOutputs H, h\n"
                 "LOSS MSE\nLoss_Weights H=1 h=2\nMETRICS MAE\nOPTIMIZER SGD LR=0.1")
    assert [s.target for s in spec.graph[1:]] == ["H", "h"]
    assert set(spec.settings) == {"loss", "loss_weights", "metrics", "optimizer"}
    err = spec_error("x = input 4\ndense 3 (X)")
    assert "unknown name `X`" in err.message and "did you mean `x`" in err.message


# --- Kinds: any case, with or without underscores, plus the aliases.

@pytest.mark.parametrize("line, cls", [
    ("batch_normalization", "BatchNormalization"), ("BatchNormalization", "BatchNormalization"),
    ("BATCHNORMALIZATION", "BatchNormalization"), ("bn", "BatchNormalization"),
    ("batchnorm", "BatchNormalization"), ("ln", "LayerNormalization"),
    ("layernorm", "LayerNormalization"), ("layer_normalization", "LayerNormalization"),
    ("conv 4 3", "Conv2D"), ("Conv2D 4 3", "Conv2D"), ("conv_2d 4 3", "Conv2D"),
    ("Conv2DTranspose 4 3", "Conv2DTranspose"), ("conv2d_transpose 4 3", "Conv2DTranspose"),
    ("SeparableConv2D 4 3", "SeparableConv2D"), ("separable_conv2d 4 3", "SeparableConv2D"),
    ("UpSampling2D 2", "UpSampling2D"), ("up_sampling_2d 2", "UpSampling2D"),
    ("ZeroPadding2D 1", "ZeroPadding2D"), ("zero_padding2d 1", "ZeroPadding2D"),
    ("maxpool 2", "MaxPooling2D"), ("pool 2", "MaxPooling2D"),
    ("max_pooling2d 2", "MaxPooling2D"), ("avgpool 2", "AveragePooling2D"),
    ("gap", "GlobalAveragePooling2D"), ("gmp", "GlobalMaxPooling2D"),
    ("concat", "Concatenate"), ("embed 10 4", "Embedding"), ("Embedding 10 4", "Embedding"),
    ("attention 2 4", "MultiHeadAttention"), ("mha 2 4", "MultiHeadAttention"),
    ("rescaling 0.5", "Rescaling"), ("random_flip", "RandomFlip"), ("Resizing 4 4", "Resizing"),
])
def test_kinds_and_aliases(line, cls):
    assert layer_of(line)[0] == cls


@pytest.mark.parametrize("line, input_line, cls", [
    ("Conv1D 4 3", "input 8x3", "Conv1D"), ("conv1d 4 3", "input 8x3", "Conv1D"),
    ("GRU 4", "input 8x3", "GRU"), ("gru 4", "input 8x3", "GRU"),
    ("LSTM 4", "input 8x3", "LSTM"), ("lstm 4", "input 8x3", "LSTM"),
    ("simple_rnn 4", "input 8x3", "SimpleRNN"),
    ("Reshape 4x4", "input 16", "Reshape"), ("Permute 2x1", "input 4x3", "Permute"),
    ("RepeatVector 3", "input 4", "RepeatVector"), ("repeat_vector 3", "input 4", "RepeatVector"),
    ("leaky_relu", "input 4", "LeakyReLU"), ("ReLU", "input 4", "ReLU"),
])
def test_kinds_of_sequence_and_shape_layers(line, input_line, cls):
    assert layer_of(line, input_line)[0] == cls


# --- Arguments: positional in signature order; bare activation / padding words.

@pytest.mark.parametrize("line, kwargs", [
    ("dense 128", {"units": 128}),
    ("dense 128 relu", {"units": 128, "activation": "relu"}),
    ("dense 10 Softmax", {"units": 10, "activation": "softmax"}),
    ("conv2d 32 3", {"filters": 32, "kernel_size": 3}),
    ("conv2d 32 3x3 RELU Same", {"filters": 32, "kernel_size": (3, 3), "activation": "relu",
                                 "padding": "same"}),
    ("conv2d 32 3 same relu", {"filters": 32, "kernel_size": 3, "padding": "same",
                               "activation": "relu"}),
    ("conv2d 8 [3, 3] strides=2x2 padding=VALID",
     {"filters": 8, "kernel_size": [3, 3], "strides": (2, 2), "padding": "valid"}),
    ("dropout 0.2", {"rate": 0.2}), ("maxpool 2", {"pool_size": 2}),
    ("maxpool 2 same", {"pool_size": 2, "padding": "same"}),
    ("embedding 1000 16", {"input_dim": 1000, "output_dim": 16}),
    ("dense 3 activation=GELU use_bias=false", {"units": 3, "activation": "gelu",
                                                "use_bias": False}),
    ("dense Units=3 activation=none", {"units": 3, "activation": None}),
    ("rescaling scale=0.5 offset=-1", {"scale": 0.5, "offset": -1}),
    ("dense 3 name='my # layer'", {"units": 3, "name": "my # layer"}),
])
def test_arguments(line, kwargs):
    assert layer_of(line)[1] == kwargs


@pytest.mark.parametrize("text, line, column, fragment", [
    # a bare activation / padding word on a layer that has no such argument
    ("input 4x4x1\nbn relu", 2, 4, "`BatchNormalization` takes no `activation`"),
    ("input 4\ndropout 0.2 relu", 2, 13, "add a line `activation relu`"),
    ("input 4\ndense 3 same", 2, 9, "`Dense` has no `padding`"),
    # required values and layers around Python objects or code
    ("input 4\nx = dense", 2, 1, "`Dense` needs `units`"),
    ("q = input 4x8\nmha (q, q)", 2, 1, "needs `num_heads` and `key_dim`"),
    ("input 4x3\nbidirectional lstm", 2, 1, "`LSTM` needs `units`"),
    ("input 4x3\nTimeDistributed layer=dense", 2, 17, "wraps a layer written after it"),
    ("input 4x3\nTimeDistributed", 2, 1, "`TimeDistributed` wraps a layer"),
    ("input 4\nlambda x", 2, 1, "a spec cannot run code"),
    ("input 4\nLambda function=abs", 2, 1, "a spec cannot run code"),
    # did-you-mean for kinds, activations, keywords, names
    ("input 4\nDenze 2", 2, 1, "did you mean `Dense`"),
    ("input 4\nimput 3", 2, 1, "did you mean `input`"),
    ("input 4\ndense 3\nmetrix accuracy", 3, 1, "did you mean `metrics`"),
    ("input 4\nconv_1dd 4 3", 2, 1, "did you mean `Conv1D`"),
    ("input 4\ndense 3 activation=relux", 2, 9, "did you mean `relu`"),
    ("input 4\ndense 3 Relux", 2, 9, "did you mean `relu`"),
    ("input 4\ndense 3 kernel_initialiser=zeros", 2, 9, "did you mean `kernel_initializer`"),
    ("input 4 nme=x\ndense 3", 1, 9, "did you mean `name`"),
    ("input 4 name=a name=b\ndense 3", 1, 16, "`name` is given twice"),
    ("a = input 4\nhidden = dense 3\ndense 2 (hiden)", 3, 10, "did you mean `hidden`"),
    ("x = input 4\nh = dense 3\noutputs H", 3, 9, "did you mean `h`"),
    # nothing is evaluated as Python
    ("input 4\ndense 3 __import__('os')", 2, 20, "`os` is not a name"),
    ("input 4\ndense 3\nos.system('ls')", 3, 1, "`os.system`"),
    ("input 4\ndense 3\nimport os", 3, 1, "unknown layer kind `import`"),
    ("input 4\ndense 3\n!ls", 3, 1, "`!ls`"),
    ("input 4\ndense 3 kernel_initializer=(lambda: 1)", 2, 28, "got `(`"),
    # Keras-level mistakes land on the statement that made them
    ("x = input 4\nx = dense 3\nx_2 = dense 2\ndense 1", 3, 1, "layer name `x_2` is already used"),
    ("x = input 4\ndense 3 name=x\ndense 1", 2, 1, "already used by line 1"),
    ("a = input 4\nb = input 3\nc = add (a, b)\ndense 1", 3, 1, "incompatible shapes"),
    ("input 4\ndense 3\nconv2d 2 3\ndense 1", 3, 1, "failed in Keras"),
    ("input 4\ndense -3", 2, 1, "failed in Keras"),
    ("input 4 dtype=int33\ndense 3", 1, 1, "failed in Keras"),
])
def test_error_contract(text, line, column, fragment):
    err = spec_error(text)
    assert (err.line, err.column) == (line, column)
    assert fragment in err.message


# --- Training settings.

TWO = "x = input 4\na = dense 3 softmax\nb = dense 1 (x)\noutputs a, b\n"


@pytest.mark.parametrize("settings, line, column, fragment", [
    ("loss a=mse b=mse a=mae", 5, 18, "two losses for output `a`"),
    ("loss a=mse b=mse\nloss_weights a=1 a=2", 6, 18, "two loss weights for output `a`"),
    ("loss a=mse b=mse\nloss_weights a=1 bb=2", 6, 18, "did you mean `b`"),
    ("loss a=msee b=mse", 5, 6, "did you mean `mse`"),
    ("loss a=cce b=mse", 5, 6, "did you mean `categorical_crossentropy`"),
    ("loss a=mse b=mse\nmetrics a=accurcy", 6, 9, "did you mean `accuracy`"),
    ("optimizer adam learning_rate=0.1 lr=0.2", 5, 34, "given twice"),
    ("optimizer adamm", 5, 11, "did you mean `adam`"),
    ("optimizer sgd momentun=0.9", 5, 15, "did you mean `momentum`"),
    ("loss a=mse b=mse\nloss a=mse b=mae", 6, 1, "`loss` is given twice"),
])
def test_setting_errors(settings, line, column, fragment):
    err = spec_error(TWO + settings)
    assert (err.line, err.column) == (line, column)
    assert fragment in err.message


def test_per_output_settings_use_keras_layer_names_and_may_come_first():
    text = ("loss first=mse x_3=huber delta=2.0\nmetrics first=mae x_3=[mse, rmse]\n"
            "loss_weights first=1 x_3=0.5\n"
            "x = input 4\nx = dense 3\nfirst = dense 2\nx = dense 5 (x)\nname = dense 1 "
            "name=extra (x)\noutputs first, x, name\noptimizer sgd lr=0.01")
    err = spec_error(text)
    assert "no loss for output `extra`" in err.message and err.line == 1
    result = build(parse(text.replace("x_3=huber", "extra=mse x_3=huber")), "m")
    model = result.model
    assert list(model.output_names) == ["first", "x_3", "extra"]
    assert sorted(l.name for l in model.layers) == ["extra", "first", "x", "x_2", "x_3"]
    kwargs = result.compile_kwargs
    assert set(kwargs["loss"]) == {"first", "x_3", "extra"}
    assert kwargs["metrics"] == {"first": ["mae"], "x_3": ["mse", "root_mean_squared_error"]}
    assert kwargs["loss_weights"] == {"first": 1, "x_3": 0.5}
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_an_optimizer_class_keras_get_does_not_list_is_still_found():
    result = build(parse("input 4\ndense 1\noptimizer lamb\nloss mse"), "m")
    assert type(result.model.optimizer).__name__ == "Lamb"


# --- Lint: the loss is quoted as written.

@pytest.mark.parametrize("text, fragment", [
    ("input 4\ndense 3 softmax\nloss MeanAbsoluteError", "`MeanAbsoluteError` on"),
    ("input 4\ndense 3 softmax\nloss mean_squared_error", "`mean_squared_error` on"),
    ("input 4\ndense 3 softmax\nloss bce", "binary cross-entropy on"),
])
def test_lint_names_the_loss_as_written(text, fragment):
    warnings = [str(w) for w in lint(parse(text))]
    assert len(warnings) == 1 and fragment in warnings[0] and warnings[0].startswith("line 3")


# --- `--code`: the generated code builds the same model.

@pytest.mark.parametrize("text", [
    # a spec binding the name the code would pin a re-bound output under
    "x = input 4\nx_at0 = dense 2\nx = dense 3\noutputs x_at0, x",
    # several sources: a list for layers whose `call` takes one `inputs` list,
    # positional tensors for MultiHeadAttention; per-output loss objects
    "q = input 4x8\nv = input 3x8\na = additive_attention (q, v)\nm = mha 2 4 (q, v)\n"
    "s = add (a, m)\nd = dot (s, q) axes=2\no = flatten\nr = dense 1 (o)\n"
    "c = dense 3 softmax (o)\noutputs r, c\nloss r=huber delta=2.0 c=sparse_categorical_crossentropy\n"
    "metrics c=[accuracy, auc]\nloss_weights r=0.5 c=1\noptimizer lamb",
])
def test_code_builds_the_same_model(text):
    spec = parse(text)
    result = build(spec, "m")
    namespace = {}
    exec(compile(generate(spec, "m", result), "<generated>", "exec"), namespace)
    model = namespace["model"]
    assert sorted(l.name for l in model.layers) == sorted(l.name for l in result.model.layers)
    assert [tuple(o.shape) for o in model.outputs] == [tuple(o.shape)
                                                       for o in result.model.outputs]
    assert model.output_names == result.model.output_names
    assert model.count_params() == result.model.count_params()
    assert type(model.optimizer) is type(result.model.optimizer)


def test_parser_stays_free_of_keras():
    import subprocess
    import sys
    code = ("import sys; from nbkeras.speclang.parse import parse; from nbkeras.speclang.lint import "
            "lint; lint(parse('x = input 4\\ndense 3 relu (x)\\nloss mse')); "
            "print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- Default compile, read from the output layer whatever statement made it.

@pytest.mark.parametrize("text, loss", [
    ("input 4\ndense 3\nactivation softmax", "sparse_categorical_crossentropy"),
    ("input 4\ndense 1\nactivation SIGMOID", "binary_crossentropy"),
    ("input 4\ndense 1 'sigmoid'", "binary_crossentropy"),
    ("input 4\ndense 2 sigmoid\noptimizer sgd", "mse"),
])
def test_default_loss_from_the_output_layer(text, loss):
    result = build(parse(text), "m", compile=False)
    assert result.compile_kwargs["loss"] == loss and result.message.startswith("No loss given")


def test_magic_options_together(ip, run, capsys):
    run("%%model seq --input ?x8 --no-compile --code --seed 1\n"
        "lstm 4  # no input statement: --input gives it\ndense 1 sigmoid\n")
    out = capsys.readouterr().out
    model = ip.user_ns["seq"]
    assert tuple(model.input_shape) == (None, None, 8) and not model.compiled
    code = out[out.index("import keras"):]
    assert "keras.Input(shape=(None, 8))" in code and "compile" not in code
    namespace = {}
    exec(code, namespace)
    assert namespace["model"].count_params() == model.count_params()
