"""A Keras model as a server sees it: JSON bodies in, JSON answers out.

`ServedModel` turns a TensorFlow Serving request body (row form
`{"instances": [...]}` or columnar form `{"inputs": ...}`, a dict of named
inputs for a model with several) into arrays the model takes, refusing
what does not fit with a `BadInput` that names what was expected and what
was sent; it predicts one batch (`predict_arrays`) and turns the outputs
back into JSON (`answer`): `predictions`, and for a classifier `classes`
(class names when the model has them, else indices) and `probabilities`.
It imports no web framework: `nbkeras.serve.app` wraps it in HTTP.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np


class BadInput(ValueError):
    """A request whose data does not fit the model (HTTP 422)."""


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) or "a scalar"


class ServedModel:
    """A model and what a client may ask about it.

    Args:
        model: a built `keras.Model`; the server calls it from one thread.
        name: the name in the URL (`/v1/models/NAME`).
        class_names: names of the classes, in the order of the output's
            units; None: classes are answered as indices.
        spec: the `%%model` text it was built from ('' when unknown).
        run_id: the registry run whose weights these are, or None.
        version: the model version (the registry's version id, else 1).
        kind: 'softmax', 'sigmoid', 'logits', 'regression' or 'multi'
            (default: read off the model, as `%predict` does).

    Example:
        >>> served = ServedModel(model, "digits")
        >>> served.answer(served.predict_arrays(served.parse({"instances": rows})))
    """

    def __init__(self, model, name: str, class_names: Optional[Sequence[str]] = None,
                 spec: str = "", run_id: Optional[int] = None, version: Optional[int] = None,
                 kind: Optional[str] = None):
        from ..results.common import output_kind
        self.model = model
        self.name = name
        self.spec = spec or ""
        self.run_id = run_id
        self.version = int(version or 1)
        self.inputs = [(_tensor_name(t, i, "input"), tuple(t.shape)[1:],
                        np.dtype(getattr(t.dtype, "name", t.dtype) or "float32"))
                       for i, t in enumerate(model.inputs)]
        self.output_names = [_tensor_name(t, i, "output") for i, t in enumerate(model.outputs)]
        self.output_shapes = [tuple(t.shape)[1:] for t in model.outputs]
        self.kind = kind or output_kind(model)
        self.class_names = list(class_names) if class_names else None

    # ------------------------------------------------------------------ input
    def parse(self, body: Any) -> Dict[str, Any]:
        """The arrays of one request: {'arrays': [one per input], 'rows': n, 'form': ...}.

        Raises:
            BadInput: a key, shape, dtype or value the model cannot take.
        """
        if not isinstance(body, dict):
            raise BadInput(f"the body is a JSON {_json_type(body)}; send an object "
                           '{"instances": [...]} or {"inputs": ...}')
        keys = set(body) - {"signature_name"}
        if keys == {"instances"}:
            form, arrays = "rows", self._rows(body["instances"])
        elif keys == {"inputs"}:
            form, arrays = "columns", self._columns(body["inputs"])
        else:
            sent = ", ".join(f"`{k}`" for k in sorted(map(str, keys))) or "no key"
            raise BadInput(f'the body has {sent}; send exactly one of "instances" (a list '
                           'of rows) or "inputs" (columns)')
        counts = {len(a) for a in arrays}
        if len(counts) > 1:
            sent = ", ".join(f"`{n}` {len(a)}" for (n, _, _), a in zip(self.inputs, arrays))
            raise BadInput(f"the inputs have different numbers of rows ({sent}); give each "
                           "input one row per sample")
        rows = counts.pop()
        if rows == 0:
            raise BadInput("no rows were sent; send at least one")
        return {"arrays": arrays, "rows": rows, "form": form}

    def _rows(self, instances: Any) -> List[np.ndarray]:
        if not isinstance(instances, list):
            raise BadInput(f'"instances" is a JSON {_json_type(instances)}; send a list of rows')
        if len(self.inputs) == 1:
            name = self.inputs[0][0]
            if instances and all(isinstance(r, dict) for r in instances):
                instances = [self._only_key(r, f"instances[{i}]")[name]
                             for i, r in enumerate(instances)]
            return [self._array(instances, 0, "instances")]
        columns = []
        for i, row in enumerate(instances):
            if not isinstance(row, dict):
                raise BadInput(f"instances[{i}] is a JSON {_json_type(row)}; this model has "
                               f"{len(self.inputs)} inputs, so each row is an object "
                               f"{{{', '.join(repr(n) for n, _, _ in self.inputs)}: ...}}")
            self._check_keys(row, f"instances[{i}]")
        for k, (name, _, _) in enumerate(self.inputs):
            columns.append(self._array([row[name] for row in instances], k, "instances",
                                       key=name))
        return columns

    def _columns(self, inputs: Any) -> List[np.ndarray]:
        if isinstance(inputs, dict):
            if len(self.inputs) == 1:
                inputs = self._only_key(inputs, '"inputs"')[self.inputs[0][0]]
            else:
                self._check_keys(inputs, '"inputs"')
                return [self._array(inputs[name], k, f'inputs["{name}"]', columns=True)
                        for k, (name, _, _) in enumerate(self.inputs)]
        elif len(self.inputs) > 1:
            raise BadInput(f'"inputs" is a JSON {_json_type(inputs)}; this model has '
                           f"{len(self.inputs)} inputs, so send an object "
                           f"{{{', '.join(repr(n) for n, _, _ in self.inputs)}: [...]}}")
        return [self._array(inputs, 0, '"inputs"', columns=True)]

    def _only_key(self, obj: dict, where: str) -> dict:
        name = self.inputs[0][0]
        if list(obj) != [name]:
            sent = ", ".join(repr(k) for k in obj) or "no key"
            raise BadInput(f"{where} has key {sent}; the model's one input is {name!r}")
        return obj

    def _check_keys(self, obj: dict, where: str) -> None:
        names = [n for n, _, _ in self.inputs]
        missing = [n for n in names if n not in obj]
        extra = [k for k in obj if k not in names]
        if missing or extra:
            parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + \
                    ([f"has unknown {', '.join(map(repr, extra))}"] if extra else [])
            raise BadInput(f"{where} {' and '.join(parts)}; the model's inputs are "
                           f"{', '.join(map(repr, names))}")

    def _array(self, data: Any, k: int, where: str, key: Optional[str] = None,
               columns: bool = False) -> np.ndarray:
        """One input's rows as an array of the input's dtype, or a `BadInput`."""
        name, shape, dtype = self.inputs[k]
        if not isinstance(data, list):
            raise BadInput(f"{where} is a JSON {_json_type(data)}; send a list with one row "
                           "per sample")
        if not data:
            raise BadInput("no rows were sent; send at least one")
        arr = _numbers(data)
        if arr is None or arr.ndim != len(shape) + 1 or any(
                d is not None and d != s for d, s in zip(shape, arr.shape[1:])):
            self._explain_row(data, shape, where, key, columns)
        if not np.isfinite(arr).all():
            bad = int(np.argwhere(~np.isfinite(arr))[0][0])
            raise BadInput(f"{_row_where(where, bad, key, columns)} holds NaN, an infinity "
                           "or null; send finite numbers")
        if dtype.kind in "iub":
            if not (arr == np.round(arr)).all():
                bad = int(np.argwhere(arr != np.round(arr))[0][0])
                raise BadInput(f"{_row_where(where, bad, key, columns)} holds a fraction; "
                               f"input {name!r} takes integers ({dtype.name})")
            info = np.iinfo(dtype) if dtype.kind != "b" else None
            if info is not None and ((arr < info.min) | (arr > info.max)).any():
                raise BadInput(f"{where} holds a value outside {dtype.name}'s range; "
                               f"input {name!r} takes {dtype.name}")
        return arr.astype(dtype, copy=False)

    def _explain_row(self, data: list, shape, where, key, columns) -> None:
        """Raise the `BadInput` naming the first row that does not fit `shape`."""
        for i, row in enumerate(data):
            here = _row_where(where, i, key, columns)
            arr = _numbers(row)
            if arr is None:
                _raise_ragged_or_text(row, here, shape)
            if arr.ndim == 1 and len(shape) == 1 and shape[0] is not None:
                if arr.shape[0] != shape[0]:
                    raise BadInput(f"{here} has {arr.shape[0]} values; the model takes {shape[0]}")
            if arr.ndim != len(shape) or any(d is not None and d != s
                                             for d, s in zip(shape, arr.shape)):
                raise BadInput(f"{here} has shape {_shape_text(arr.shape)}; the model "
                               f"takes {_shape_text(shape)}")
        raise BadInput(f"{where}: the rows have different shapes; each takes "
                       f"{_shape_text(shape)}")

    # ---------------------------------------------------------------- predict
    def predict_arrays(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        """The model's outputs for one batch, one array per output (float64)."""
        x = arrays[0] if len(arrays) == 1 else list(arrays)
        out = self.model.predict_on_batch(x)
        if isinstance(out, dict):
            out = [out[n] for n in self.output_names]
        elif not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(o) for o in out]

    # ----------------------------------------------------------------- answer
    def answer(self, outputs: List[np.ndarray], form: str = "rows") -> Dict[str, Any]:
        """The JSON answer for the outputs of one request's rows."""
        if len(outputs) == 1:
            preds = outputs[0].tolist()
        else:
            lists = [o.tolist() for o in outputs]
            preds = [dict(zip(self.output_names, vals)) for vals in zip(*lists)] \
                if form == "rows" else dict(zip(self.output_names, lists))
        result: Dict[str, Any] = {"predictions": preds}
        if form == "columns":  # TF Serving answers the columnar form with "outputs"
            result["outputs"] = preds
        probs = self.probabilities(outputs)
        if probs is not None:
            result["classes"] = self.classes(probs)
            result["probabilities"] = probs.tolist()
        return result

    def probabilities(self, outputs: List[np.ndarray]) -> Optional[np.ndarray]:
        """Each row's probability of each class, or None for a non-classifier."""
        if len(outputs) != 1 or self.kind not in ("softmax", "sigmoid", "logits"):
            return None
        p = outputs[0].astype(np.float64).reshape(len(outputs[0]), -1)
        if self.kind == "logits":
            if p.shape[1] == 1:
                p = 1.0 / (1.0 + np.exp(-p))
            else:
                e = np.exp(p - p.max(axis=1, keepdims=True))
                p = e / e.sum(axis=1, keepdims=True)
        if p.shape[1] == 1:  # one unit: P(class 1); answer both classes
            p = np.concatenate([1.0 - p, p], axis=1)
        return p

    def classes(self, probs: np.ndarray) -> list:
        names = self.class_names
        label = (lambda i: names[i] if names and i < len(names) else int(i))
        if self.kind == "sigmoid" and probs.shape[1] > 2 and self.output_shapes[0][-1] != 1:
            return [[label(i) for i in np.flatnonzero(row > 0.5)] for row in probs]
        return [label(int(i)) for i in probs.argmax(axis=1)]

    # --------------------------------------------------------------- metadata
    def metadata(self) -> Dict[str, Any]:
        """What `GET /v1/models/NAME/metadata` answers."""
        def dims(shape):
            return [-1] + [-1 if d is None else int(d) for d in shape]
        return {
            "model_spec": {"name": self.name, "version": str(self.version)},
            "inputs": [{"name": n, "shape": dims(s), "dtype": d.name} for n, s, d in self.inputs],
            "outputs": [{"name": n, "shape": dims(s), "dtype": "float32"}
                        for n, s in zip(self.output_names, self.output_shapes)],
            "kind": self.kind,
            "class_names": self.class_names,
            "spec": self.spec,
            "run_id": self.run_id,
        }

    def example_row(self) -> Any:
        """A row of zeros of the model's input shape (for the curl example);
        written `0`, not `0.0`, for a numeric input: JSON's numbers fit any."""
        rows = [np.zeros([1 if d is None else d for d in s],
                         dtype=int if np.issubdtype(np.dtype(d_), np.number) else d_).tolist()
                for _, s, d_ in self.inputs]
        if len(rows) == 1:
            return rows[0]
        return {n: r for (n, _, _), r in zip(self.inputs, rows)}


