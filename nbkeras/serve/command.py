"""`nbkeras serve PATH.keras`: a saved model behind TensorFlow Serving's REST API.

The same app as `%serve` (`nbkeras.serve.app`), as a process of its own
for a machine or a container. `--workers N` runs N server processes on one
socket (uvicorn's own supervisor); each loads the model and batches its
own requests. The token may come from `--token` or, so that it stays out
of `ps`, from the environment variable `NBKERAS_TOKEN`.

Example:
    $ NBKERAS_TOKEN=s3cret nbkeras serve digits.keras --host 0.0.0.0 --port 8501
    $ curl -H "Authorization: Bearer s3cret" -d '{"instances": [[0, ...]]}' \\
          http://HOST:8501/v1/models/digits:predict
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import List, Optional

from ..errors import NbkerasError, UsageError
from .app import DEFAULT_MAX_BODY

CONFIG_ENV = "NBKERAS_SERVE_CONFIG"  # how the parent hands the options to --workers processes
TOKEN_ENV = "NBKERAS_TOKEN"


def build_parser(prog: str = "nbkeras serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Serve a saved Keras model over HTTP (TensorFlow Serving's "
                               "REST API: POST /v1/models/NAME:predict).")
    parser.add_argument("path", help="the model: a .keras file")
    parser.add_argument("--name", help="the name in the URL (default: the file's stem)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs "
                             "--token or --no-token)")
    parser.add_argument("--port", type=int, default=8501, help="default 8501; 0 picks a free one")
    parser.add_argument("--token", help=f"clients must send `Authorization: Bearer TOKEN` "
                                        f"(default: ${TOKEN_ENV} when set)")
    parser.add_argument("--no-token", action="store_true",
                        help="serve on a non-loopback address without a token (warns)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--window-ms", type=float, default=2.0,
                        help="batching window in milliseconds (default 2)")
    parser.add_argument("--max-batch", type=int, default=256,
                        help="most rows in one predict call (default 256)")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                        help=f"largest request body in bytes (default {DEFAULT_MAX_BODY:,})")
    parser.add_argument("--metadata", metavar="FILE",
                        help="JSON with class_names, spec, run_id and version to serve with it")
    return parser


def main(argv: Optional[List[str]] = None, prog: str = "nbkeras serve") -> int:
    """Serve until interrupted; returns the exit status (2: a one-line usage error)."""
    args = build_parser(prog).parse_args(argv)
    if args.token is None and os.environ.get(TOKEN_ENV):
        args.token = os.environ[TOKEN_ENV]
    try:
        return _serve(args)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on
        return 0
    except NbkerasError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


def _serve(args) -> int:
    from .app import require_serve_packages
    from .runner import bind, check_exposure, url_host
    require_serve_packages()
    check_exposure(args.host, args.token, args.no_token,
                   warn=lambda m: print(m, file=sys.stderr, flush=True))
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: give 1 or more")
    path = pathlib.Path(args.path)
    if not path.is_file():
        raise UsageError(f"`{args.path}` is not a file; give a model saved with "
                         "`%export NAME PATH.keras` or `model.save(PATH.keras)`")
    config = {"path": str(path.resolve()), "name": args.name or path.stem,
              "token": args.token, "window_ms": args.window_ms, "max_batch": args.max_batch,
              "max_body": args.max_body, "metadata": args.metadata}
    import uvicorn
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    where = f"http://{url_host(args.host)}:{port}/v1/models/{config['name']}"
    if args.workers == 1:
        app = build_app(config)  # load before saying it serves
        print(f"Serving `{config['name']}` ({path.name}) at {where}:predict "
              f"(metadata: {where}/metadata, docs: http://{url_host(args.host)}:{port}/docs)",
              flush=True)
        uvicorn.Server(_config(app)).run(sockets=[sock])
        return 0
    from uvicorn.supervisors import Multiprocess
    os.environ[CONFIG_ENV] = json.dumps(config)
    config_w = _config("nbkeras.serve.command:app_from_env", factory=True, workers=args.workers)
    print(f"Serving `{config['name']}` ({path.name}) at {where}:predict with "
          f"{args.workers} worker processes", flush=True)
    import inspect
    extra = {}
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.30
        extra["target"] = uvicorn.Server(config_w).run
    Multiprocess(config_w, sockets=[sock], **extra).run()
    return 0


def _config(app, **kwargs):
    import uvicorn
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                          timeout_graceful_shutdown=5, **kwargs)


def load_served(path: str, name: str, metadata: Optional[str] = None):
    """A `ServedModel` for a .keras file (and an optional metadata JSON file)."""
    from ..backend import import_keras
    from .model import ServedModel
    keras = import_keras()
    try:
        model = keras.saving.load_model(path)
    except Exception as e:
        raise UsageError(f"cannot load `{path}` as a Keras model: {e}") from None
    meta = {}
    if metadata:
        try:
            meta = json.loads(pathlib.Path(metadata).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"--metadata `{metadata}`: {e}") from None
    return ServedModel(model, name, class_names=meta.get("class_names"),
                       spec=meta.get("spec", ""), run_id=meta.get("run_id"),
                       version=meta.get("version"))


def build_app(config: dict):
    from .app import create_app
    served = load_served(config["path"], config["name"], config.get("metadata"))
    return create_app(served, token=config.get("token"), window_ms=config["window_ms"],
                      max_batch=config["max_batch"], max_body=config["max_body"])


def app_from_env():
    """The app of one `--workers` process (uvicorn calls it as a factory)."""
    return build_app(json.loads(os.environ[CONFIG_ENV]))
