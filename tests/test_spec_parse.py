"""The spec parser: every statement form, values, errors with line and column."""

import json
import subprocess
import sys

import pytest

from nbkeras import SpecError
from nbkeras.speclang.nodes import InputStmt, LayerStmt, ModelSpec
from nbkeras.speclang.parse import parse, parse_shape

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
