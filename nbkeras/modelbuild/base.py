"""`base MODEL ...`: a pretrained network inside the model (spec version 3).

MODEL is a `keras.applications` model by name (any case, underscores
optional) or a quoted path to a saved `.keras`/`.h5` model, cut at
`output=LAYER` when given. The base becomes one nested `keras.Model` of the
model, frozen by default (`trainable` off, called with `training=False`, so
its BatchNormalization layers stay in inference mode, the Keras
transfer-learning guide's rule). An application's own `preprocess_input`
is applied inside the model as built-in Keras layers (read from the function
itself: every application's is a per-pixel affine map), so the model saves,
loads and serves without nbkeras, and `%fit` takes raw 0-255 pixels.

Nothing here downloads on its own: `weights=imagenet` (the default for an
application, as in Keras) is passed to Keras, whose missing-file message
becomes a `SpecError` that names the file Keras looked for.
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import keras
import numpy as np

from ..errors import SpecError
from ..speclang.nodes import Arg, LayerStmt
from .names import closest, norm, short

FLAGS = ("frozen", "trainable")
_OURS = {"preprocess", "output"}       # keywords of the statement, not of the constructor
_GIVEN_HERE = {"input_shape", "input_tensor"}  # the statement before gives the input
SAVED_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class Base:
    """What a `base` statement built.

    Attributes:
        model: the nested `keras.Model`.
        pre: the preprocessing layer applied before it, or None.
        frozen: whether it is frozen (and called with `training=False`).
        pixels: whether it expects raw 0-255 pixels (an application with its
            own preprocessing); `%fit` warns when the inputs look scaled to 0-1.
        code: the plain Keras lines that build it (`{src}`, `{out}` and
            `{model}` stand for the input, the output and the base's variable).
    """

    model: Any
    pre: Any = None
    frozen: bool = True
    pixels: bool = False
    code: List[str] = field(default_factory=list)


def applications() -> Dict[str, str]:
    """Normalized name -> the `keras.applications` function (`mobilenetv3small` ->
    `MobileNetV3Small`)."""
    return {norm(n): n for n in dir(keras.applications)
            if n[:1].isupper() and callable(getattr(keras.applications, n))}


def _module(fn) -> Any:
    """The public `keras.applications.<module>` holding `fn`'s `preprocess_input`."""
    name = getattr(fn, "__module__", "").rsplit(".", 1)[-1]
    module = getattr(keras.applications, name, None)
    return module if hasattr(module, "preprocess_input") else None


def _err(stmt: LayerStmt, message: str, arg: Optional[Arg] = None) -> SpecError:
    if arg is not None:
        return SpecError(message, arg.line, arg.column, arg.key or arg.text)
    return SpecError(message, stmt.line, stmt.column, stmt.text)


def _read(stmt: LayerStmt) -> Tuple[Arg, bool, Dict[str, Arg]]:
    """(the MODEL argument, frozen?, keywords by lower-case key)."""
    model, frozen, keywords = None, True, {}
    for arg in stmt.args:
        if arg.key is not None:
            keywords[arg.key.lower()] = arg
        elif model is None:
            model = arg
        elif arg.kind == "word" and arg.value.lower() in FLAGS:
            frozen = arg.value.lower() == "frozen"
        else:
            raise _err(stmt, f"unexpected `{arg.text}` in `{stmt.text}`: after the model come "
                       "`key=value` options and `frozen` or `trainable`", arg)
    return model, frozen, keywords


def build_base(stmt: LayerStmt, name: str, shape: Tuple) -> Base:
    """The base of a `base` statement whose input has `shape` (no batch axis)."""
    what, frozen, keywords = _read(stmt)
    if what.kind == "str":
        base = _saved(stmt, what, keywords, name, shape)
    else:
        base = _application(stmt, what, keywords, name, shape)
    base.frozen = frozen
    base.model.trainable = not frozen
    if frozen:
        base.code.append("{model}.trainable = False")
    base.code.append("{out} = {model}(" + ("{out}" if base.pre is not None else "{src}")
                     + (", training=False)" if frozen else ")"))
    return base


def _application(stmt, what: Arg, keywords: Dict[str, Arg], name: str, shape) -> Base:
    table = applications()
    fn_name = table.get(norm(what.value))
    if fn_name is None:
        hint = closest(str(what.value), sorted(table.values()) + sorted(
            n for n in dir(keras.applications) if not n.startswith("_") and n.islower()))
        if "." in str(what.value) or "/" in str(what.value):
            hint = f" (a saved model's path is quoted: `base \"{what.value}\"`)"
        raise _err(stmt, f"unknown application `{what.text}`{hint or ''}; a base is a model of "
                   "`keras.applications` (any case, underscores optional) or a quoted path to "
                   "a saved `.keras` model", what)
    fn = getattr(keras.applications, fn_name)
    params = inspect.signature(fn).parameters
    kwargs: Dict[str, Any] = {}
    if "include_top" in params:
        kwargs["include_top"] = False
    kwargs["weights"] = "imagenet"
    for key, arg in keywords.items():
        if key == "name":
            continue  # the statement's layer name, given below
        if key in _OURS:
            if key == "output":
                raise _err(stmt, f"`output=` cuts a saved model at a layer; `{fn_name}` is an "
                           "application: take its output, or pool it with `pooling=avg`", arg)
            continue
        if key not in params or key in _GIVEN_HERE:
            extra = (": the input comes from the statement before" if key in _GIVEN_HERE
                     else closest(key, sorted(set(params) - _GIVEN_HERE) + sorted(_OURS)))
            raise _err(stmt, f"`{fn_name}` has no keyword `{arg.key}`{extra or ''}", arg)
        kwargs[key] = _weights(stmt, arg) if key == "weights" else arg.python()
    kwargs["input_shape"] = tuple(shape)
    kwargs["name"] = name
    try:
        model = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - anything Keras refuses is the statement's
        raise _keras_error(stmt, exc, keywords.get("weights")) from None
    base = Base(model=model)
    code = "{model} = keras.applications." + fn_name + "(" + ", ".join(
        f"{k}={v!r}" for k, v in kwargs.items()) + ")"
    if _flag(keywords.get("preprocess"), True):
        module = _module(fn)
        if module is not None:
            base.pre, line = _preprocessing(stmt, module, fn_name, name, shape)
            if line:
                base.code.append(line)
        base.pixels = _flag(keywords.get("include_preprocessing"), True) or base.pre is not None
    base.code.append(code)
    return base


def _flag(arg: Optional[Arg], default: bool) -> bool:
    if arg is None:
        return default
    if arg.kind != "bool":
        raise SpecError(f"`{arg.key}={arg.text}`: give `true` or `false`", arg.line, arg.column,
                        arg.key)
    return bool(arg.value)


def _weights(stmt, arg: Arg):
    value = arg.python()
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, str) and value.lower() == "imagenet":
        return "imagenet"
    path = os.path.expanduser(str(value))
    if not os.path.exists(path):
        raise _err(stmt, f"`weights={arg.text}`: there is no file `{path}` (looked from "
                   f"{os.getcwd()}); give `weights=imagenet`, `weights=none` or the path of a "
                   "`.weights.h5` file", arg)
    return path


