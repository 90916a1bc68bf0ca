"""The JupyterLab sidebar's data: a small authenticated JSON API over the registry.

The sidebar runs in the browser and cannot open the SQLite file, so the
Jupyter server reads it on the browser's behalf. The handlers stay thin:
they check parameters, call `nbkeras.registry.get_registry()` and return its
answers as JSON. Every shaping of data lives in the registry.

Routes (under the server's base URL):

- ``GET /nbkeras/api/runs[?since=CURSOR][&model=NAME][&limit=N]``:
  ``{"runs": [...], "cursor": N}``, newest first; with ``since`` only the runs
  that changed after that cursor value, so polling costs next to nothing.
  Each run carries ``"directions": {metric: "min" | "max"}`` for every score
  in its ``last`` and ``best``, so the sidebar keeps no list of its own.
  With ``since``, ``"deleted": [ids]`` lists the runs deleted after it.
  A `%tune` trial or a `%fit --cv` fold also carries ``"group"``:
  ``study``, ``trial``, ``values`` (space -> value), ``objective`` and
  ``direction`` for a trial; ``cv_group``, ``fold`` and ``folds`` for a fold
  (a `%tune --cv` trial has both); ``restored_epoch`` and, where early
  stopping restored an epoch, ``held``: that epoch's metrics (elsewhere
  ``last`` is what the run holds). Every run whose model holds an earlier
  epoch than its last carries ``kept_epoch`` and ``kept`` (that epoch's
  metrics): the run's result.
- ``GET /nbkeras/api/runs/<id>``: one run with its per-epoch history,
  options, evaluations, the spec text of its model version and
  ``"fit_line"``: the `%fit` line that produced it (non-default flags only).
- ``DELETE /nbkeras/api/runs/<id>``: deletes the run (its rows leave the
  file); ``{"deleted": [id]}``.
- ``PATCH /nbkeras/api/runs/<id>`` with ``{"starred": true|false}``: stars
  (pins) or unstars the run; ``{"id": id, "starred": bool}``.
- ``DELETE /nbkeras/api/versions/<id>``: deletes a model version and every
  run trained from it; ``{"version_id", "name", "runs": [ids]}``.
- ``GET /nbkeras/api/versions/<id>/spaces``: the search spaces of the
  version's spec, ``{"spaces": [{"name", "kind", "choices", "low", "high",
  "step", "log", "text"}, ...]}``, which the sidebar's study view draws its
  axes from (categories for a choice, a log axis for ``:log``).

Errors are JSON ``{"code": status, "message": text}``: 403 without a valid
token, 400 for a malformed parameter or body, 404 for an unknown run,
version or route.

GETs never write. Besides the user's deletions and stars, the server writes
on a timer: every
`MARK_INTERRUPTED_EVERY_S` seconds it records the runs of dead kernels as
interrupted (`Registry.mark_interrupted`), off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

import tornado.web
from tornado.ioloop import PeriodicCallback
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .registry import get_registry
from .options.fitline import fit_line

NAMESPACE = ("nbkeras", "api")
MARK_INTERRUPTED_EVERY_S = 30.0


class BaseHandler(APIHandler):
    """Maps every error to JSON ``{code, message}``, never a traceback."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        message = self._reason or "error"
        if exc_info is not None:
            exc = exc_info[1]
            if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            elif not isinstance(exc, tornado.web.HTTPError):
                status_code = 500
                message = "nbkeras could not read its registry; see the server log"
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"code": status_code, "message": message}))

    def send(self, payload: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload, default=str))

    def int_argument(self, name: str, minimum: int = 0) -> Optional[int]:
        """The query parameter `name` as an int, or None when absent.

        Raises:
            tornado.web.HTTPError: 400 when it is not a whole number >= minimum.
        """
        raw = self.get_query_argument(name, None)
        if raw is None:
            return None
        try:
            value = int(raw.strip())
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise tornado.web.HTTPError(
                400, "%s must be a whole number >= %d, got %r", name, minimum, raw)
        return value

    async def read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Calls the registry reader `method` off the event loop (SQLite may
        wait for a writer's lock)."""
        reader = getattr(get_registry(), method)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: reader(*args, **kwargs))

    # writes go the same way: off the loop (a kernel may hold the write lock)
    registry_write = read

    def id_argument(self, raw: str, what: str = "run") -> int:
        """A path id as an int.

        Raises:
            tornado.web.HTTPError: 400 when it is not a whole number.
        """
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0:
            raise tornado.web.HTTPError(400, "a %s id is a whole number, got %r", what, raw)
        return value


class RunsHandler(BaseHandler):
    """``GET /nbkeras/api/runs``: run summaries, newest first, and the cursor."""

    @tornado.web.authenticated
    async def get(self) -> None:
        since = self.int_argument("since")
        limit = self.int_argument("limit", minimum=1)
        model = self.get_query_argument("model", None)
        if model is not None and not model.strip():
            raise tornado.web.HTTPError(400, "model must be a model name, got an empty value")
        # The cursor is read first: a change landing between the two reads is
        # sent now and again on the next poll, never lost.
        cursor = await self.read("cursor")
        runs = await self.read("run_summaries", model=model, since=since, limit=limit)
        payload = {"runs": runs, "cursor": cursor}
        if since is not None:
            payload["deleted"] = await self.read("deleted_since", since)
        self.send(payload)


