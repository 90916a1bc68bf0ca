"""`%%model` in a shell: binds the name, shows a summary, options, short errors."""

import keras
import numpy as np
import pytest

from nbkeras import SpecError
from nbkeras.registry import get_registry
from nbkeras.state import get_info
from nbkeras.modelbuild.build import build
from nbkeras.modelbuild.catalog import parse_spec as parse

MNIST = """%%model mnist{opts}
input 28x28
flatten
dense 16 relu
dense 10 softmax
"""


def cell(opts=""):
    return MNIST.format(opts=opts)


def test_binds_the_compiled_model_and_shows_a_summary(ip, run, capsys):
    run(cell())
    out = capsys.readouterr().out
    model = ip.user_ns["mnist"]
    assert isinstance(model, keras.Model) and model.compiled
    assert "No loss given" in out and "sparse or one-hot" in out
    assert "Model: mnist" in out and "Flatten" in out and "(None, 784)" in out
    assert "Total params: 12,730" in out
    info = get_info(model)
    assert info.name == "mnist" and "dense 10 softmax" in info.spec_text
    assert info.compile_kwargs == {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                                   "metrics": ["accuracy"]}
    assert list(info.deferred_losses.values()) == ["categorical"]
    versions = get_registry().model_versions("mnist")
    assert versions and versions[0]["id"] == info.version_id
    assert versions[0]["params"] == 12730


def test_summary_has_an_html_table(run):
    from nbkeras.notebook.summary import ModelSummary
    run(cell())
    html = ModelSummary.of(run("mnist"))._repr_html_()
    assert "<table>" in html and "<td>Flatten</td>" in html and "12,730" in html


def test_rerun_replaces_the_model_and_records_a_version(ip, run):
    run(cell())
    first = ip.user_ns["mnist"]
    run(cell().replace("dense 16", "dense 32"))
    assert ip.user_ns["mnist"] is not first
    assert len(get_registry().model_versions("mnist")) == 2


def test_code_option_shows_runnable_code(ip, run, capsys):
    run(cell(" --code"))
    out = capsys.readouterr().out
    code = out[out.index("import keras"):]
    namespace = {}
    exec(code, namespace)
    assert namespace["model"].count_params() == ip.user_ns["mnist"].count_params()


def test_seed_gives_reproducible_weights(ip, run):
    run(cell(" --seed 3"))
    a = [w.copy() for w in ip.user_ns["mnist"].get_weights()]
    run(cell(" --seed 3"))
    b = ip.user_ns["mnist"].get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    run(cell(" --seed 4"))
    c = ip.user_ns["mnist"].get_weights()
    assert not np.array_equal(a[2], c[2])


def test_no_compile(ip, run, capsys):
    run(cell(" --no-compile"))
    assert not ip.user_ns["mnist"].compiled
    assert "No loss given" not in capsys.readouterr().out


def test_input_option(ip, run):
    run("%%model m --input 8\ndense 3\n")
    assert tuple(ip.user_ns["m"].input_shape) == (None, 8)


def test_lint_warning_is_shown_and_the_model_built(ip, run, capsys):
    run("%%model m\ninput 4\ndense 3 softmax\nloss mse\n")
    err = capsys.readouterr().err
    assert "line 4:" in err and "a softmax" in err   # `loss mse`: the cell's 4th line
    assert "m" in ip.user_ns


def test_from_loads_a_saved_model(ip, run, tmp_path, capsys):
    run(cell())
    path = tmp_path / "saved.keras"
    ip.user_ns["mnist"].save(path)
    run(f"%model again --from {path}")  # the line form: IPython refuses empty cell bodies
    run(f"%%model again --from {path}\n# a comment-only body is empty too\n")
    model = ip.user_ns["again"]
    assert model.count_params() == 12730
    assert "Total params: 12,730" in capsys.readouterr().out
    versions = get_registry().model_versions("again")
    assert versions[0]["source"] == "file"
    assert get_info(model).version_id == versions[0]["id"]


