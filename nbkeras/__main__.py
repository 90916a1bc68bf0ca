"""`python -m nbkeras ...`: the `nbkeras` command (see `nbkeras.cli`), for a
folder written by `%export NAME DIR --format service`, whose Dockerfile runs
`python -m nbkeras serve` with nbkeras' source beside the model."""

import sys

from .cli import main

sys.exit(main())
