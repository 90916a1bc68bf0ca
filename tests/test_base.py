"""`base MODEL ...` (spec version 3, issue 20): a pretrained network inside the
model. Offline throughout: applications are built with `weights=none` or a
weights file the test writes, and `weights=imagenet` is checked to reach
Keras' own download (stubbed) without fetching anything. The oracles are
Keras itself: its parameter counts, its `preprocess_input`, the weights it
saved."""

import os

import numpy as np
import pytest

from nbkeras.errors import SpecError
from nbkeras.modelbuild.build import build
from nbkeras.modelbuild.catalog import parse_spec
from nbkeras.speclang.codegen import generate
from nbkeras.speclang.lint import lint


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A small convolutional model with BatchNormalization, saved as `encoder.keras`
    (the spec document's version 3 example), with a layer named `feat`."""
    import keras
    keras.utils.set_random_seed(0)
    spec = parse_spec("input 8x8x1\nconv 8 3x3 relu same\nbn\nmaxpool\nconv 8 3x3 relu same\n"
                      "feat = gap\ndense 5 softmax")
    model = build(spec, "digits_0to4").model
    path = tmp_path_factory.mktemp("enc") / "encoder.keras"
    model.save(path)
    return path


def _spec(text):
    return parse_spec(text, first_line=2)


def test_an_application_builds_frozen_as_one_row_with_keras_counts():
    import keras
    from nbkeras.notebook.summary import ModelSummary
    r = build(_spec("input 32x32x3\nbase mobilenet_v3_small weights=none\ngap\ndense 4 softmax"),
              "m")
    base = r.model.get_layer("mobilenet_v3_small")
    assert isinstance(base, keras.Model) and not base.trainable
    ref = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False,
                                              weights=None)
    assert base.count_params() == ref.count_params()
    summary = ModelSummary.of(r.model)
    rows = [row for row in summary.rows if row[0] == "mobilenet_v3_small"]
    assert len(rows) == 1 and rows[0][1] == "base, frozen" and rows[0][3] == ref.count_params()
    assert summary.total == r.model.count_params()
    assert summary.trainable == _count(r.model.trainable_weights) == 576 * 4 + 4
    assert f"frozen {summary.total - summary.trainable:,}" in summary.totals()


@pytest.mark.parametrize("app,module", [("resnet50", "resnet50"), ("mobilenet_v2", "mobilenet_v2"),
                                        ("densenet121", "densenet")])
def test_the_applications_own_preprocessing_is_inside_the_model(app, module):
    """caffe (RGB->BGR, means), tf (-1..1) and torch (ImageNet mean/std) modes, each
    as built-in layers equal to keras.applications.<module>.preprocess_input."""
    import keras
    r = build(_spec(f"input 32x32x3\nbase {app} weights=none\ngap\ndense 2 softmax"), "m")
    pre = r.bases[1].pre
    assert pre is not None and pre.name == f"{app}_preprocess" and not pre.trainable_weights
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    ref = getattr(keras.applications, module).preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(pre(x)), ref, rtol=1e-5, atol=1e-4)
    assert r.bases[1].pixels
    off = build(_spec(f"input 32x32x3\nbase {app} weights=none preprocess=false\ngap\ndense 2"),
                "m")
    assert off.bases[1].pre is None and not off.bases[1].pixels


def test_a_weights_file_is_loaded(tmp_path):
    import keras
    keras.utils.set_random_seed(1)
    ref = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False,
                                              weights=None)
    path = tmp_path / "a.weights.h5"
    ref.save_weights(path)
    r = build(_spec(f'input 32x32x3\nbase mobilenet_v3_small weights="{path}"\ngap\ndense 2'), "m")
    got = r.model.get_layer("mobilenet_v3_small").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(got, ref.get_weights()))
    with pytest.raises(SpecError) as err:
        build(_spec('input 32x32x3\nbase mobilenet_v3_small weights="nope.weights.h5"'), "m")
    assert err.value.line == 3 and "no file" in str(err.value) and "weights=none" in str(err.value)


def test_imagenet_weights_go_to_keras_and_a_missing_file_says_which(monkeypatch, tmp_path):
    import keras
    from keras.src.utils import file_utils
    asked = []

    def offline(fname, origin=None, **kwargs):
        asked.append((fname, origin))
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service "
                        "not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(SpecError) as err:
        build(_spec("input 32x32x3\nbase mobilenet_v3_small\ngap\ndense 2"), "m")
    fname = asked[0][0]
    assert fname.endswith(".h5") and "no_top" in fname  # Keras' own file, include_top=false
    message = str(err.value)
    assert err.value.line == 3 and fname in message and "weights=" in message
    assert os.path.join(".keras", "models", fname) in message
    # with the file in Keras' cache (here: handed back by the stub) it loads as Keras would
    keras.utils.set_random_seed(2)
    ref = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False,
                                              weights=None)
    cached = tmp_path / "cached.weights.h5"
    ref.save_weights(cached)
    monkeypatch.setattr(file_utils, "get_file", lambda fname, origin=None, **kw: str(cached))
    r = build(_spec("input 32x32x3\nbase mobilenet_v3_small weights=imagenet\ngap\ndense 2"), "m")
    got = r.model.get_layer("mobilenet_v3_small").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(got, ref.get_weights()))


