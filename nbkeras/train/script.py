"""`%fit NAME X Y ... --code`: the same training as a standalone Keras script.

A notebook is where a model starts; a long run belongs on a machine with
more devices, or on several. `--code` writes, and shows, a plain Python
script that trains the model as this `%fit` would: the model from its
spec (the code `%%model --code` shows), the compile settings the run would
use (a loss settled from the labels included), the callbacks each option
stands for, the seed, dtype policy and distribution set-up, and the data,
saved as `.npy` files beside the script. Nothing is trained here and
nothing changes (the model, the registry, the global policy).

The script is rendered from the checked `FitPlan` (the Keras callbacks it
holds, its `fit` keyword arguments), so it says what `%fit` would do, not
what the command line says. This module writes and shows it, and refuses
what a script cannot be (the options table's `script` column, a dataset);
`script_writer.py` renders its text.
"""

from __future__ import annotations

import html
import os
from typing import Optional

import numpy as np

from ..errors import DataError, UsageError
from .checks import is_dataset
from .script_parts import python_random_kept
from .script_writer import FitScript, Writer

FOLDER = "nbkeras_code"



class ScriptView:
    """The script, highlighted in notebooks (inline styles, no global CSS),
    plain text elsewhere."""

    def __init__(self, code: str, path: str):
        self.code, self.path = code, path

    def __repr__(self) -> str:
        return self.code

    def _repr_pretty_(self, p, cycle):
        p.text(self.code)

    def _repr_html_(self) -> str:
        title = f"<div><code>{html.escape(self.path)}</code></div>"
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer
        except ImportError:  # IPython brings pygments; plain text if it is gone
            return f"{title}<pre class='nbkeras-code'><code>{html.escape(self.code)}</code></pre>"
        body = highlight(self.code, PythonLexer(), HtmlFormatter(noclasses=True))
        return f"<div class='nbkeras-code'>{title}{body}</div>"


def show_fit_script(shell, plan, model, info, folder: Optional[str] = None) -> None:
    """Write the script of a `%fit` and its data files, show it, train nothing.

    Args:
        shell: the IPython shell (unused; the magics' common signature).
        plan: the checked `FitPlan`.
        model: the compiled Keras model.
        info: the model's `ModelInfo`.
        folder: where to write; defaults to `nbkeras_code/NAME/` in the
            working directory (the notebook's folder).

    Raises:
        UsageError: `--cv`, `--background`, or a dataset (which cannot be
            written as `.npy` files).
        DataError: arrays of Python objects.
    """
    folder = folder or os.path.join(FOLDER, plan.name)
    script = write_fit_script(plan, model, info, folder)
    from IPython.display import display
    shown = os.path.relpath(script.path) if not os.path.isabs(folder) else script.path
    display(ScriptView(script.code, shown))
    size = sum(os.path.getsize(os.path.join(script.folder, f)) for f in script.files)
    print(f"nbkeras: wrote {shown} and beside it {', '.join(script.files)} "
          f"({_size(size)}); nothing was trained. Run it with `python {shown}`.")
    if script.notes:
        print(f"nbkeras: the script will not give this %fit's numbers exactly: "
              f"{'; '.join(script.notes)} (see its comments)")


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def write_fit_script(plan, model, info, folder: str) -> FitScript:
    """Render the script of `plan` and write it with its data into `folder`.

    Returns:
        The `FitScript` (code, folder, data and model files written).
    """
    _refuse(plan)
    os.makedirs(folder, exist_ok=True)
    out = FitScript(code="", folder=folder)
    writer = Writer(plan, model, info, out)
    with python_random_kept():  # the copies it makes draw Keras' default seeds there
        out.code = writer.render()
    out.notes = writer.notes
    with open(out.path, "w", encoding="utf-8") as f:
        f.write(out.code)
    return out


def _refuse(plan) -> None:
    from ..options.training import script_refusal
    options = plan.options
    refusal = script_refusal(options)  # the options table says what a script cannot be
    if refusal:
        raise UsageError(refusal)
    val = plan.fit_kwargs.get("validation_data")
    for label, value in ((options.get("x"), plan.x),
                         ((options.get("val") or ["--val"])[0],
                          val[0] if isinstance(val, tuple) else val)):
        if value is not None and is_dataset(value):
            raise UsageError(f"--code writes the data as .npy files, and `{label}` is a dataset: "
                             "give arrays, or put your input pipeline in the script yourself")
    kw = plan.fit_kwargs
    for label, value in ((options.get("x"), plan.x), (options.get("y"), kw.get("y")),
                         ("--val", val), ("--sample-weight", kw.get("sample_weight"))):
        if any(np.asarray(leaf).dtype == object for leaf in _leaves(value)):
            raise DataError(f"--code writes the data as .npy files, and `{label}` holds Python "
                            "objects (dtype object): give numeric arrays")


def _leaves(value):
    """The arrays in a value, a list or tuple of them, or a dict of them."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif value is not None:
        yield value
