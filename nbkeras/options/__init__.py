"""The training options of `%fit` and `%tune`, declared once.

`training.py` is the table every reader uses (the magics' `@argument`s, the
`%tune` trials, the `--code` writer, the documentation's reference);
`fitline.py` reads a recorded run's options back into its `%fit` line. The
lowest layer of the package beside `errors`: imports no other part of
nbkeras, no IPython and no Keras.
"""
