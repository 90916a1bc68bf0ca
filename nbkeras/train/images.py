"""Folders of images as `%fit`, `%evaluate` and `%predict` data.

`%fit NAME "photos/"`: a string (or `pathlib.Path`) naming a folder of
class subfolders is read with Keras' own `image_dataset_from_directory`,
at the model's input height, width and channels, batched with `-b`,
shuffled, with `--val-split` and `--seed` passed to Keras (`subset="both"`).
The class names are the subfolder names, in Keras' order (sorted); `%fit`
remembers them with the model (`ModelInfo.extra["class_names"]`) and the
registry run. Before anything trains, the folder is checked and what was
found is said in one line ("1,204 images in 5 classes, 961 for training,
243 for validation"); a class with very few images and files that cannot
be read as images are warned of, and a folder with no class subfolders is
refused in one line.

`%predict NAME "photo.jpg"` (or a folder of images) and `%evaluate NAME
"test/"` read images the same way (`load_images`), so a model sees at
prediction what it saw in training.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import DataError, UsageError

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras' reader decodes
FEW_IMAGES = 10  # a class with fewer is warned of
_CHANNELS = {1: "grayscale", 3: "rgb", 4: "rgba"}


def as_path(value) -> Optional[pathlib.Path]:
    """The path a `%fit`/`%predict` argument names (a str or PathLike), or None."""
    if isinstance(value, (str, os.PathLike)):
        return pathlib.Path(os.path.expanduser(os.fspath(value)))
    return None


def _images_in(folder: pathlib.Path) -> List[pathlib.Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def _unreadable(files: Sequence[pathlib.Path]) -> List[pathlib.Path]:
    from PIL import Image
    bad = []
    for path in files:
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception:  # noqa: BLE001 - any failure: Keras would fail on it too
            bad.append(path)
    return bad


def image_size(model, what: str) -> Tuple[Tuple[int, int], str]:
    """((height, width), color mode) of the model's image input."""
    shapes = [tuple(t.shape) for t in model.inputs]
    if len(shapes) != 1 or len(shapes[0]) != 4:
        shape = shapes[0][1:] if len(shapes) == 1 else [s[1:] for s in shapes]
        raise UsageError(f"{what} is a folder of images, and the model takes {shape}: an image "
                         "folder needs a model with one image input, `input HxWxC` "
                         "(e.g. `input 160x160x3`)")
    _, h, w, c = shapes[0]
    if h is None or w is None or c not in _CHANNELS:
        raise UsageError(f"{what} is a folder of images, and the model's input "
                         f"{shapes[0][1:]} has no fixed height, width and 1, 3 or 4 channels: "
                         "give them in the spec, e.g. `input 160x160x3`")
    return (int(h), int(w)), _CHANNELS[int(c)]


