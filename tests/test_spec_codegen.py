"""`--code`: the generated Keras code builds the same model as the spec."""

import pytest

from nbkeras.modelbuild.build import build
from nbkeras.speclang.codegen import generate
from nbkeras.modelbuild.catalog import parse_spec as parse
from spec_examples import EXAMPLES

MORE = {
    "keywords": "inp = input 16x16x3 name=pixels\n"
                "c = conv2d 8 3x3 relu same strides=2 use_bias=false\n"
                "bn\nr = reshape [-1, 8]\nl = lstm 4 return_sequences=true\n"
                "gap = globalaveragepooling1d\nd = dense 3 softmax name='final'\n"
                "optimizer sgd lr=0.01 momentum=0.9\n"
                "loss sparse_categorical_crossentropy from_logits=false\nmetrics accuracy auc",
    "attention": "q = input 5x8\nv = input 7x8\na = mha 2 4 (q, v)\nx = add (a, q)\n"
                 "class = globalaveragepooling1d\noutputs class",
    "clashing_names": "input 4\ndense = dense 3\ndense 2\ndense_2 = dense 2\ndense 1",
    "rebound_output": "x = input 4\nx = dense 3\nfirst = dense 2\nx = dense 5 (x)\noutputs first, x\n"
                      "loss first=mse x_3=mae",
    "wrappers": "x = input 5x8\nm = input 5 dtype=bool\n"
                "h = bi merge_mode=sum lstm 4 return_sequences=true (x, mask=m)\n"
                "t = td dense 3\ng = gru 2 (t, mask=m)\nd = dense 1\n"
                "loss d: binary_crossentropy from_logits=true",
    "repeat_and_spaces": "x = input 4\nrepeat {2, 3} h = dense 16..64:16 relu\nrepeat 2 dense 8\n"
                         "dropout 0.1..0.5\ndense {3, 5}\noptimizer adam lr=1e-4..1e-2:log",
}


def describe(model):
    return [(type(l).__name__, l.name, str(l.output.shape), l.count_params())
            for l in model.layers]


def run_code(code):
    namespace = {}
    exec(compile(code, "<generated>", "exec"), namespace)
    return namespace["model"]


@pytest.mark.parametrize("name, text", [(k, v[0]) for k, v in EXAMPLES.items()]
                         + list(MORE.items()))
def test_generated_code_builds_the_same_model(name, text):
    spec = parse(text)
    result = build(spec, name)
    code = generate(spec, name, result)
    assert code.startswith("import keras\nfrom keras import layers\n")
    model = run_code(code)
    spec_names = describe(result.model)
    code_names = describe(model)
    # bound names and name= are spelled out; automatic names may differ in their number
    assert [(k, s, p) for k, _, s, p in spec_names] == [(k, s, p) for k, _, s, p in code_names]
    for (_, a, _, _), (_, b, _, _) in zip(spec_names, code_names):
        assert a == b or a.rstrip("0123456789_") == b.rstrip("0123456789_")
    assert model.count_params() == result.model.count_params()
    assert model.name == name and model.compiled
    strip = lambda names: [n.rstrip("0123456789_") for n in names]  # noqa: E731
    assert strip(model.output_names) == strip(result.model.output_names)


def test_code_spells_out_arguments_and_compile():
    spec = parse(MORE["keywords"])
    code = generate(spec, "m", build(spec, "m", compile=False))
    assert "layers.Conv2D(8, (3, 3), activation='relu', padding='same'" in code
    assert "keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)" in code
    assert "keras.losses.SparseCategoricalCrossentropy(from_logits=False)" in code
    assert "metrics=['accuracy', 'auc']" in code


def test_code_writes_by_position_only_what_the_spec_gave_by_position():
    """`dense units=8 relu` stays a keyword; a value after a keyword-given earlier
    parameter is written by name (a bare value there would fill the wrong slot)."""
    spec = parse("input 4\na = dense units=8 relu\nc = dense 2 use_bias=false")
    code = generate(spec, "m", build(spec, "m", compile=False), compile=False)
    assert "layers.Dense(units=8, activation='relu', name='a')" in code
    assert "layers.Dense(2, use_bias=False, name='c')" in code
    assert run_code(code).count_params() == 4 * 8 + 8 + 8 * 2


def test_python_keywords_as_names_become_valid_variables():
    spec = parse(MORE["attention"])
    code = generate(spec, "m", build(spec, "m", compile=False))
    assert "class_ = layers.GlobalAveragePooling1D(name='class')(x)" in code


def test_code_without_compile():
    spec = parse("input 4\ndense 3")
    code = generate(spec, "m", build(spec, "m", compile=False), compile=False)
    assert "compile" not in code and not run_code(code).compiled


def test_values_are_written_as_literals_not_pasted():
    spec = parse("input 4\nd = dense 3 name='x\\'); import os; (\\''")
    code = generate(spec, "m", build(spec, "m", compile=False), compile=False)
    model = run_code(code)
    assert model.layers[-1].name == "x'); import os; ('"


def test_wrappers_and_keyword_sources_in_code():
    spec = parse(MORE["wrappers"])
    code = generate(spec, "m", build(spec, "m"))
    # positional values as the spec gave them, as the language doc writes them
    assert ("h = layers.Bidirectional(layers.LSTM(4, return_sequences=True), "
            "merge_mode='sum', name='h')(x, mask=m)") in code
    assert "t = layers.TimeDistributed(layers.Dense(3), name='t')(h)" in code
    assert "g = layers.GRU(2, name='g')(t, mask=m)" in code
    assert "'d': keras.losses.BinaryCrossentropy(from_logits=True)" in code


def test_code_of_a_spec_with_spaces_is_the_model_built():
    spec = parse(MORE["repeat_and_spaces"])
    default = generate(spec, "m", build(spec, "m"))
    assert "# search spaces at: repeat.count=2, h.units=16" in default
    assert default.count("layers.Dense(16") == 2 and "Dropout(0.1)" in default
    values = {"repeat.count": 3, "h.units": 48, "dense_2.units": 5}
    result = build(spec, "m", values=values)
    code = generate(spec, "m", result)
    assert code.count("layers.Dense(48") == 3 and "layers.Dense(5)" in code
    assert run_code(code).count_params() == result.model.count_params()
