"""The `nbkeras` console script.

`nbkeras tune-worker --storage URL --study NAME [--data PATH]` runs
trials of a `%tune` search in this process (see `nbkeras.tune.worker`);
`nbkeras serve PATH.keras [--name] [--host] [--port] [--token] [--workers N]`
serves a saved model over HTTP (see `nbkeras.serve.command`). Imports no
Keras until a subcommand needs it.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

COMMANDS = {
    "tune-worker": "run trials of a %tune search whose study lives in a shared storage",
    "serve": "serve a saved .keras model over HTTP (TensorFlow Serving's REST API)",
}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="nbkeras", description="nbkeras' command line.",
        epilog="; ".join(f"`nbkeras {k} --help`: {v}" for k, v in COMMANDS.items()))
    parser.add_argument("command", choices=sorted(COMMANDS), help="what to do")
    parser.parse_args(argv[:1])
    if argv[0] == "tune-worker":
        from .tune.worker import main as tune_worker
        return tune_worker(argv[1:])
    if argv[0] == "serve":
        from .serve.command import main as serve
        return serve(argv[1:])
    return 2  # pragma: no cover - argparse refused it already


if __name__ == "__main__":
    sys.exit(main())