@dataclass
class ImageFolder:
    """A folder of class subfolders, read for training."""

    path: pathlib.Path
    class_names: List[str]
    counts: Dict[str, int]
    train: object = None           # the tf.data datasets Keras' reader gives
    val: object = None
    n_train: int = 0
    n_val: int = 0
    warnings: List[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        total = sum(self.counts.values())
        text = (f"`{self.path}`: {total:,} images in {len(self.class_names)} classes "
                f"({', '.join(self.class_names[:8])}{', ...' if len(self.class_names) > 8 else ''})")
        if self.val is not None:
            text += f", {self.n_train:,} for training, {self.n_val:,} for validation"
        return text


def class_folders(path: pathlib.Path, what: str) -> Dict[str, int]:
    """{class name: number of images} of a folder of class subfolders."""
    if not path.exists():
        raise UsageError(f"{what}: there is no folder `{path}`")
    if not path.is_dir():
        raise UsageError(f"{what}: `{path}` is a file; %fit and %evaluate read a folder of class "
                         "subfolders (photos/cats/*.jpg, photos/dogs/*.jpg, ...)")
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    counts = {p.name: len(_images_in(p)) for p in subfolders}
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        loose = len([p for p in path.iterdir() if p.suffix.lower() in EXTENSIONS])
        found = f"{loose} images but no class subfolders" if loose else "no class subfolders"
        raise UsageError(f"{what}: `{path}` holds {found}: put each class's images in a subfolder "
                         f"named after it ({path}/cats/, {path}/dogs/, ...)")
    return counts


def read_image_folder(path: pathlib.Path, model, batch_size: int, val_split: Optional[float],
                      seed: Optional[int], shuffle: bool = True, what: str = "x") -> ImageFolder:
    """Check a folder of class subfolders and read it with Keras' reader."""
    import keras
    counts = class_folders(path, what)
    size, mode = image_size(model, f"`{path}`")
    folder = ImageFolder(path=path, class_names=list(counts), counts=counts)
    few = [f"{k} ({v})" for k, v in counts.items() if v < FEW_IMAGES]
    if few:
        folder.warnings.append(f"{'a class has' if len(few) == 1 else 'classes have'} very few "
                               f"images: {', '.join(few)}; a class needs tens of images to be "
                               "learned")
    files = [f for name in counts for f in _images_in(path / name)]
    bad = _unreadable(files)
    source = path
    if bad:
        shown = ", ".join(str(p.relative_to(path)) for p in bad[:3])
        folder.warnings.append(f"{len(bad)} of {len(files):,} files cannot be read as images "
                               f"({shown}{', ...' if len(bad) > 3 else ''}): left out")
        files = [f for f in files if f not in set(bad)]
        counts.update({k: len([f for f in files if f.relative_to(path).parts[0] == k])
                       for k in counts})
        source = _without(path, files)
    if val_split is not None and shuffle and seed is None:
        import random
        seed = random.SystemRandom().randrange(2**31)  # Keras needs one to split shuffled files
    kwargs = dict(labels="inferred", label_mode="int", class_names=folder.class_names,
                  color_mode=mode, batch_size=batch_size, image_size=size, shuffle=shuffle,
                  seed=seed)
    if val_split is not None:
        kwargs.update(validation_split=val_split, subset="both")
    with contextlib.redirect_stdout(io.StringIO()):  # "Found 1204 files ...": said by the note
        try:
            read = keras.utils.image_dataset_from_directory(str(source), follow_links=True,
                                                            **kwargs)
        except ValueError as exc:
            raise DataError(f"`{path}` cannot be read as images: {exc}") from None
    folder.train, folder.val = (read if val_split is not None else (read, None))
    total = len(files)
    folder.n_val = int(total * val_split) if val_split is not None else 0
    folder.n_train = total - folder.n_val
    return folder


def _without(path: pathlib.Path, files: Sequence[pathlib.Path]) -> pathlib.Path:
    """A folder of links to `files` only, laid out as `path` is (Keras' reader
    takes a folder, not a list of files), removed when the kernel exits."""
    import atexit
    import shutil
    import tempfile
    shadow = pathlib.Path(tempfile.mkdtemp(prefix="nbkeras-images-"))
    atexit.register(shutil.rmtree, shadow, True)
    for f in files:
        link = shadow / f.relative_to(path)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f.resolve())
    return shadow


def load_images(path: pathlib.Path, model, what: str):
    """(images as an array at the model's input size, the files, the true
    class names or None) of an image file, a folder of images, or a folder of
    class subfolders (whose names are then the true classes)."""
    import numpy as np
    import keras
    size, mode = image_size(model, f"`{path}`")
    if not path.exists():
        raise UsageError(f"{what}: there is no file or folder `{path}`")
    truth = None
    if path.is_file():
        files = [path]
    else:
        subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        labelled = [(f, p.name) for p in subfolders for f in _images_in(p)]
        if labelled:
            files, truth = [f for f, _ in labelled], [c for _, c in labelled]
        else:
            files = _images_in(path)
        if not files:
            raise UsageError(f"{what}: `{path}` holds no images ({', '.join(EXTENSIONS)})")
    arrays = []
    for f in files:
        try:
            image = keras.utils.load_img(f, color_mode=mode, target_size=size,
                                         interpolation="bilinear")
        except Exception as exc:  # noqa: BLE001 - the file, not a traceback
            raise DataError(f"`{f}` cannot be read as an image: {exc}") from None
        arrays.append(keras.utils.img_to_array(image))
    return np.stack(arrays).astype("float32"), files, truth


def truth_indices(truth: Sequence[str], class_names: Optional[Sequence[str]], path) -> "object":
    """The true class names of a labelled folder as indices of the model's classes."""
    import numpy as np
    names = list(class_names) if class_names else sorted(set(truth))
    unknown = sorted(set(truth) - set(names))
    if unknown:
        raise DataError(f"`{path}` has class folders the model was not trained on: "
                        f"{', '.join(unknown)} (it knows {', '.join(names)})")
    return np.array([names.index(t) for t in truth]), names


def classes_file(model_path) -> pathlib.Path:
    """Where `%export` keeps a model's class names: `digits.keras` ->
    `digits.classes.json`, beside it (`%%model NAME --from` reads it back)."""
    path = pathlib.Path(model_path)
    return path.with_name(path.stem + ".classes.json")


def write_classes(model_path, names: Sequence[str]) -> pathlib.Path:
    import json
    target = classes_file(model_path)
    target.write_text(json.dumps({"class_names": list(names)}, indent=1))
    return target


def read_classes(model_path) -> Optional[List[str]]:
    """The class names kept beside a saved model, or None."""
    import json
    try:
        names = json.loads(classes_file(model_path).read_text()).get("class_names")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) else None
