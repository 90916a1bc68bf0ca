"""The training options of `%fit` and `%tune`: one table, read by everyone.

Each `Option` is one flag as argparse declares it (`flags`, `kwargs`), plus
what the rest of nbkeras needs to know of it: whether a `%tune` trial takes
it (`trial`: True, or why not), and whether the `--code` script writes it
out (`script`: True, or the message that refuses it). The magics build
their `@argument`s from this table (`nbkeras.magics`), `fitline` reads a
run's options back into its `%fit` line with `fit_parser()`, the `--code`
writer refuses what `script` says it cannot write, and the documentation's
reference is generated from the magics' parsers, so `--help`, the docs, the
sidebar's `%fit` line and `%tune` cannot drift apart. Imports nothing of
nbkeras, IPython or Keras.

Example:
    >>> [o.flags[-1] for o in trial_options()][:3]
    ['--epochs', '--batch-size', '--val']
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union


@dataclass(frozen=True)
class Option:
    """One training option.

    Attributes:
        flags: the option strings, as argparse takes them (`"-e", "--epochs"`).
        kwargs: argparse's keywords (type, default, metavar, help, ...).
        trial: True when each `%tune` trial takes it as `%fit` does, else why not.
        tune_help: the help under `%tune`, where it reads differently there.
        script: True when `--code` writes it out, else the message refusing it.
    """

    flags: Tuple[str, ...]
    kwargs: Dict[str, Any] = field(default_factory=dict)
    trial: Union[bool, str] = True
    tune_help: Optional[str] = None
    script: Union[bool, str] = True

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.flags[-1].lstrip("-").replace("-", "_")

    @property
    def flag(self) -> str:
        """The long flag (`--epochs`)."""
        return self.flags[-1]


def _o(*flags: str, trial: Union[bool, str] = True, tune_help: Optional[str] = None,
       script: Union[bool, str] = True, **kwargs) -> Option:
    return Option(tuple(flags), kwargs, trial, tune_help, script)


NO_TRIAL_FILE = "each trial would write over the one before; a trial's model is kept by %tune"

TRAINING: List[Option] = [
    _o("-e", "--epochs", type=int, default=10, help="Number of epochs (default 10)."),
    _o("-b", "--batch-size", type=int, default=32, help="Batch size (default 32)."),
    _o("--val", nargs="+", metavar="EXPR", help="Validation data: XVAL [YVAL].",
       tune_help="Validation data: XVAL [YVAL]. Without --val, --val-split or --cv, each "
                 "trial holds out the last 20%% of the samples (--val-split 0.2), unless "
                 "--objective names a training metric."),
    _o("--val-split", type=float, metavar="F",
       help="Fraction of the data held out for validation.",
       tune_help="Fraction of the samples (the last ones) each trial holds out for "
                 "validation."),
    _o("--no-shuffle", action="store_true", help="Keep the sample order."),
    _o("--class-weight", metavar="balanced|EXPR", help="'balanced' or a dict expression."),
    _o("--sample-weight", metavar="EXPR", help="Per-sample weights."),
    _o("--initial-epoch", type=int, metavar="N", help="Epoch to start counting from.",
       trial="a trial trains a new model from its first epoch"),
    _o("--resume", action="store_true", help="Continue the model's last run.",
       trial="%tune's own --resume continues a study"),
    _o("--steps-per-epoch", type=int, metavar="N", help="Batches per epoch."),
    _o("--early-stop", type=int, metavar="PATIENCE",
       help="Stop after PATIENCE epochs without improvement; restores the best weights.",
       tune_help="Stop a trial after PATIENCE epochs without improvement of the objective; "
                 "restores its best weights."),
    _o("--monitor", metavar="METRIC",
       help="Metric watched by --early-stop, --checkpoint and --reduce-lr.",
       trial="a trial watches the search's --objective"),
    _o("--checkpoint", metavar="PATH", help="Save the best model to PATH (atomically).",
       trial=NO_TRIAL_FILE),
    _o("--reduce-lr", type=int, metavar="PATIENCE", help="Reduce the learning rate on a plateau."),
    _o("--lr-schedule", metavar="KIND", help="cosine, exponential or step."),
    _o("--lr-decay", type=float, metavar="F",
       help="Decay rate (exponential) or factor (step)."),
    _o("--lr-step", type=int, metavar="N", help="Epochs between drops (step schedule)."),
    _o("--tensorboard", metavar="DIR", help="Write TensorBoard logs to DIR.",
       trial=NO_TRIAL_FILE),
    _o("--csv", metavar="PATH", help="Append each epoch's metrics to a CSV file.",
       trial=NO_TRIAL_FILE),
    _o("--seed", type=int, help="Seed of the initial weights, shuffling and dropout.",
       trial="%tune's own --seed seeds the sampler and each trial"),
    _o("--quiet", action="store_true", help="No live panel; a one-line summary at the end.",
       trial="%tune's own --quiet: the trials always train quietly"),
    _o("--update-interval", type=float, metavar="SECONDS",
       help="Least seconds between two batch redraws of the live panel.",
       trial="the trials draw in the search's display, not a panel of their own"),
    _o("--mixed-precision", action="store_true",
       help="Mixed precision: float16 on a GPU, bfloat16 on a CPU."),
    _o("--jit", action="store_true", help="Compile with XLA."),
    _o("--steps-per-execution", metavar="N|auto",
       help="Batches per compiled call (default: chosen by a probe)."),
    _o("--text", action="store_true", help="Force the plain-text progress view.",
       trial="the trials draw in the search's display, not a panel of their own"),
    _o("--cv", type=int, metavar="K",
       help="K-fold cross-validation: one copy per fold; returns a DataFrame.",
       tune_help="Score each trial by K-fold cross-validation (mean over folds).",
       script="--code writes one training run: drop --cv (cross-validation stays in the "
              "notebook)"),
    _o("--cv-shuffle", action="store_true",
       help="Shuffle before splitting the folds (with --seed).",
       tune_help="Shuffle before splitting the folds (on by itself with --seed)."),
    _o("--fine-tune", metavar="N|all",
       help="After the -e epochs of the head, unfreeze the top N layers of each frozen base "
            "(BatchNormalization stays frozen), compile again at a tenth of the learning rate "
            "and train on, in the same run.",
       script="--code writes one training phase: drop --fine-tune"),
    _o("--fine-tune-epochs", type=int, metavar="E",
       help="Epochs of the fine-tuning phase (default: as many as -e)."),
    _o("--fine-tune-lr", type=float, metavar="F",
       help="Learning rate of the fine-tuning phase (default: a tenth of the head's)."),
    _o("--devices", metavar="all|N|LIST",
       help="Train data-parallel over these devices (all, a count, or a list: 0,1 or "
            "gpu:0,gpu:1); --batch-size stays the global batch.",
       trial="--workers spreads the trials over the devices, one each"),
    _o("--code", action="store_true",
       help="Write and show a standalone Keras script of this training "
            "(nbkeras_code/NAME/train.py, data as .npy beside it); train nothing.",
       trial="a search is not one training run"),
    _o("--background", action="store_true",
       help="Train on a thread and return a job handle at once; the kernel stays free.",
       trial="a search runs its trials itself (--workers runs them in other processes)",
       script="--code trains nothing: drop --background"),
]

BY_DEST: Dict[str, Option] = {o.dest: o for o in TRAINING}


def trial_options() -> List[Option]:
    """The options each `%tune` trial takes as `%fit` does, in the table's order."""
    return [o for o in TRAINING if o.trial is True]


