"""One table of training options (`nbkeras.options.training`): `%fit --help`,
`%tune --help`, the `%fit` line the sidebar shows, the `--code` writer's
refusals and every `%tune` trial read the same declaration."""

import numpy as np
import pytest

from nbkeras.errors import UsageError
from nbkeras.magics import NbkerasMagics
from nbkeras.options.fitline import fit_line
from nbkeras.options.training import TRAINING, fit_parser, trial_options


def _actions(parser):
    return {a.dest: (tuple(a.option_strings), a.default, a.nargs, a.help, a.metavar)
            for a in parser._actions if a.dest != "help"}


def test_fit_help_is_the_table():
    fit = _actions(NbkerasMagics.fit.parser)
    assert fit == _actions(fit_parser())  # what fitline reads runs back with
    for option in TRAINING:
        flags, default, _, help_ = fit[option.dest][:4]
        assert (flags, help_) == (option.flags, option.kwargs["help"])
    assert len(fit) == len(TRAINING) + 3  # and the name, x and y


def test_tune_declares_every_option_a_trial_takes_and_no_other():
    tune = NbkerasMagics.tune.parser
    flags = set(tune._option_string_actions)
    for option in TRAINING:
        takes = all(f in flags for f in option.flags)
        own = option.flag in ("--seed", "--quiet", "--resume")  # %tune's own meaning
        assert takes == (option.trial is True or own), option.flag
    assert "trial holds out the last 20%" in tune.format_help()  # its own help text


def test_tune_refuses_a_fit_option_a_trial_cannot_take_saying_why(ip):
    for line, why in (("m x y --checkpoint best.keras", "each trial would write over"),
                      ("m x y --devices all", "--workers spreads the trials"),
                      ("m x y --background", "a search runs its trials itself")):
        with pytest.raises(UsageError, match=why):
            ip.run_line_magic("tune", line)


def test_the_code_writer_refuses_what_the_table_says(ip):
    ip.user_ns.update(x=np.zeros((8, 3), "float32"), y=np.zeros(8, "int64"))
    ip.run_cell_magic("model", "m", "input 3\ndense 2 softmax")
    with pytest.raises(UsageError, match="drop --cv"):
        ip.run_line_magic("fit", "m x y --cv 2 --code")


def test_fit_line_reads_a_run_back_through_the_table():
    options = vars(fit_parser().parse_args(["d", "x", "y", "-e", "20", "--lr-schedule", "cosine",
                                            "--jit", "--val", "xv", "yv"]))
    assert fit_line("d", options) == "%fit d x y -e 20 --val xv yv --lr-schedule cosine --jit"


DATA = """
import numpy as np
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:200] / 16).astype('float32'); y = d.target[:200]
w = np.where(y < 5, 1.0, 0.5).astype('float32')
"""


def test_each_trial_trains_with_every_option_of_the_tune_line(ip):
    pytest.importorskip("optuna")
    import nbkeras
    ip.run_cell(DATA).raise_error()
    ip.run_cell("%%model tn\ninput 64\ndense {4, 8}@width relu\ndense 10 softmax").raise_error()
    ip.run_line_magic("tune", "tn x y --trials 2 -e 2 --seed 1 --lr-schedule cosine "
                              "--sample-weight w --steps-per-epoch 2 --no-shuffle --quiet")
    trials = [r for r in nbkeras.runs(model="tn") if r.get("study") == "tn"]
    assert len(trials) == 2
    for run in trials:
        options = run["options"]
        assert (options["lr_schedule"], options["sample_weight"], options["steps_per_epoch"],
                options["no_shuffle"]) == ("cosine", "w", 2, True)
        assert "--lr-schedule cosine" in fit_line("tn", options)
    assert {o.dest for o in trial_options()} <= set(trials[0]["options"])