def _keras_error(stmt, exc: BaseException, weights: Optional[Arg]) -> SpecError:
    text = str(exc)
    url = re.search(r"(https?://\S+?)(?::\s|\s|$)", text)
    if "URL fetch failure" in text or (url and "download" in text.lower()):
        fname = url.group(1).rsplit("/", 1)[-1] if url else "the weights file"
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        cached = os.path.join(home, "models", fname)
        return SpecError(f"`{stmt.text}`: Keras cannot download the ImageNet weights (no "
                         f"network here) and has no copy at `{cached}`: put the file "
                         f"`{fname}` there (from {url.group(1) if url else 'keras.io'}), or give "
                         "`weights=\"path.weights.h5\"`, or `weights=none` to start from random "
                         "weights", weights.line if weights else stmt.line,
                         weights.column if weights else stmt.column,
                         weights.key if weights else stmt.text)
    return SpecError(f"`{stmt.text}` failed in Keras: {short(exc)}", stmt.line, stmt.column,
                     stmt.text)


def _preprocessing(stmt, module, fn_name: str, name: str, shape) -> Tuple[Any, str]:
    """The application's `preprocess_input` as one built-in layer and its code (None, ''
    where it is the identity: the application preprocesses inside itself)."""
    channels = int(shape[-1]) if shape and shape[-1] is not None else 3
    pre = module.preprocess_input
    where = f"keras.applications.{module.__name__.rsplit('.', 1)[-1]}.preprocess_input"
    try:
        zero = np.asarray(pre(np.zeros((1, 1, 1, channels), "float32")), "float64")[0, 0, 0]
        cols = []
        for c in range(channels):
            probe = np.zeros((1, 1, 1, channels), "float32")
            probe[..., c] = 100.0
            cols.append((np.asarray(pre(probe), "float64")[0, 0, 0] - zero) / 100.0)
        check = np.random.default_rng(0).uniform(0, 255, (1, 2, 2, channels)).astype("float32")
        got = np.asarray(pre(check.copy()), "float64")
    except Exception as exc:  # noqa: BLE001
        raise _err(stmt, f"`{stmt.text}`: {where} cannot take these {channels}-channel inputs "
                   f"({short(exc)}): give 3-channel images, or write `preprocess=false`") from None
    a = np.stack(cols, axis=1)  # out = a @ x + zero, per pixel
    if not np.allclose(got, check.astype("float64") @ a.T + zero, rtol=1e-4, atol=1e-3):
        raise _err(stmt, f"`{stmt.text}`: {where} is not a per-pixel affine map nbkeras can "
                   "build into the model: write `preprocess=false` and preprocess yourself")
    if np.allclose(a, np.eye(channels)) and np.allclose(zero, 0):
        return None, ""
    layer_name = f"{name}_preprocess"
    diag = np.diag(a)
    if np.allclose(a, np.diag(diag)) and np.allclose(diag, diag[0]) and np.allclose(zero, zero[0]):
        kwargs = {"scale": _rounded(diag[:1])[0], "offset": _rounded(zero[:1])[0],
                  "name": layer_name}
        cls = "Rescaling"
    elif np.allclose(a, np.diag(diag)):
        kwargs = {"mean": _rounded(-zero / diag), "variance": _rounded((1.0 / diag) ** 2),
                  "name": layer_name}
        cls = "Normalization"
    else:  # a channel permutation (caffe's RGB -> BGR) with offsets: a fixed 1x1 convolution
        kernel = [[[[float(f"{a[j, i]:.12g}") for j in range(channels)]
                    for i in range(channels)]]]
        bias = _rounded(zero)
        layer = keras.layers.Conv2D(channels, 1, trainable=False, name=layer_name,
                                    kernel_initializer=keras.initializers.Constant(kernel),
                                    bias_initializer=keras.initializers.Constant(bias))
        code = ("{out} = layers.Conv2D(" + f"{channels}, 1, trainable=False, name={layer_name!r}, "
                f"kernel_initializer=keras.initializers.Constant({kernel!r}), "
                f"bias_initializer=keras.initializers.Constant({bias!r}))" + "({src})"
                f"  # {where}")
        return layer, code
    layer = getattr(keras.layers, cls)(**kwargs)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return layer, "{out} = layers." + cls + "(" + args + ")({src})" + f"  # {where}"