def test_a_saved_model_cut_at_a_named_layer(encoder, monkeypatch):
    import keras
    monkeypatch.chdir(encoder.parent)
    r = build(_spec('input 8x8x1\nbase "encoder.keras" output=feat\ndense 32 relu\n'
                    "dense 5 softmax"), "digits_5to9")
    base = r.model.get_layer("encoder")
    saved = keras.saving.load_model(encoder)
    assert base.output.shape[-1] == 8 and base.count_params() == saved.count_params() - 45
    assert all(np.array_equal(a, b) for a, b in zip(base.get_weights(), saved.get_weights()))
    assert not base.trainable and r.bases[1].pixels is False


@pytest.mark.parametrize("text,where,words", [
    ("base mobilenet_v3_smal weights=none", 3, ["did you mean", "MobileNetV3Small"]),
    ('base "missing.keras"', 3, ["no file", "%export"]),
    ('base "encoder.keras" output=fet', 3, ["no layer `fet`", "feat"]),
    ('base "encoder.keras" weights=none', 3, ["output=LAYER"]),
    ("base resnet50 weights=none", 3, ["failed in Keras", "32"]),  # 8x8 is too small
    ("base mobilenet_v2", 3, ["3 channels"]),  # checked before any download
    ("base", 3, ["needs a model"]),
    ("base resnet50 weights=none floppy", 3, ["frozen` or `trainable"]),
    ("base resnet50 weights={none, imagenet}", 3, ["no search space"]),
    ("repeat 2 base resnet50", 3, ["cannot be repeated"]),
])
def test_mistakes_are_spec_errors_on_the_line(encoder, monkeypatch, text, where, words):
    monkeypatch.chdir(encoder.parent)
    with pytest.raises(SpecError) as err:
        build(_spec(f"input 8x8x1\n{text}\ndense 2"), "m")
    assert err.value.line == where
    for word in words:
        assert word in str(err.value), str(err.value)


def test_code_writes_the_same_model(encoder, monkeypatch):
    monkeypatch.chdir(encoder.parent)
    for text in ("input 32x32x3\nrandom_flip horizontal\nbase resnet50 weights=none\ngap\n"
                 "dense 3 softmax",
                 'input 8x8x1\nb = base "encoder.keras" output=feat trainable\ndense 5 softmax'):
        spec = _spec(text)
        r = build(spec, "m")
        ns = {}
        exec(generate(spec, "m", r), ns)
        made = ns["model"]
        assert made.count_params() == r.model.count_params()
        assert _count(made.trainable_weights) == _count(r.model.trainable_weights)
        assert [l.trainable for l in made.layers] == [l.trainable for l in r.model.layers]


def test_a_model_with_a_base_saves_and_loads_without_nbkeras_layers(tmp_path):
    import keras
    r = build(_spec("input 32x32x3\nbase resnet50 weights=none\ngap\ndense 2 softmax"), "m")
    path = tmp_path / "m.keras"
    r.model.save(path)
    back = keras.saving.load_model(path)  # built-in layers only: no custom objects
    x = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(r.model(x)), rtol=1e-5,
                               atol=1e-6)


def test_augmentation_layers_build_and_act_only_in_training():
    r = build(_spec("input 16x16x3\nrandom_flip horizontal\nrandom_rotation 0.1\n"
                    "random_zoom 0.1\nflatten\ndense 2"), "m")
    aug = [l for l in r.model.layers if l.name.startswith("random")]
    assert len(aug) == 3
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    h = x
    for layer in aug:
        np.testing.assert_array_equal(np.asarray(layer(h, training=False)), h)
    assert not np.allclose(np.asarray(aug[1](x, training=True)), x)