def _tensor_name(t, i: int, what: str) -> str:
    """The name of the layer that made tensor `t` (an `Input`'s name, the output
    layer's), which is what `model(dict)` and `model.fit(dict)` key by."""
    history = getattr(t, "_keras_history", None)
    name = getattr(history[0], "name", None) if history else None
    return (name or getattr(t, "name", None) or f"{what}_{i}").split(":")[0]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _row_where(where: str, i: int, key: Optional[str], columns: bool) -> str:
    if columns:
        return f"{where}[{i}]"
    return f"{where}[{i}]" + (f'["{key}"]' if key else "")


def _raise_ragged_or_text(row: Any, here: str, shape) -> None:
    def first_text(v):
        if isinstance(v, list):
            for x in v:
                found = first_text(x)
                if found is not None:
                    return found
            return None
        return v if isinstance(v, (str, dict)) else None
    text = first_text(row)
    if text is not None:
        shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "..."
        raise BadInput(f"{here} holds {shown}, a JSON {_json_type(text)}; the model takes numbers")
    raise BadInput(f"{here} is ragged (its lists have different lengths); the model takes "
                   f"{_shape_text(shape)}")


def _numbers(data: Any) -> Optional[np.ndarray]:
    """`data` as a float64 array, or None when ragged or holding text, objects or nulls
    (numpy would read the string "1.5" as a number; a client sending it has a bug)."""
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O" and arr.size and all(v is None or isinstance(v, (int, float))
                                                      for v in arr.flat):
            return arr.astype(np.float64)  # nulls: refused below as not finite
        return None
    return arr.astype(np.float64, copy=False)
