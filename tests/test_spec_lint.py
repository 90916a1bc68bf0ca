"""Beginner pitfalls are warned about, naming the line and the fix."""

import pytest

from nbkeras.speclang.lint import lint
from nbkeras.modelbuild.catalog import parse_spec as parse


def warnings_of(text):
    return lint(parse(text))


@pytest.mark.parametrize("text, line, fragments", [
    ("input 4\ndense 3 softmax\nloss categorical_crossentropy from_logits=true", 3,
     ["already applies softmax", "drop `from_logits=true`"]),
    ("input 4\nout = dense 1 activation=sigmoid\nloss binary_crossentropy from_logits=TRUE", 3,
     ["output `out` (line 2) already applies sigmoid"]),
    ("input 4\ndense 1 sigmoid\n\nloss categorical_crossentropy", 4,
     ["single sigmoid unit", "use `binary_crossentropy`"]),
    ("input 4\ndense 1 sigmoid\nloss SparseCategoricalCrossentropy", 3,
     ["single sigmoid unit"]),
    ("input 4\ndense 5 softmax\nloss binary_crossentropy", 3,
     ["binary cross-entropy", "use `sparse_categorical_crossentropy`"]),
    ("input 4\ndense 5 softmax\nloss mse", 3, ["`mse`", "a softmax"]),
    ("input 4\ndense 5\nsoftmax\nloss mae", 4, ["`mae`", "a softmax"]),
    ("input 4\ndense 5 softmax\nloss mean_squared_error", 3, ["a softmax"]),
    ("input 4\ndense 1\nloss sparse_categorical_crossentropy", 3,
     ["one unit", "`dense N softmax`"]),
])
def test_pitfalls_are_warned(text, line, fragments):
    found = warnings_of(text)
    assert found, text
    assert found[0].line == line
    for fragment in fragments:
        assert any(fragment in w.message for w in found), (fragment, found)
    assert str(found[0]).startswith(f"line {line}: ")


def test_per_output_losses_are_checked_per_output():
    found = warnings_of("x = input 4\na = dense 3 softmax (x)\nb = dense 1 sigmoid (x)\n"
                        "outputs a, b\nloss a=sparse_categorical_crossentropy "
                        "b=categorical_crossentropy")
    assert len(found) == 1 and "output `b`" in found[0].message


@pytest.mark.parametrize("text", [
    "input 4\ndense 3 softmax\nloss sparse_categorical_crossentropy",
    "input 4\ndense 3\nloss sparse_categorical_crossentropy from_logits=true",
    "input 4\ndense 1 sigmoid\nloss binary_crossentropy",
    "input 4\ndense 1\nloss mse",
    "input 4\ndense 3 softmax",
])
def test_sound_specs_are_quiet(text):
    assert warnings_of(text) == []


def test_warnings_do_not_stop_the_build():
    from nbkeras.modelbuild.build import build
    spec = parse("input 4\ndense 3 softmax\nloss mse")
    assert lint(spec)
    assert build(spec, "m").model.count_params() == 15


def test_unused_input_is_warned():
    found = warnings_of("a = input 4\nb = input 3\ndense 2 (a)")
    assert [w.line for w in found] == [2] and "input `b` is not used" in found[0].message
    assert warnings_of("a = input 4\nb = input 3\nc = concat (a, b)\ndense 2") == []


@pytest.mark.parametrize("text, line", [
    ("input 4\ndense 3\nloss sparse_categorical_crossentropy", 3),
    ("input 4\ndense 3 activation=linear\nloss categorical_crossentropy", 3),
    ("input 4\ndense 3 linear\ndropout 0.2\nloss categorical_crossentropy", 4),
    ("input 4\ndense 1\nloss binary_crossentropy from_logits=false", 3),
    ("x = input 4\npriority = dense 1 (x)\ndept = dense 4 softmax (x)\noutputs priority, dept\n"
     "loss priority: binary_crossentropy\nloss dept=categorical_crossentropy", 5),
    ("input 4x3\nout = td dense 3\nloss out: categorical_crossentropy", 3),
    ("input 4\ndense {3, 4}\nloss categorical_crossentropy", 3),
])
def test_cross_entropy_on_linear_logits_is_warned(text, line):
    found = [w for w in warnings_of(text) if "no activation" in w.message]
    assert len(found) == 1 and found[0].line == line
    assert "add `from_logits=true` to the loss" in found[0].message
    assert "an activation (`softmax` or `sigmoid`)" in found[0].message


@pytest.mark.parametrize("text", [
    "input 4\ndense 3\nloss categorical_crossentropy from_logits=true",
    "input 4\nd = dense 1\nloss d: binary_crossentropy from_logits=true",
    "input 4\ndense 3 relu\nloss categorical_crossentropy",  # odd, but not linear logits
    "input 4\ndense 3\nloss mse",
    "input 4\nlstm 3\nloss binary_crossentropy",  # tanh by default
])
def test_no_logits_warning_where_it_does_not_apply(text):
    assert not [w for w in warnings_of(text) if "no activation" in w.message]