@pytest.mark.parametrize("bad", ["dens 3", "dense 3 (y)"])  # found by the builder, the parser
def test_a_spec_error_names_the_line_the_editor_shows(ip, bad):
    """The `%%model` line is the cell's line 1, as in the editor's gutter and
    in Python's own errors in a cell; the Python API counts its text's lines."""
    cell = f"%%model m\n# a comment\ninput 4\n\ndense 3 relu\n{bad}\n"
    error = ip.run_cell(cell).error_in_exec
    assert isinstance(error, SpecError)
    assert error.line == cell.splitlines().index(bad) + 1 == 6
    assert str(error).startswith("line 6, column ")
    with pytest.raises(SpecError) as direct:
        build(parse(cell.split("\n", 1)[1]), "m")
    assert direct.value.line == 5


@pytest.mark.parametrize("text, fragment", [
    ("%model m --from /no/such/file.keras", "no such file"),
    ("%%model m --from /no/such/file.keras\n#\n", "no such file"),
    ("%%model m --from x.keras\ninput 4\ndense 3\n", "leave the cell body empty"),
    ("%model m", "give the spec as the cell body"),
    ("%%model 2m\ninput 4\ndense 3\n", "not a Python name"),
    ("%%model class\ninput 4\ndense 3\n", "not a Python name"),
    ("%%model m\ninput 4\ndens 3\n", "line 3, column 1: unknown layer kind `dens` (did you mean "
                                     "`Dense`?)"),
    ("%%model m\ninput 4\ndense 3 (y)\n", "unknown name `y`"),
    ("%%model m\nx = input 4\ny = input 3\nadd (x, y)\n", "line 4, column 1"),
])
def test_errors_are_short_messages(ip, capsys, text, fragment):
    result = ip.run_cell(text)
    assert isinstance(result.error_in_exec, SpecError)
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "SpecError: " in shown and fragment in shown
    assert "Traceback" not in shown and "File " not in shown
    assert "m" not in ip.user_ns or not isinstance(ip.user_ns.get("m"), keras.Model)


TUNABLE = """%%model tuned{opts}
input 8
repeat {1, 2} dense 32..128:32 relu
dropout 0.1..0.5@rate
dense 3 softmax
optimizer adam lr=1e-4..1e-2:log
"""


def test_spaces_build_the_default_say_so_in_one_line_and_are_listed(ip, run, capsys):
    run(TUNABLE.replace("{opts}", ""))
    out = capsys.readouterr().out
    model = ip.user_ns["tuned"]
    assert model.layers[1].units == 32 and len(model.layers) == 4
    notes = [line for line in out.splitlines() if "search space" in line and "%tune" in line]
    assert len(notes) == 1 and "4 search spaces" in notes[0]
    assert "Search spaces (4" in out
    for name, domain in [("repeat.count", "{1, 2}"), ("dense.units", "32..128:32"),
                         ("rate", "0.1..0.5"), ("optimizer.learning_rate", "0.0001..0.01:log")]:
        row = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert domain in row
    html = __import__("nbkeras.notebook.summary", fromlist=["x"]).ModelSummary.of(
        model, [])._repr_html_()
    assert "Search spaces" not in html


def test_one_space_is_named_in_the_singular(run, capsys):
    run("%%model one\ninput 4\ndense {8, 16} relu\ndense 1\n")
    note = next(line for line in capsys.readouterr().out.splitlines() if "%tune" in line)
    assert "holds 1 search space, built at its default" in note
    assert note.endswith("`%tune one ...` explores it.")


def test_spaces_code_shows_the_default_model(ip, run, capsys):
    run(TUNABLE.replace("{opts}", " --code"))
    out = capsys.readouterr().out
    code = out[out.index("import keras"):]
    assert "repeat.count=1" in code and "layers.Dense(32" in code
    namespace = {}
    exec(code, namespace)
    assert namespace["model"].count_params() == ip.user_ns["tuned"].count_params()


