"""`%serve NAME`: the notebook's model behind an HTTP API, from the kernel.

The server runs on a thread of the kernel and serves a snapshot of the
model taken when `%serve` runs (a copy with the same weights): training
the model again changes nothing served until `%serve NAME` is run again,
which replaces the server on the same port. The cell shows the URL, a
`curl` example with a row of the model's input shape, and a live line
(requests served, rate, p50/p99 latency, errors) redrawn once a second
while it changes. `%serve --stop NAME` (or `%serve --stop` for all) and
the kernel's exit stop it and free the port.
"""

from __future__ import annotations

import atexit
import html
import json
import shlex
import threading
from typing import Dict, Optional

from ..errors import UsageError

_SERVERS: Dict[str, "Serving"] = {}
_LOCK = threading.Lock()


class Serving:
    """One `%serve`: the server thread, what it serves and the live line.

    Attributes:
        name: the model's notebook name.
        served: the `ServedModel` (its model is the snapshot).
        server: the `ServerThread`; `.url` and `.port` say where.
        stats: the `ServeStats` counting its predict requests.
    """

    def __init__(self, name, served, server, stats):
        self.name = name
        self.served = served
        self.server = server
        self.stats = stats
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"{self.server.url}/v1/models/{self.name}"

    def follow(self, updater, interval: float = 1.0) -> None:
        """Redraw the live line through `updater` every `interval` s while it changes."""
        def tick():
            last = None
            while not self._stop.wait(interval):
                line = self.stats.line()
                if line != last:
                    updater.update(_line_bundle(self.name, line))
                    last = line
            updater.update(_line_bundle(self.name, self.stats.line(), stopped=True))
        self._ticker = threading.Thread(target=tick, daemon=True, name=f"nbkeras-serve-{self.name}")
        self._ticker.start()

    def stop(self) -> None:
        self.server.stop()
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(5)


def run_serve(shell, args) -> None:
    """Body of `%serve`: start (or replace) a server, or stop one with --stop."""
    if args.stop:
        stopped = stop(args.name)
        print("Stopped serving " + ", ".join(f"`{n}`" for n in stopped) if stopped
              else "Nothing was being served")
        return None
    if not args.name:
        raise UsageError("give the model to serve: `%serve NAME` (or `%serve --stop NAME`)")
    from ..results.common import get_model
    from ..state import get_info
    from .app import create_app
    from .model import ServedModel
    from .runner import ServerThread, check_exposure
    from .stats import ServeStats
    model = get_model(shell, args.name, doing="serve")
    check_exposure(args.host, args.token, args.no_token)
    info = get_info(model, args.name)
    from ..results.common import output_kind
    served = ServedModel(snapshot(model), args.name, kind=output_kind(model),
                         class_names=info.extra.get("class_names"), spec=info.spec_text,
                         run_id=info.run_ids[-1] if info.run_ids else None,
                         version=info.version_id)
    old = servers().get(args.name)
    if old is not None and old.server.port == args.port:
        stop(args.name)  # the same port: the old server frees it first
    stats = ServeStats()
    app = create_app(served, token=args.token, window_ms=args.window_ms,
                     max_batch=args.max_batch, max_body=args.max_body, stats=stats)
    serving = Serving(args.name, served, ServerThread(app, args.host, args.port), stats)
    with _LOCK:  # another port: the old server stops once the new one listens
        old = _SERVERS.get(args.name)
        _SERVERS[args.name] = serving
    if old is not None and old is not serving:
        old.stop()
    _show(serving, args.token, shell)
    return None


def stop(name: Optional[str] = None) -> list:
    """Stop the server of `name` (all when None); the names stopped."""
    with _LOCK:
        names = [name] if name else list(_SERVERS)
        found = [(n, _SERVERS.pop(n)) for n in names if n in _SERVERS]
    for _, serving in found:
        serving.stop()
    return [n for n, _ in found]


def servers() -> Dict[str, Serving]:
    """The servers running in this kernel, by model name."""
    with _LOCK:
        return dict(_SERVERS)


atexit.register(stop)


def snapshot(model):
    """A copy of `model` with its current weights, which later training leaves alone."""
    from ..backend import import_keras
    keras = import_keras()
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        return copy
    except Exception:  # a subclassed model that cannot be cloned: round trip a file
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "snapshot.keras")
            model.save(path)
            return keras.saving.load_model(path, compile=False)


def curl_example(serving: Serving, token: Optional[str]) -> str:
    body = json.dumps({"instances": [serving.served.example_row()]}, separators=(",", ":"))
    auth = f" -H 'Authorization: Bearer {token}'" if token else ""
    return f"curl{auth} -d {shlex.quote(body)} {serving.url}:predict"


def _line_bundle(name: str, line: str, stopped: bool = False) -> Dict[str, str]:
    text = f"`{name}`: {line}" + (" (stopped)" if stopped else "")
    return {"text/plain": text,
            "text/html": f"<div style='font-variant-numeric:tabular-nums'>{html.escape(text)}</div>"}


def _show(serving: Serving, token: Optional[str], shell) -> None:
    from IPython.display import display
    from ..view.publish import OutputUpdater
    curl = curl_example(serving, token)
    if len(curl) > 2000:
        curl = curl[:200] + " ... (a row of zeros of the input's shape)"
    intro = (f"Serving `{serving.name}` at {serving.url}:predict (TensorFlow Serving REST API; "
             f"docs at {serving.server.url}/docs). It serves a snapshot: training "
             f"`{serving.name}` again changes nothing here until `%serve {serving.name}` runs "
             f"again. Stop with `%serve --stop {serving.name}`.")
    display({"text/plain": f"{intro}\n{curl}",
             "text/html": f"<div>{html.escape(intro)}</div><pre style='white-space:pre-wrap'>"
                          f"{html.escape(curl)}</pre>"}, raw=True)
    handle = display(_line_bundle(serving.name, serving.stats.line()), raw=True, display_id=True)
    if handle is not None:
        serving.follow(OutputUpdater(handle, shell))