def declared(option: Option, magic: str = "fit") -> Tuple[Tuple[str, ...], Dict[str, Any]]:
    """`(flags, kwargs)` of an option as `magic` ("fit" or "tune") declares it."""
    kwargs = dict(option.kwargs)
    if magic == "tune" and option.tune_help is not None:
        kwargs["help"] = option.tune_help
    return option.flags, kwargs


@functools.lru_cache(maxsize=None)
def fit_parser() -> argparse.ArgumentParser:
    """`%fit`'s parser, built from the table without IPython (what `fitline`
    reads a run's options back with). The magic's own parser is built from
    the same table, with the same positionals."""
    parser = argparse.ArgumentParser(prog="%fit", add_help=False)
    for name, kwargs in FIT_POSITIONALS:
        parser.add_argument(name, **kwargs)
    for option in TRAINING:
        flags, kwargs = declared(option)
        parser.add_argument(*flags, **kwargs)
    return parser


FIT_POSITIONALS: List[Tuple[str, Dict[str, Any]]] = [
    ("name", {"help": "Name of the model to train."}),
    ("x", {"help": "Inputs: an expression (array, list/dict of arrays, DataFrame, dataset)."}),
    ("y", {"nargs": "?", "help": "Targets: an expression (omit for a dataset)."}),
]


def script_refusal(options: Dict[str, Any]) -> Optional[str]:
    """The message refusing `--code` for a run with these options, or None."""
    for option in TRAINING:
        if option.script is not True and options.get(option.dest) not in (None, False):
            return option.script
    return None


def refuse_for_trials(words: List[str], known) -> Optional[str]:
    """Why a `%tune` line cannot take one of its words: a `%fit` option that a
    trial does not take (and that `%tune` does not declare itself), or None.

    Example:
        >>> refuse_for_trials(["m", "x", "--code"], {"--trials"})
        '--code is a %fit option that %tune trials do not take: a search is not one training run'
    """
    for word in words:
        flag = word.split("=", 1)[0]
        if not flag.startswith("-") or flag in known:
            continue
        for option in TRAINING:
            if flag in option.flags and option.trial is not True:
                return f"{option.flag} is a %fit option that %tune trials do not take: " \
                       f"{option.trial}"
    return None