def test_model_code_line_shows_the_bound_model_at_its_space_values(ip, run, capsys):
    """`%model NAME --code` (no body): after `%tune`, the code at the best values."""
    from nbkeras.state import get_info
    run(TUNABLE.replace("{opts}", ""))
    get_info(ip.user_ns["tuned"]).extra["space_values"] = {
        "repeat.count": 2, "dense.units": 96, "rate": 0.25,
        "optimizer.learning_rate": 0.0031622776601683794}  # as Optuna's sampler gives it
    capsys.readouterr()
    run("%model tuned --code")
    code = capsys.readouterr().out
    assert "repeat.count=2" in code and "layers.Dense(96" in code
    comment = next(line for line in code.splitlines() if line.startswith("# search spaces at:"))
    assert comment == ("# search spaces at: repeat.count=2, dense.units=96, rate=0.2500, "
                       "optimizer.learning_rate=0.003162")  # as the tables show them
    assert "learning_rate=0.0031622776601683794" in code     # the code keeps the exact value
    namespace = {}
    exec(code[code.index("import keras"):], namespace)
    assert len(namespace["model"].layers) == len(ip.user_ns["tuned"].layers) + 1  # repeat 2


def test_model_code_line_needs_a_model_built_from_a_spec(ip, run):
    with pytest.raises(SpecError, match="is no model"):
        run("%model nothing --code")
    ip.user_ns["plain"] = 3
    with pytest.raises(SpecError, match="is a int"):
        run("%model plain --code")


def test_model_line_rebuilds_the_bound_model_fresh_at_its_space_values(ip, run, capsys):
    """`%model NAME` (no body) after `%tune`: the best configuration, fresh
    weights (what `%fit NAME X Y --cv 5` needs)."""
    from nbkeras.state import get_info
    run(TUNABLE.replace("{opts}", ""))
    old = ip.user_ns["tuned"]
    get_info(old).extra["space_values"] = {
        "repeat.count": 2, "dense.units": 96, "rate": 0.25, "optimizer.learning_rate": 0.003}
    capsys.readouterr()
    run("%model tuned --seed 1")
    out = capsys.readouterr().out
    new = ip.user_ns["tuned"]
    assert new is not old and new.layers[1].units == 96 and len(new.layers) == 5
    assert "fresh weights at the values it held" in out and "dense.units=96" in out
    assert get_info(new).extra["space_values"]["rate"] == 0.25
    assert float(new.optimizer.learning_rate.numpy()) == pytest.approx(0.003)


def test_a_cell_without_spaces_says_nothing_about_them(run, capsys):
    run(cell())
    out = capsys.readouterr().out
    assert "search space" not in out and "Search spaces" not in out


def test_summary_html_lists_the_spaces():
    from nbkeras.modelbuild.build import build
    from nbkeras.notebook.summary import ModelSummary
    from nbkeras.modelbuild.catalog import parse_spec as parse
    spec = parse(TUNABLE.split("\n", 1)[1])
    result = build(spec, "tuned", values={"dense.units": 64})
    html = ModelSummary.of(result.model, spec.spaces, result.values)._repr_html_()
    assert "<td>dense.units</td><td><code>32..128:32</code></td><td>64</td>" in html


def test_wrapper_and_mask_cell(ip, run, capsys):
    run("%%model seq\nx = input 5x3\nm = input 5 dtype=bool\n"
        "h = bidirectional gru 4 (x, mask=m)\ndense 1 sigmoid\n")
    assert "h (Bidirectional)" in "\n".join(
        f"{l.name} ({type(l).__name__})" for l in ip.user_ns["seq"].layers)


def test_linear_logits_lint_in_a_cell(ip, run, capsys):
    run("%%model m\ninput 4\ndense 3\nloss sparse_categorical_crossentropy\n")
    err = capsys.readouterr().err
    assert "line 4:" in err and "from_logits=true" in err and "no activation" in err