def test_lint_warns_on_a_trainable_base_at_adams_default_rate():
    spec = _spec("input 32x32x3\nbase resnet50 weights=none trainable\ngap\ndense 2 softmax")
    warnings = [w for w in lint(spec) if "pretrained" in w.message]
    assert len(warnings) == 1 and warnings[0].line == 3 and "--fine-tune" in warnings[0].message
    calm = _spec("input 32x32x3\nbase resnet50 weights=none trainable\ngap\ndense 2 softmax\n"
                 "optimizer adam learning_rate=1e-5")
    assert not [w for w in lint(calm) if "pretrained" in w.message]
    frozen = _spec("input 32x32x3\nbase resnet50 weights=none\ngap\ndense 2 softmax")
    assert not [w for w in lint(frozen) if "pretrained" in w.message]


def _fit_ready(ip, encoder, monkeypatch):
    monkeypatch.chdir(encoder.parent)
    rng = np.random.default_rng(0)
    ip.user_ns.update(x=rng.uniform(0, 1, (48, 8, 8, 1)).astype("float32"),
                      y=rng.integers(0, 5, 48))
    ip.run_cell_magic("model", "t --seed 0", 'input 8x8x1\nbase "encoder.keras" output=feat\n'
                      "dense 16 relu\ndense 5 softmax")
    return ip.user_ns["t"]


def test_fit_trains_only_the_head_and_the_frozen_bn_statistics_hold(ip, encoder, monkeypatch):
    model = _fit_ready(ip, encoder, monkeypatch)
    base = model.get_layer("encoder")
    before = [np.array(w) for w in base.weights]  # kernels and BN moving statistics
    head = [np.array(w) for w in model.layers[-1].weights]
    ip.run_line_magic("fit", "t x y -e 2 -b 16 --quiet")
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(before, base.weights))
    assert not all(np.array_equal(a, np.array(b)) for a, b in zip(head, model.layers[-1].weights))


def test_fine_tune_of_a_spec_base_unfreezes_the_top_layers_and_keeps_bn_stats(ip, encoder,
                                                                           monkeypatch, capsys):
    model = _fit_ready(ip, encoder, monkeypatch)
    base = model.get_layer("encoder")
    bn = base.get_layer("batch_normalization")
    stats = [np.array(bn.moving_mean), np.array(bn.moving_variance)]
    ip.run_line_magic("fit", "t x y -e 1 -b 16 --quiet --fine-tune 2 --fine-tune-epochs 1 "
                             "--fine-tune-lr 1e-4")
    layers = [l for l in base.layers if type(l).__name__ != "InputLayer"]
    trainable = [l.name for l in layers if l.trainable]
    assert trainable == [l.name for l in layers if l is not bn][-2:] == ["conv2d_1", "feat"]
    assert not bn.trainable and not base.get_layer("conv2d").trainable
    np.testing.assert_array_equal(np.array(bn.moving_mean), stats[0])
    np.testing.assert_array_equal(np.array(bn.moving_variance), stats[1])
    assert abs(float(np.array(model.optimizer.learning_rate)) - 1e-4) < 1e-9


def test_fit_warns_when_inputs_scaled_to_0_1_meet_an_application(ip, capsys):
    rng = np.random.default_rng(0)
    ip.user_ns.update(x=rng.uniform(0, 1, (8, 32, 32, 3)).astype("float32"),
                      y=rng.integers(0, 2, 8))
    ip.run_cell_magic("model", "p", "input 32x32x3\nbase mobilenet_v2 weights=none alpha=0.35\n"
                      "gap\ndense 2 softmax")
    ip.run_line_magic("fit", "p x y -e 1 -b 8 --quiet")
    out = capsys.readouterr().out
    assert "0-255 pixels" in out and "line 3" in out and "preprocess=false" in out
    ip.user_ns["x"] = ip.user_ns["x"] * 255
    ip.run_line_magic("fit", "p x y -e 1 -b 8 --quiet")
    assert "0-255 pixels" not in capsys.readouterr().out


def test_fine_tune_20_unfreezes_the_top_20_non_bn_layers_of_an_application():
    import keras
    from nbkeras.train.finetune import frozen_bases, unfreeze
    r = build(_spec("input 32x32x3\nbase mobilenet_v3_small weights=none\ngap\ndense 2 softmax"),
              "m")
    base = r.model.get_layer("mobilenet_v3_small")
    assert frozen_bases(r.model) == [base]
    names = unfreeze(r.model, 20)
    layers = [l for l in base.layers if not isinstance(l, (keras.layers.InputLayer,))]
    top = [l.name for l in layers if not isinstance(l, keras.layers.BatchNormalization)][-20:]
    assert names == top and [l.name for l in layers if l.trainable] == top
    assert not any(l.trainable for l in base.layers if isinstance(l, keras.layers.BatchNormalization))


def test_a_misspelt_base_statement_suggests_base():
    with pytest.raises(SpecError) as err:
        build(_spec("input 32x32x3\nbsae resnet50"), "m")
    assert "did you mean `base`" in str(err.value) and err.value.line == 3
