"""`%fit NAME "photos/"`: a folder of class subfolders, read by Keras' own
`image_dataset_from_directory`; the class names follow the model into
`%predict`, `%evaluate`, `%export` and the registry (issue 20)."""

import pathlib

import numpy as np
import pytest
from PIL import Image

import nbkeras
from nbkeras.errors import UsageError

CLASSES = ["circle", "square", "stripe"]
SPEC = "input 16x16x3\nrescaling 0.00392\nflatten\ndense 16 relu\ndense 3 softmax"


def _folder(root: pathlib.Path, n: int = 12, seed: int = 0) -> pathlib.Path:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = (rng.random((16, 16, 3)) * 60 + c * 90).astype("uint8")
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def photos(tmp_path, ip):
    ip.user_ns["photos"] = str(_folder(tmp_path / "photos"))
    ip.run_cell_magic("model", "m --seed 0", SPEC)
    return tmp_path / "photos"


def test_fit_reads_the_folder_as_keras_does_and_says_what_it_found(ip, photos, capsys):
    import keras
    ip.run_line_magic("fit", "m photos -e 2 -b 8 --val-split 0.25 --seed 3 --quiet")
    out = capsys.readouterr().out
    assert (f"`{photos}`: 36 images in 3 classes (circle, square, stripe), 27 for training, "
            "9 for validation") in out
    run = nbkeras.runs("m")[0]
    assert run["options"]["class_names"] == CLASSES
    # the reference: Keras' own reader with the same seed gives the same validation
    # images, and the run's last val_loss is the kept model's loss on them
    _, val = keras.utils.image_dataset_from_directory(
        str(photos), batch_size=8, image_size=(16, 16), validation_split=0.25,
        subset="both", seed=3, verbose=False)
    model = ip.user_ns["m"]
    expected = model.evaluate(val, verbose=0, return_dict=True)
    assert run["epochs"][-1]["val_loss"] == pytest.approx(expected["loss"], rel=1e-5)


def test_bad_folders_are_said_in_one_line(ip, photos, tmp_path, capsys):
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), "uint8")).save(tmp_path / "flat" / "a.png")
    with pytest.raises(UsageError, match="holds 1 images but no class subfolders"):
        ip.run_line_magic("fit", f"m '{tmp_path / 'flat'}' -e 1 --quiet")
    with pytest.raises(UsageError, match="there is no folder"):
        ip.run_line_magic("fit", f"m '{tmp_path / 'nope'}' -e 1 --quiet")
    ip.user_ns["y"] = np.zeros(36)
    with pytest.raises(UsageError, match="class subfolders are the labels: drop `y`"):
        ip.run_line_magic("fit", "m photos y -e 1 --quiet")
    # a tiny class and an unreadable file: warned of, the file left out, training goes on
    (photos / "dot").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), "uint8")).save(photos / "dot" / "0.png")
    (photos / "square" / "broken.png").write_bytes(b"not a png")
    ip.run_cell_magic("model", "m4 --seed 0", SPEC.replace("dense 3", "dense 4"))
    ip.run_line_magic("fit", "m4 photos -e 1 -b 8 --quiet")
    out = capsys.readouterr().out
    assert "a class has very few images: dot (1)" in out
    assert "1 of 38 files cannot be read as images (square/broken.png): left out" in out
    assert nbkeras.runs("m4")[0]["status"] == "completed"


def test_predict_and_evaluate_name_the_classes(ip, photos, tmp_path):
    import keras
    ip.run_line_magic("fit", "m photos -e 3 -b 8 --seed 1 --quiet")
    model = ip.user_ns["m"]
    test = _folder(tmp_path / "test", n=4, seed=9)
    frame = ip.run_line_magic("predict", f"m '{test / 'square' / '0.png'}'")
    image = keras.utils.img_to_array(keras.utils.load_img(test / "square" / "0.png",
                                                          target_size=(16, 16)))
    probs = model.predict(image[None], verbose=0)[0]
    assert list(frame.columns) == ["file", "class", "probability"]
    assert frame.iloc[0]["class"] == CLASSES[int(probs.argmax())]
    assert frame.iloc[0]["probability"] == pytest.approx(float(probs.max()), abs=1e-4)
    assert len(ip.run_line_magic("predict", f"m '{test}'")) == 12

    result = ip.run_line_magic("evaluate", f"m '{test}'")
    assert [r["class"] for r in result.per_class] == CLASSES
    axes = result.figure.axes[0]  # the confusion matrix is labelled with them
    assert [t.get_text() for t in axes.get_xticklabels()] == CLASSES
    x = np.stack([keras.utils.img_to_array(keras.utils.load_img(f, target_size=(16, 16)))
                  for c in CLASSES for f in sorted((test / c).glob("*.png"))])
    y = np.repeat(np.arange(3), 4)
    expected = model.evaluate(x, y, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    assert result["loss"] == pytest.approx(expected["loss"], rel=1e-5)


def test_show_titles_the_images_with_class_names(ip, photos, monkeypatch):
    import nbkeras.results.common as common
    figures = []
    monkeypatch.setattr(common, "show_figure", lambda fig: figures.append(fig))
    ip.run_line_magic("fit", "m photos -e 1 -b 8 --quiet")
    ip.run_line_magic("predict", f"m '{photos / 'circle'}' --show 4")
    titles = [ax.get_title() for ax in figures[0].axes if ax.get_title()]
    assert len(titles) == 4 and all(t.split(" · ")[0] in CLASSES for t in titles)


def test_export_keeps_the_class_names_and_from_reads_them_back(ip, photos, tmp_path, capsys):
    ip.run_line_magic("fit", "m photos -e 1 -b 8 --quiet")
    ip.run_line_magic("export", f"m {tmp_path / 'm.keras'}")
    assert "its 3 class names in m.classes.json beside it" in capsys.readouterr().out
    ip.run_line_magic("model", f"back --from {tmp_path / 'm.keras'}")
    frame = ip.run_line_magic("predict", f"back '{photos / 'stripe' / '0.png'}'")
    assert frame.iloc[0]["class"] in CLASSES
    from nbkeras.state import get_info
    assert get_info(ip.user_ns["back"]).extra["class_names"] == CLASSES