def _rounded(values) -> List[float]:
    """Floats to 12 significant digits: exact enough, and readable in `--code`."""
    return [float(f"{x:.12g}") for x in np.ravel(values)]


def _shape(dims) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def _saved(stmt, what: Arg, keywords: Dict[str, Arg], name: str, shape) -> Base:
    path = os.path.expanduser(str(what.value))
    if not path.lower().endswith(SAVED_SUFFIXES):
        raise _err(stmt, f"`{what.text}` is not a saved Keras model: a base is a `.keras` or "
                   "`.h5` file, or a `keras.applications` model by name (unquoted)", what)
    if not os.path.exists(path):
        raise _err(stmt, f"there is no file `{path}` (looked from {os.getcwd()}): save the model "
                   f"first (`%export NAME {os.path.basename(path)}`)", what)
    for key, arg in keywords.items():
        if key not in ("output", "name"):
            raise _err(stmt, f"`{arg.key}=`: a saved model brings its own weights and layers; "
                       "`base \"PATH\"` takes only `output=LAYER` (and `frozen`/`trainable`)", arg)
    try:
        loaded = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001
        raise _err(stmt, f"`{what.text}` cannot be loaded by Keras: {short(exc)}", what) from None
    if len(loaded.inputs) != 1:
        raise _err(stmt, f"`{what.text}` takes {len(loaded.inputs)} inputs; a base takes one", what)
    takes = tuple(loaded.inputs[0].shape[1:])
    if len(takes) != len(shape) or any(t is not None and s is not None and t != s
                                       for t, s in zip(takes, shape)):
        raise _err(stmt, f"`{what.text}` takes inputs of shape {_shape(takes)}, and the "
                   f"statement before gives {_shape(shape)}: make them match")
    out = keywords.get("output")
    code = [f"{{model}} = keras.saving.load_model({path!r}, compile=False)"]
    if out is not None:
        names = [layer.name for layer in loaded.layers]
        if out.value not in names:
            raise _err(stmt, f"`output={out.text}`: `{what.text}` has no layer `{out.value}`"
                       f"{closest(str(out.value), names) or ''}; its layers are "
                       f"{', '.join(names)}", out)
        outputs = loaded.get_layer(out.value).output
        code.append("{model} = keras.Model({model}.inputs, {model}.get_layer("
                    f"{out.value!r}).output, name={name!r})")
    else:
        outputs = loaded.outputs[0] if len(loaded.outputs) == 1 else loaded.outputs
        code.append("{model} = keras.Model({model}.inputs, {model}.outputs, name=" f"{name!r})")
    try:
        model = keras.Model(loaded.inputs, outputs, name=name)
    except Exception as exc:  # noqa: BLE001
        raise _err(stmt, f"`{stmt.text}` failed in Keras: {short(exc)}") from None
    return Base(model=model, code=code)


def base_name(stmt: LayerStmt, bound: Optional[str]) -> str:
    """The base's Keras name: `name=`, the bound name, the application's, or the file's stem."""
    what, _, keywords = _read(stmt)
    if bound:
        return bound
    if what.kind == "str":
        stem = os.path.basename(str(what.value))
        for suffix in SAVED_SUFFIXES:
            stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
        return re.sub(r"\W", "_", stem) or "base"
    return re.sub(r"\W", "_", str(what.value)).lower()
