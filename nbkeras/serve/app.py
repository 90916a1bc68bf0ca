"""The HTTP side of a served model: TensorFlow Serving's REST API on FastAPI.

`create_app(served)` returns an ASGI app (run it with uvicorn) with
`POST /v1/models/NAME:predict`, `GET /v1/models/NAME`,
`GET /v1/models/NAME/metadata`, `GET /healthz` and OpenAPI documentation
at `/docs`. Handlers are thin: `ServedModel` checks and answers, `Batcher`
predicts. Every error is `{"error": "one line"}` with its status: 400
malformed JSON, 401 a missing or wrong token, 404 an unknown model or
route, 413 a body over the limit, 422 data the model cannot take, 500 the
model failed (no traceback is sent). The body is read as bytes and parsed
here, never evaluated: nothing a client sends reaches a namespace or a file.
"""

# (no `from __future__ import annotations`: FastAPI reads the handlers' annotations)

import contextlib
import hmac
import json
import time
from typing import Optional

import numpy as np

from .batcher import Batcher
from .model import BadInput, ServedModel
from .stats import ServeStats

DEFAULT_MAX_BODY = 10 * 1024 * 1024
OPEN_PATHS = ("/healthz",)  # answered without the token (liveness probes)

_PREDICT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "description": 'Row form {"instances": [row, ...]} or columnar form '
                       '{"inputs": columns} (an object of named inputs for a model with '
                       "several), as TensorFlow Serving's REST API.",
        "properties": {"instances": {"type": "array", "items": {}},
                       "inputs": {}},
        "example": {"instances": [[0.0, 0.0]]}}}},
}


def require_serve_packages() -> None:
    """A one-line `UsageError` when FastAPI or uvicorn is not installed."""
    import importlib.util
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        from ..errors import UsageError
        raise UsageError(f"serving needs {' and '.join(missing)}: "
                         "`pip install 'nbkeras[serve]'`")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(served: ServedModel, token: Optional[str] = None, window_ms: float = 2.0,
               max_batch: int = 256, max_body: int = DEFAULT_MAX_BODY,
               stats: Optional[ServeStats] = None):
    """The ASGI app serving `served`.

    Args:
        served: the model and its metadata.
        token: when given, every request but `/healthz` needs
            `Authorization: Bearer TOKEN` (compared in constant time).
        window_ms: the batching window (see `nbkeras.serve.batcher`).
        max_batch: the most rows predicted in one call.
        max_body: the largest request body in bytes. Defaults to 10 MB.
        stats: where predict requests are counted (a new one when None).

    Returns:
        a FastAPI app; `app.state.stats` and `app.state.batcher` hold the
        counters and the batcher.

    Example:
        >>> import uvicorn
        >>> uvicorn.run(create_app(ServedModel(model, "digits")), port=8501)
    """
    require_serve_packages()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    batcher = Batcher(served.predict_arrays, window_ms=window_ms, max_batch=max_batch)
    stats = stats or ServeStats()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    app = FastAPI(title=f"nbkeras: {served.name}", version=str(served.version),
                  description=f"Predictions of the Keras model `{served.name}` "
                              "(TensorFlow Serving's REST API).", lifespan=lifespan)
    app.state.stats = stats
    app.state.batcher = batcher
    app.state.served = served

    def error(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HttpError)
    async def _http_error(request, exc: HttpError):
        return error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request, exc):
        message = {404: f"no route {request.method} {request.url.path}; this server answers "
                        f"/v1/models/{served.name}:predict, /v1/models/{served.name}, "
                        f"/v1/models/{served.name}/metadata, /healthz and /docs"}.get(
            exc.status_code, str(exc.detail))
        return error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        return error(422, "; ".join(str(e.get("msg")) for e in exc.errors()) or "bad request")

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):
        return error(500, _one_line(exc))

    def check_name(name: str) -> None:
        if name != served.name:
            raise HttpError(404, f"no model named {name!r}; this server serves "
                                 f"{served.name!r}")

    @app.post(f"/v1/models/{{name}}:predict", openapi_extra={"requestBody": _PREDICT_BODY},
              summary="Predict (TensorFlow Serving REST API)")
    async def predict(name: str, request: Request):
        check_name(name)
        with batcher.arrive():
            body = _parse_json(await _read_body(request, max_body))
            try:
                parsed = served.parse(body)
            except BadInput as e:
                raise HttpError(422, str(e))
        try:
            outs = await batcher.submit(parsed["arrays"], parsed["rows"])
        except Exception as e:
            raise HttpError(500, f"the model failed: {_one_line(e)}")
        if not all(np.isfinite(o).all() for o in outs if o.dtype.kind == "f"):
            raise HttpError(500, "the model's output holds NaN or an infinity; its weights "
                                 "may have diverged in training")
        return _json_response(served.answer(outs, parsed["form"]))

    @app.get("/v1/models/{name}", summary="Model status")
    async def status(name: str):
        check_name(name)
        return {"model_version_status": [{
            "version": str(served.version), "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]}

    @app.get("/v1/models/{name}/metadata", summary="Inputs, outputs, classes, spec, run")
    async def metadata(name: str):
        check_name(name)
        return served.metadata()

    @app.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok", "model": served.name}

    return _Guard(app, token, stats)


class _Guard:
    """Plain ASGI wrapper: the token check and the predict counters, before
    any routing (cheaper than an HTTP middleware, which copies each body).

    Attributes:
        app: the FastAPI app inside (its `state` holds stats and batcher).
    """

    def __init__(self, app, token: Optional[str], stats: ServeStats):
        self.app = app
        self.state = app.state
        self._expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self._expected is not None and path not in OPEN_PATHS:
            got = b""
            for key, value in scope.get("headers", ()):
                if key == b"authorization":
                    got = value
            if not hmac.compare_digest(got, self._expected):
                return await _send_json(send, 401, {
                    "error": "a token is needed: send the header `Authorization: Bearer TOKEN` "
                             "with the token the server was started with"},
                    [(b"www-authenticate", b"Bearer")])
        if not path.endswith(":predict"):
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [500]

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.state.stats.record(time.perf_counter() - start, 200 <= status[0] < 300)


async def _send_json(send, status: int, obj, headers=()) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(request, limit: int) -> bytes:
    too_big = (f"the body is over the limit of {limit:,} bytes; send fewer rows per request "
               "(or start the server with a larger --max-body)")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HttpError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise HttpError(400, f"the body is not JSON ({e}); send "
                             '{"instances": [[...], ...]} with Content-Type: application/json')


def _json_response(obj):
    from fastapi.responses import Response
    return Response(json.dumps(obj, separators=(",", ":")), media_type="application/json")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