class RunHandler(BaseHandler):
    """``/nbkeras/api/runs/<id>``: GET one run with history, options, spec;
    DELETE it; PATCH its star."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        rid = self.id_argument(run_id)
        run = await self.read("run", rid)
        if run is None:
            raise tornado.web.HTTPError(404, "no run with id %d", rid)
        run["fit_line"] = fit_line(run["model"], run.get("options"))
        self.send(run)

    @tornado.web.authenticated
    async def delete(self, run_id: str) -> None:
        rid = self.id_argument(run_id)
        deleted = await self.registry_write("delete_runs", [rid])
        if not deleted:
            raise tornado.web.HTTPError(404, "no run with id %d", rid)
        self.send({"deleted": deleted})

    @tornado.web.authenticated
    async def patch(self, run_id: str) -> None:
        rid = self.id_argument(run_id)
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("starred"), bool):
            raise tornado.web.HTTPError(400, 'the body must be {"starred": true|false}')
        if not await self.registry_write("set_starred", rid, body["starred"]):
            raise tornado.web.HTTPError(404, "no run with id %d", rid)
        self.send({"id": rid, "starred": body["starred"]})


class VersionHandler(BaseHandler):
    """``DELETE /nbkeras/api/versions/<id>``: a model version and its runs."""

    @tornado.web.authenticated
    async def delete(self, version_id: str) -> None:
        vid = self.id_argument(version_id, "model version")
        result = await self.registry_write("delete_model_version", vid)
        if result is None:
            raise tornado.web.HTTPError(404, "no model version with id %d", vid)
        self.send(result)


class SpacesHandler(BaseHandler):
    """``GET /nbkeras/api/versions/<id>/spaces``: the version's search spaces."""

    @tornado.web.authenticated
    async def get(self, version_id: str) -> None:
        vid = self.id_argument(version_id, "model version")
        spaces = await self.read("version_spaces", vid)
        if spaces is None:
            raise tornado.web.HTTPError(404, "no model version with id %d", vid)
        self.send({"spaces": spaces})


class NotFoundHandler(BaseHandler):
    """Any other path under ``/nbkeras/api/``: a JSON 404."""

    @tornado.web.authenticated
    def get(self, path: str) -> None:
        raise tornado.web.HTTPError(404, "no such nbkeras API route: %r", path)


def setup_handlers(web_app: tornado.web.Application) -> None:
    """Adds the nbkeras routes to the server's tornado application."""
    base = url_path_join(web_app.settings["base_url"], *NAMESPACE)
    web_app.add_handlers(".*$", [
        (url_path_join(base, "runs") + "/?", RunsHandler),
        (url_path_join(base, "runs", "([^/]+)") + "/?", RunHandler),
        (url_path_join(base, "versions", "([^/]+)") + "/?", VersionHandler),
        (url_path_join(base, "versions", "([^/]+)", "spaces") + "/?", SpacesHandler),
        (url_path_join(base, "(.*)"), NotFoundHandler),
    ])


class InterruptedMarker:
    """Every `every_s` seconds, records the runs of dead kernels as
    interrupted (`Registry.mark_interrupted`), in a worker thread: SQLite may
    wait up to its busy timeout for a kernel's write lock.

    Until a tick records it, a read already reports such a run as
    interrupted; the tick makes it permanent and changes its `seq`.
    """

    def __init__(self, every_s: float = MARK_INTERRUPTED_EVERY_S, log=None):
        self.log = log
        self._callback = PeriodicCallback(self.tick, every_s * 1000)
        self._inflight: Optional[asyncio.Future] = None

    def start(self) -> None:
        self._callback.start()

    @property
    def running(self) -> bool:
        return self._callback.is_running()

    async def tick(self) -> list:
        """One marking; returns the ids of the runs it recorded."""
        if self._inflight is not None:  # the previous one still waits for a lock
            return []
        loop = asyncio.get_running_loop()
        self._inflight = loop.run_in_executor(None, lambda: get_registry().mark_interrupted())
        try:
            marked = await self._inflight
        finally:
            self._inflight = None
        if marked and self.log is not None:
            self.log.info("nbkeras: runs %s were interrupted (their kernels died)",
                          ", ".join(map(str, marked)))
        return marked

    async def stop(self) -> None:
        """Stops the timer and waits for a marking in progress."""
        self._callback.stop()
        if self._inflight is not None:
            try:
                await self._inflight
            except Exception:  # noqa: BLE001 - shutting down
                pass


def _load_jupyter_server_extension(serverapp) -> None:
    """Called by jupyter_server when the `nbkeras` server extension is enabled."""
    setup_handlers(serverapp.web_app)
    marker = InterruptedMarker(MARK_INTERRUPTED_EVERY_S, serverapp.log)
    marker.start()
    serverapp.web_app.settings["nbkeras_marker"] = marker
    # A module extension gets no shutdown hook of its own (only ExtensionApps
    # do): stop the timer when the server cleans up its extensions.
    cleanup_extensions = getattr(serverapp, "cleanup_extensions", None)
    if cleanup_extensions is not None:
        async def stop_marker_then_cleanup() -> None:
            await marker.stop()
            await cleanup_extensions()

        serverapp.cleanup_extensions = stop_marker_then_cleanup
    serverapp.log.info("nbkeras: serving runs at %s",
                       url_path_join(serverapp.web_app.settings["base_url"], *NAMESPACE))


# jupyter_server < 2 looked for this name.
load_jupyter_server_extension = _load_jupyter_server_extension
