"""Property: whatever text a user types, the spec stages raise only SpecError."""

from hypothesis import HealthCheck, given, settings, strategies as st

from nbkeras import SpecError
from nbkeras.speclang.lint import lint
from nbkeras.speclang.nodes import ModelSpec
from nbkeras.modelbuild.catalog import parse_spec as parse
from spec_examples import EXAMPLES

SEEDS = [text for text, _ in EXAMPLES.values()] + [
    "q = input 5x8\nv = input ?x8\na = mha 2 4 (q, v)\nx = add (a, q) # c\n"
    "d = dense 3 softmax name='o' k=[1, [2, none]] \\\n  use_bias=FALSE\n"
    "optimizer sgd lr=1e-3\nloss d=sparse_categorical_crossentropy from_logits=true\n",
    "x = input 10x4\nm = input 10 dtype=bool\nh = bi merge_mode={sum, concat} lstm 8 (x, mask=m)\n"
    "repeat {1, 2} y = dense 32..64:16 {relu, gelu}\ndropout 0.1..0.5@rate\nd = td dense 3\n"
    "loss d: categorical_crossentropy from_logits=true\noptimizer adam lr=1e-4..1e-2:log\n",
]
PIECES = ["input", "dense", "conv2d", "x", "=", "(", ")", ",", "[", "]", "'", '"', "\\", "#",
          "\n", " ", "3x3", "?x8", "none", "-1", "1e-3", "relu", "outputs", "loss", "metrics",
          "optimizer", "loss_weights", "a=", "lr=", "true", "concat", "__import__", ";", "x",
          "\t", "\r", "0", "\u00e9", "\\\n", "{", "}", "{1, 2}", "..", "0.1..0.5", ":log",
          ":2", "@w", "repeat", "repeat 2", "bi", "td", "mask=", ":", "d:", "1..0"]

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def check(text, **kw):
    try:
        spec = parse(text, **kw)
    except SpecError as err:
        assert err.message
        assert err.line is None or err.line >= 1
        return None
    lint(spec)
    assert ModelSpec.from_config(spec.to_config()) == spec
    return spec


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)))
        if action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)):]
        else:
            text = text[:pos] + piece + text[pos + len(piece):]
    return text


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_raises_only_spec_errors(text):
    check(text)


@SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_random_token_soup_raises_only_spec_errors(text):
    check(text)


@SETTINGS
@given(mutated())
def test_mutated_specs_raise_only_spec_errors(text):
    check(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from([None, "4", "8x8x1", "?x8"]))
def test_mutated_specs_build_or_raise_spec_errors(text, input_shape):
    from nbkeras.modelbuild.build import build
    try:
        spec = parse(text) if input_shape is None else parse(text, input_shape=input_shape)
    except SpecError:
        return
    try:
        build(spec, "fuzz")
    except SpecError as err:
        assert err.message
