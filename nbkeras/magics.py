"""The IPython magics: parse the line, call the stage modules, display.

Each magic body is a few lines; the work lives in `nbkeras.notebook`,
`nbkeras.train` and `nbkeras.results`, imported lazily so that
`%load_ext nbkeras` never imports Keras.
"""

from __future__ import annotations

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Enum, Float
from traitlets.config import Configurable

from .backend import import_keras
from .notebook.echo import without_echo
from .notebook.lineargs import split_line
from .options.training import FIT_POSITIONALS, TRAINING, declared, trial_options


def _arguments(positionals):
    """IPython `@argument`s for (name, kwargs) pairs, in their order."""
    def apply(func):
        for name, kwargs in reversed(positionals):
            func = argument(name, **kwargs)(func)
        return func
    return apply


def _training_arguments(options, magic: str):
    """IPython `@argument`s for the options table's rows (`nbkeras.options`),
    in the table's order, as `magic` ("fit" or "tune") declares them."""
    def apply(func):
        for option in reversed(options):
            flags, kwargs = declared(option, magic)
            func = argument(*flags, **kwargs)(func)
        return func
    return apply


@magics_class
class NbkerasMagics(Magics, Configurable):
    """`%%model`, `%fit`, `%evaluate`, `%predict`, `%models`, `%export`, `%serve`.

    Configure with `%config NbkerasMagics.update_interval = 0.5`.
    """

    update_interval = Float(
        0.2, config=True,
        help="Least time in seconds between two batch redraws of the live panel "
             "(every epoch end is drawn whatever it says).")
    display_mode = Enum(
        ["auto", "html", "widget", "text"], "auto", config=True,
        help="How %fit shows progress: the HTML panel ('widget' is its old name), "
             "plain text, or chosen from the frontend.")

    def __init__(self, shell=None, **kwargs):
        Configurable.__init__(self, config=shell.config if shell is not None else None)
        Magics.__init__(self, shell=shell, **kwargs)

    def _parse(self, magic, line):
        """Parse a line with a bracket-aware split (expressions keep their spaces)."""
        return magic.parser.parse_args(split_line(line))

    @magic_arguments()
    @argument("name", help="Python name to bind the model to.")
    @argument("--seed", type=int, help="Seed for reproducible initial weights.")
    @argument("--code", action="store_true", help="Also show the equivalent plain Keras code.")
    @argument("--no-compile", action="store_true", help="Build the model without compiling it.")
    @argument("--input", metavar="SHAPE", help="Input shape when the spec has no input statement.")
    @argument("--from", dest="from_path", metavar="PATH", help="Load a saved .keras file instead.")
    @argument("--devices", metavar="all|N|LIST", help="Build over these devices for data-parallel training (all, a count, or a list: 0,1 or gpu:0,gpu:1).")
    @line_cell_magic
    def model(self, line, cell=""):
        """Build and compile a Keras model from a compact spec."""
        import_keras()
        from .notebook.model_cell import run_model_cell
        args = parse_argstring(self.model, line)
        return run_model_cell(self.shell, args, cell or "")

    @magic_arguments()
    @_arguments(FIT_POSITIONALS)
    @_training_arguments(TRAINING, "fit")
    @line_magic
    def fit(self, line):
        """Train a model with a live progress panel and history plot."""
        import_keras()
        from .train.fit import run_fit
        args = self._parse(self.fit, line)
        return without_echo(self.shell, run_fit(self.shell, args, self))

    @magic_arguments()
    @argument("name", help="A model built by a %%%%model cell whose spec holds search spaces.")
    @argument("x", help="Inputs, as for %%fit.")
    @argument("y", nargs="?", help="Targets, as for %%fit (omit for a dataset).")
    @argument("--trials", type=int, metavar="N", help="Number of trials to run.")
    @argument("--timeout", type=float, metavar="SECONDS", help="Stop starting trials after this.")
    @argument("--objective", metavar="METRIC", help="Metric to optimize (default: the validation loss).")
    @argument("--direction", choices=["min", "max"], help="Override the metric's direction.")
    @argument("--sampler", default="tpe", metavar="tpe|random|grid|cmaes")
    @argument("--pruner", default="median", metavar="median|hyperband|none")
    @argument("--seed", type=int, help="Seed of the sampler and of each trial's initial weights.")
    @argument("--study", metavar="NAME", help="Study name (default: the model's name).")
    @argument("--resume", action="store_true", help="Continue an existing study (without it, a study name that is taken gets -2, -3, ...).")
    @argument("--storage", metavar="URL", help="Optuna storage URL (default: SQLite beside the registry).")
    @argument("--workers", type=int, metavar="N", help="Run N trials at a time in N worker processes (one GPU each when there are several), sharing the study's storage.")
    @argument("--quiet", action="store_true", help="No live display; a summary line at the end.")
    @_training_arguments(trial_options(), "tune")
    @line_magic
    def tune(self, line):
        """Search a spec's spaces with Optuna, training each trial like %fit."""
        import_keras()
        from .errors import UsageError
        from .options.training import refuse_for_trials
        from .tune.search import run_tune
        refusal = refuse_for_trials(split_line(line), self.tune.parser._option_string_actions)
        if refusal:
            raise UsageError(refusal)
        args = self._parse(self.tune, line)
        return without_echo(self.shell, run_tune(self.shell, args, self))

    @magic_arguments()
    @argument("name", help="Name of the model to evaluate.")
    @argument("x", help="Inputs: an expression, or a folder of class subfolders of images.")
    @argument("y", nargs="?", help="Targets (omit for a folder of images).")
    @argument("-b", "--batch-size", type=int, default=32)
    @argument("--no-plots", action="store_true", help="Only the numbers.")
    @line_magic
    def evaluate(self, line):
        """Test metrics of a model on held-out data."""
        import_keras()
        from .results.evaluate import run_evaluate
        args = self._parse(self.evaluate, line)
        # the tables already show the numbers: no echo of the dict under them
        return without_echo(self.shell, run_evaluate(self.shell, args))

    @magic_arguments()
    @argument("name", help="Name of the model to predict with.")
    @argument("x", help="Inputs: an expression, an image file, or a folder of images.")
    @argument("-b", "--batch-size", type=int, default=32)
    @argument("--classes", action="store_true", help="Return class indices.")
    @argument("--show", type=int, metavar="N", help="Show a grid of N inputs with predicted labels.")
    @argument("--images", metavar="EXPR", help="Images to show (default: X).")
    @argument("--labels", metavar="EXPR", help="True labels to show beside the predictions.")
    @line_magic
    def predict(self, line):
        """Predictions of a model."""
        import_keras()
        from .results.predict import run_predict
        args = self._parse(self.predict, line)
        return run_predict(self.shell, args)

    @magic_arguments()
    @argument("name", nargs="?", help="Show one model's versions and runs.")
    @argument("--compare", nargs="+", type=int, metavar="RUN", help="Overlay these runs' curves.")
    @argument("--delete", nargs="+", type=int, metavar="RUN", help="Delete these runs from the registry.")
    @line_magic
    def models(self, line):
        """Table of the models and runs in the registry."""
        from .results.models import run_models
        args = self._parse(self.models, line)
        return run_models(self.shell, args)

    @magic_arguments()
    @argument("name", help="Name of the model to save.")
    @argument("path", help="The file (or, for --format savedmodel and service, the folder) to write.")
    @argument("--format", choices=["keras", "savedmodel", "tflite", "service"], default="keras",
              help="service: a folder with the model, a pinned requirements.txt and a "
                   "Dockerfile that runs `nbkeras serve`")
    @line_magic
    def export(self, line):
        """Write a model to a file (atomically), or a folder that serves it."""
        import_keras()
        from .results.export import run_export
        args = self._parse(self.export, line)
        return run_export(self.shell, args)

    @magic_arguments()
    @argument("name", nargs="?", help="The model to serve (a snapshot of its current weights).")
    @argument("--stop", action="store_true", help="Stop serving NAME (every model without NAME).")
    @argument("--port", type=int, default=8501, help="Default 8501; 0 picks a free port.")
    @argument("--host", default="127.0.0.1", help="Default 127.0.0.1; any other needs --token or --no-token.")
    @argument("--token", help="Clients must send `Authorization: Bearer TOKEN`.")
    @argument("--no-token", action="store_true", help="Serve on a non-loopback address without a token.")
    @argument("--window-ms", type=float, default=2.0, help="Batching window (default 2 ms).")
    @argument("--max-batch", type=int, default=256, help="Most rows in one predict call.")
    @argument("--max-body", type=int, default=10 * 1024 * 1024, help="Largest request body in bytes.")
    @line_magic
    def serve(self, line):
        """Serve a model over HTTP (TensorFlow Serving's REST API) from this kernel."""
        from .serve.magic import run_serve
        args = self._parse(self.serve, line)
        if not args.stop:
            import_keras()
        return run_serve(self.shell, args)
