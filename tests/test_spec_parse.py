"""The spec parser: every statement form, values, errors with line and column."""

import json
import subprocess
import sys

import pytest

from nbkeras import SpecError
from nbkeras.speclang.nodes import InputStmt, LayerStmt, ModelSpec
from nbkeras.modelbuild.catalog import parse_spec as parse
from nbkeras.speclang.lex import parse_shape

from spec_examples import EXAMPLES

TWO_HEADS = EXAMPLES["two_heads"][0]


def values(spec, index=-1):
    return [(a.key, a.value, a.kind) for a in spec.graph[index].args]


def test_parse_never_imports_keras():
    code = ("import sys; from nbkeras.speclang.parse import parse; from nbkeras.speclang.lint import lint;"
            "lint(parse('input 4\\ndense 3 softmax\\nloss mse'));"
            "print([m for m in ('keras', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_input_shapes():
    assert parse_shape("28x28") == (28, 28)
    assert parse_shape("784") == (784,)
    assert parse_shape("?x8") == (None, 8)
    assert parse_shape("nonex8") == (None, 8)
    assert parse_shape("NONEX8") == (None, 8)
    spec = parse("x = input 28x28x1 dtype=int32 name=pixels\ndense 3")
    first = spec.graph[0]
    assert isinstance(first, InputStmt) and first.shape == (28, 28, 1) and first.target == "x"
    assert [(a.key, a.value) for a in first.options] == [("dtype", "int32"), ("name", "pixels")]
    assert parse("INPUT [4, 5]\ndense 3").graph[0].shape == (4, 5)
    assert parse("input shape=3x2\ndense 3").graph[0].shape == (3, 2)


def test_layer_values_of_every_kind():
    spec = parse("input 4\nDense -1 0.2 1e-3 +3 .5 true FALSE None 'a b' \"c#d\" word 3x3 "
                 "?x2 [1, [2, 3x3], none] key=value")
    assert values(spec) == [
        (None, -1, "int"), (None, 0.2, "float"), (None, 1e-3, "float"), (None, 3, "int"),
        (None, 0.5, "float"), (None, True, "bool"), (None, False, "bool"), (None, None, "none"),
        (None, "a b", "str"), (None, "c#d", "str"), (None, "word", "word"),
        (None, (3, 3), "tuple"), (None, (None, 2), "tuple"),
        (None, (1, (2, (3, 3)), None), "list"), ("key", "value", "word")]
    assert spec.graph[-1].args[13].python() == [1, [2, (3, 3)], None]


def test_comments_blank_lines_and_continuations():
    spec = parse("# a model\n\ninput 4   # the input\n  dense 10 \\\n   relu \\\n"
                 "   name='h#1'\n\ndense 2  # out\n")
    assert len(spec.graph) == 3
    layer = spec.graph[1]
    assert layer.line == 4 and [a.value for a in layer.args] == [10, "relu", "h#1"]
    assert layer.args[1].line == 5 and layer.args[1].column == 4


def test_names_sources_and_rebinding():
    spec = parse(TWO_HEADS)
    x_conv, x_flat, concat = spec.graph[2], spec.graph[3], spec.graph[4]
    assert x_conv.sources_at == (0,) and x_flat.previous == 2
    assert concat.sources_at == (3, 1)  # the newest `x`
    assert spec.output_indices() == (5, 6)
    assert spec.layer_names() == {0: "img", 1: "meta", 2: "x", 3: "x_2", 4: "y", 5: "digit",
                                  6: "value"}
    assert set(spec.settings) == {"loss", "loss_weights", "metrics"}


def test_layer_name_keyword_wins_and_unbound_layers_keep_keras_names():
    spec = parse("x = input 3\nx = dense 2 name=first\ndense 2\nx = dense 1")
    assert spec.layer_names() == {0: "x", 1: "first", 2: None, 3: "x_3"}


def test_case_insensitive_keywords_and_case_sensitive_names():
    spec = parse("X = INPUT 4\nx = Input 3\nY = Dense 2 (X)\nOUTPUTS Y\nLOSS mse\nMetrics mae")
    assert spec.graph[2].sources_at == (0,)
    assert spec.outputs.names[0][0] == "Y"
    assert parse("x = input 4\na = dense 1\nb = dense 2 (x)\noutputs (a, b)").output_indices() \
        == (1, 2)
    assert set(spec.settings) == {"loss", "metrics"}


def test_settings_anywhere_and_input_option():
    spec = parse("optimizer sgd lr=0.01 momentum=0.9\ndense 3\nloss mse", input_shape="4x2")
    assert spec.graph[0].implicit and spec.graph[0].shape == (4, 2)
    assert [a.key for a in spec.settings["optimizer"].args] == [None, "lr", "momentum"]


def test_config_round_trip_is_equal_json():
    spec = parse(TWO_HEADS + "z = dense 3 k=[1, [2, none]] s='q' t=3x3 (value)\n")
    config = spec.to_config()
    again = ModelSpec.from_config(json.loads(json.dumps(config)))
    assert again == spec
    assert again.to_config() == config


@pytest.mark.parametrize("text, line, column, fragment", [
    ("dense 3", 1, 1, "first statement must be an input"),
    ("input 28y\ndense 3", 1, 7, "malformed shape `28y`"),
    ("input 0x3\ndense 3", 1, 7, "malformed shape `0x3`"),
    ("input\ndense 3", 1, 1, "`input` needs a shape"),
    ("input 3 4\ndense 3", 1, 9, "`input` takes one shape"),
    ("input 4\n\ndense 3 (y)", 3, 10, "unknown name `y`"),
    ("hidden = input 4\ndense 3 (hiden)", 2, 10, "did you mean `hidden`"),
    ("x = input 4\ndense 3 (X)", 2, 10, "did you mean `x`"),
    ("input 4\ndense 1.2.3", 2, 7, "malformed value `1.2.3`"),
    ("input 4\ndense 3x", 2, 7, "malformed value `3x`"),
    ("input 4\ndense 3 'abc", 2, 9, "unclosed quote"),
    ("input 4\ndense 3 [1, 2", 2, 9, "unclosed `[`"),
    ("input 4\ndense 3 [1 2]", 2, 12, "expected `,` or `]`"),
    ("input 4\ndense 3 (x", 2, 9, "unclosed `(`"),
    ("input 4\ndense 3 ()", 2, 9, "empty source list"),
    ("x = input 4\ndense 3 (x) (x)", 2, 13, "one source list"),
    ("input 4\ndense 3 units=", 2, 14, "expected a value after `=`"),
    ("input 4\ndense 3 = 4", 2, 7, "`3=` is not a keyword"),
    ("input 4\ndense 3 =4", 2, 7, "`3=` is not a keyword"),
    ("input 4\ndense = 4", 2, 9, "expected a layer kind"),
    ("input 4\ndense 3 (x) = 4", 2, 13, "unexpected `=`"),
    ("input 4\n1x = dense 3", 2, 1, "not a name"),
    ("input 4\nx =", 2, 1, "expected a layer kind"),
    ("input 4\ndense 3 $HOME", 2, 9, "unexpected `$`"),
    ("input 4\ndense 3 __import__('os').system('ls')", 2, 20, "is not a name"),
    ("input 4\ndense 3 a;b", 2, 9, "unexpected `;`"),
    ("input 4\nd = dense 3\noutputs e", 3, 9, "unknown name `e`"),
    ("input 4\nd = dense 3\noutputs", 3, 1, "at least one name"),
    ("input 4\nd = dense 3\noutputs d\noutputs d", 4, 1, "given twice"),
    ("input 4\ndense 3\nloss mse\nloss mae", 4, 1, "`loss` is given twice"),
    ("input 4\ndense 3\nloss", 3, 1, "`loss` needs a value"),
    ("input 4\ndense 3\nloss mse mae", 3, 10, "`key=value`"),
    ("input 4\nd = dense 3\nloss d=mse mae", 3, 12, "`OUT=LOSS`"),
    ("input 4\ndense 3\noptimizer 3", 3, 11, "not an optimizer name"),
    ("input 4\nd = dense 3\nloss_weights d=heavy", 3, 14, "malformed loss weight"),
    ("input 4\ndense 3\nmetrics 3", 3, 9, "not a metric name"),
    ("input 4\nx = loss mse", 2, 1, "cannot be bound"),
    ("input 4", 1, 1, "no layers"),
    ("", 1, 1, "no layers"),
    ("input 4\n(x) = dense 3", 2, 1, "expected a layer kind"),
])
def test_errors_point_at_the_text(text, line, column, fragment):
    with pytest.raises(SpecError) as info:
        parse(text)
    err = info.value
    assert fragment in err.message
    assert (err.line, err.column) == (line, column)
    assert str(err).startswith(f"line {line}, column {column}: ")


def test_input_option_conflicts_with_input_statement():
    with pytest.raises(SpecError, match="drop `--input`"):
        parse("input 4\ndense 3", input_shape="4")
    with pytest.raises(SpecError, match="malformed shape `4y`"):
        parse("dense 3", input_shape="4y")


def test_layer_statement_keeps_kind_as_written():
    stmt = parse("input 4\nx = Batch_Normalization momentum=0.9").graph[1]
    assert isinstance(stmt, LayerStmt)
    assert stmt.kind == "Batch_Normalization" and stmt.kind_column == 5
    assert stmt.args[0].key == "momentum"


# --- Version 2: wrappers, keyword sources, per-output loss options

def test_wrappers_prefix_a_layer_statement():
    spec = parse("x = input 10x4\nh = bidirectional merge_mode=sum lstm 8 return_sequences=true\n"
                 "y = TD dense 3 softmax\nz = time_distributed bi gru 2 (h)")
    h, y, z = spec.graph[1], spec.graph[2], spec.graph[3]
    assert (h.kind, h.kind_column, [w.kind for w in h.wrappers]) == ("lstm", 34, ["bidirectional"])
    assert [(a.key, a.value) for a in h.wrappers[0].args] == [("merge_mode", "sum")]
    assert [(a.key, a.value) for a in h.args] == [(None, 8), ("return_sequences", True)]
    assert (y.kind, [a.value for a in y.args]) == ("dense", [3, "softmax"])
    assert [w.kind for w in z.wrappers] == ["time_distributed", "bi"] and z.sources_at == (1,)


def test_keyword_sources():
    spec = parse("frames = input 10x4\nmask = input 10 dtype=bool\ngru 16 (frames, mask=mask)")
    stmt = spec.graph[2]
    assert [(s.name, s.key) for s in stmt.sources] == [("frames", None), ("mask", "mask")]
    assert stmt.sources_at == (0, 1) and stmt.sources[1].column == 17


def test_per_output_loss_statements():
    spec = parse("x = input 4\npriority = dense 1 (x)\ndepartment = dense 4 (x)\nv = dense 1 (x)\n"
                 "outputs priority, department, v\n"
                 "loss priority: binary_crossentropy from_logits=true\n"
                 "loss department : categorical_crossentropy from_logits=true\nloss v=mse")
    first, second = spec.output_losses
    assert (first.output, first.output_column, first.line) == ("priority", 6, 6)
    assert [(a.key, a.value) for a in first.args] == [(None, "binary_crossentropy"),
                                                     ("from_logits", True)]
    assert second.output == "department" and spec.settings["loss"].args[0].key == "v"


# --- Version 2: search spaces

def space_of(text):
    spec = parse(f"input 4\n{text}")
    assert len(spec.spaces) == 1, spec.spaces
    return spec.spaces[0]


@pytest.mark.parametrize("text, kind, fields, default, domain", [
    ("dense {64, 128, 256} relu", "choice", {"choices": (64, 128, 256)}, 64, "{64, 128, 256}"),
    ("dense 64 {relu, gelu}", "choice", {"choices": ("relu", "gelu")}, "relu", "{relu, gelu}"),
    ("dense 3 kernel_size={3x3, 'a b', none, true, 1.5, [1, 2]}", "choice",
     {"choices": ((3, 3), "a b", None, True, 1.5, (1, 2))}, (3, 3), None),
    ("dropout 0.1..0.5", "float", {"low": 0.1, "high": 0.5, "step": None, "log": False}, 0.1,
     "0.1..0.5"),
    ("conv2d 16..64 3", "int", {"low": 16, "high": 64, "step": None}, 16, "16..64"),
    ("dense 1..2.5", "float", {"low": 1.0, "high": 2.5}, 1.0, "1.0..2.5"),
    ("dense 32..256:32 relu", "int", {"low": 32, "high": 256, "step": 32}, 32, "32..256:32"),
    ("dense 0..1:0.25", "float", {"low": 0.0, "high": 1.0, "step": 0.25}, 0.0, None),
    ("dense -1..1", "int", {"low": -1, "high": 1}, -1, "-1..1"),
    ("dense 5 kernel_regularizer=1e-4..1e-2:log", "float", {"low": 1e-4, "high": 1e-2,
                                                             "log": True}, 1e-4, None),
])
def test_space_forms(text, kind, fields, default, domain):
    space = space_of(text)
    assert space.kind == kind and space.default == default
    for key, value in fields.items():
        assert getattr(space, key) == value
    if domain:
        assert space.domain == domain
    assert (space.line, space.column) == (2, text.index(space.text.split("@")[0][:1]) + 1)


@pytest.mark.parametrize("text, names", [
    ("input 4\ndense {8, 16}\ndense 8\ndense {1, 2}", ["dense.units", "dense_3.units"]),
    ("input 4\nh = dense {8, 16}\nh = dense {1, 2} relu", ["h.units", "h_2.units"]),
    ("input 4\ndense 3 name=top activation={relu, tanh}", ["top.activation"]),
    ("input 4\ndense 64 {relu, gelu}", ["dense.activation"]),
    ("input 4\ndropout 0.1..0.5\nbn momentum=0.9..0.99", ["dropout.rate",
                                                          "batch_normalization.momentum"]),
    ("input 4\nconv {8, 16} 3", ["conv2d.filters"]),
    ("input 4\ndense 4\noptimizer adam lr=1e-4..1e-2:log beta_1={0.9, 0.95}",
     ["optimizer.learning_rate", "optimizer.beta_1"]),
    ("input 4\nrepeat {1, 2} dense 8\nrepeat 1..3 dense {4, 8}",
     ["repeat.count", "repeat_2.count", "dense_2.units"]),
    ("input 4\ndense {64, 128}@width relu\ndropout 0.1..0.5@rate", ["width", "rate"]),
    ("input 4\ndense = dense 3\ndense {1, 2}", ["dense_2.units"]),
    ("input 4\nh = bi merge_mode={sum, concat} lstm {4, 8}", ["h.merge_mode", "h.units"]),
    ("input 4\nd = dense 1\nloss d: huber delta=0.5..2", ["loss.d.delta"]),
    ("input 4\nd = dense 1\nloss huber delta=0.5..2\nloss_weights d=0.1..1",
     ["loss.delta", "loss_weights.d"]),
])
def test_space_names(text, names):
    spec = parse(text)
    assert [s.name for s in spec.spaces] == names
    assert len(set(names)) == len(names)


def test_spaces_are_in_source_order_and_settings_may_come_first():
    spec = parse("optimizer adam lr={1e-3, 1e-4}\ninput 4\ndense {1, 2}")
    assert [s.name for s in spec.spaces] == ["optimizer.learning_rate", "dense.units"]


def test_repeat_statements():
    spec = parse("x = input 4\nrepeat 3 h = dense 8 relu\nrepeat {1, 2} dense 4 (x)\n"
                 "y = repeat 2 dropout 0.1\noutputs h")
    h, second, y = spec.graph[1], spec.graph[2], spec.graph[3]
    assert (h.repeat.value, h.target, h.kind) == (3, "h", "dense")
    assert second.repeat.kind == "space" and second.sources_at == (0,)
    assert y.target == "y" and spec.output_indices() == (1,)


def test_a_cell_without_spaces_has_none():
    assert parse(TWO_HEADS).spaces == ()


def test_config_round_trip_keeps_spaces_wrappers_and_output_losses():
    spec = parse("x = input 10x4\nm = input 10 dtype=bool\n"
                 "h = bi merge_mode={sum, concat} lstm 8..32:8 (x, mask=m)\n"
                 "repeat {1, 2} dense {relu, [1, 2], 3x3}@odd\nd = dense 1 (h)\n"
                 "loss d: binary_crossentropy from_logits=true\noptimizer adam lr=1e-4..1e-2:log")
    config = spec.to_config()
    again = ModelSpec.from_config(json.loads(json.dumps(config)))
    assert again == spec and again.spaces == spec.spaces
    assert again.to_config() == config


@pytest.mark.parametrize("text, line, column, fragment", [
    # search spaces
    ("input 4\ndense {}", 2, 7, "empty choice `{}`"),
    ("input 4\ndense {64, 128", 2, 7, "unclosed `{`"),
    ("input 4\ndense {64 128}", 2, 11, "expected `,` or `}`"),
    ("input 4\ndropout 0.5..0.1", 2, 9, "LOW 0.5 is above HIGH 0.1"),
    ("input 4\ndense 3\noptimizer adam lr=0..1e-2:log", 3, 19, "bounds above 0"),
    ("input 4\ndense 3\noptimizer adam lr=-1..1:log", 3, 19, "bounds above 0"),
    ("input 4\ndense 32..256:0", 2, 7, "must be above 0"),
    ("input 4\ndense 32..256:-32", 2, 7, "must be above 0"),
    ("input 4\ndense 32..64:64", 2, 7, "at most the range's width 32"),
    ("input 4\ndense 1..x", 2, 7, "malformed range `1..x`"),
    ("input 4\ndense 1..5:lg", 2, 7, "write `log` or a step"),
    ("input 4\n{dense, conv2d} 64", 2, 1, "cannot stand for a layer kind"),
    ("input 4\n1..2 64", 2, 1, "cannot stand for a layer kind"),
    ("input 4\nbi {lstm, gru} 8", 2, 4, "cannot stand for a layer kind"),
    ("input 4\nrepeat 2 {dense, gru} 8", 2, 10, "cannot stand for a layer kind"),
    ("x = input 4\ndense 3 ({x, y})", 2, 10, "cannot stand for a source"),
    ("input 4\n{a, b} = dense 3", 2, 1, "cannot stand for a bound name"),
    ("input 4\nd = dense 3\noutputs {d}", 3, 9, "cannot stand for an output name"),
    ("input 4\ndense 3\noptimizer {adam, sgd}", 3, 11, "cannot stand for an optimizer name"),
    ("input 4\ndense 3\nloss {mse, mae}", 3, 6, "cannot stand for a loss name"),
    ("input 4\nd = dense 3\nloss d: {mse, mae}", 3, 9, "cannot stand for a loss name"),
    ("input 4\ndense 3\nmetrics {mae, mse}", 3, 9, "cannot stand for a metric name"),
    ("input 4\ndense {64, 128}@w relu\ndropout 0.1..0.5@w", 3, 9, "label `@w` is given twice"),
    ("input 4\ndense {64, 128}@1w", 2, 16, "malformed label `@1w`"),
    ("input 4\ndense {64, 128} @w", 2, 17, "written right after it"),
    ("input 4\ndense 64@w", 2, 7, "`64` is a fixed value"),
    ("input 4\ndense [1, {2, 3}]", 2, 11, "cannot be inside a list"),
    ("input 4\ndense {1, {2, 3}}", 2, 11, "cannot be inside a list or a choice"),
    ("input 4\ndense {1, 2..3}", 2, 11, "cannot be inside a list or a choice"),
    ("input 4\nrepeat 2.5 dense 3", 2, 8, "count of `repeat` must be an integer"),
    ("input 4\nrepeat {1, 2.5} dense 3", 2, 8, "must be an integer space"),
    ("input 4\nrepeat 1.0..3 dense 3", 2, 8, "must be an integer space"),
    ("input 4\nrepeat {a, b} dense 3", 2, 8, "must be an integer space"),
    ("input 4\nrepeat 0 dense 3", 2, 8, "must be at least 1"),
    ("input 4\nrepeat relu dense 3", 2, 8, "must be an integer"),
    ("input 4\nrepeat 2", 2, 1, "needs a layer statement to repeat"),
    ("input 4\nrepeat", 2, 1, "needs a count"),
    ("input 4\nrepeat 2 loss mse", 2, 10, "repeats one layer statement"),
    # wrappers and keyword sources
    ("input 4x3\nbidirectional", 2, 1, "`bidirectional` wraps a layer"),
    ("input 4x3\nbi merge_mode=sum (x)", 2, 1, "`bi` wraps a layer"),
    ("input 4x3\nbi 64", 2, 4, "`64` cannot be the layer of `Bidirectional`"),
    ("input 4x3\ntd layer=dense", 2, 4, "takes no `layer=`"),
    ("x = input 4\ngru 3 (x, mask=)", 2, 11, "expected a bound name after `mask=`"),
    ("x = input 4\ngru 3 (mask=x, x)", 2, 16, "after a keyword source"),
    ("x = input 4\ngru 3 (x, mask=x, mask=x)", 2, 19, "`mask=` is given twice"),
    ("x = input 4\ngru 3 (x, mask=m)", 2, 11, "unknown name `m`"),
    # per-output loss statements
    ("x = input 4\na = dense 1\nloss a: mse\nloss a: mae", 4, 6, "two losses for output `a`"),
    ("x = input 4\na = dense 1\nloss a=mse\nloss a: mae", 4, 6, "two losses for output `a`"),
    ("x = input 4\na = dense 1\nloss mse\nloss a: mae", 3, 1, "sets the loss of every output"),
    ("x = input 4\na = dense 1\nloss a:", 3, 1, "`loss a:` needs a loss"),
    ("x = input 4\na = dense 1\nloss a: mse 3", 3, 13, "`key=value`"),
    ("x = input 4\na = dense 1\nloss 1a: mse", 3, 6, "not an output name"),
    ("x = input 4\na = dense 1\nloss a=mse\nloss b=mae", 4, 1, "`loss OUT: LOSS key=value`"),
])
def test_version_2_errors_point_at_the_text(text, line, column, fragment):
    with pytest.raises(SpecError) as info:
        parse(text)
    err = info.value
    assert fragment in err.message, err.message
    assert (err.line, err.column) == (line, column), err


def test_the_language_names_spaces_only_with_a_catalog_it_is_given():
    """The parser imports nothing that knows Keras: naming `dense {8, 16}`
    (which argument is `units`) takes the builder's catalog, which
    `parse_spec` passes; a labelled space needs none."""
    from nbkeras.speclang.parse import parse as language_parse
    with pytest.raises(ValueError, match="parse_spec"):
        language_parse("input 4\ndense {8, 16}")
    assert [s.name for s in language_parse("input 4\nd = dense units={8, 16}@w").spaces] == ["w"]
    assert [s.name for s in parse("input 4\ndense {8, 16}").spaces] == ["dense.units"]
