"""Serving figures: requests per second and p50/p99 latency at concurrency 1
and 32, `nbkeras serve` against a hand-written Flask app that calls
`model.predict` once per request (the pattern of the usual "put your model
behind a /predict route" article), same model, same machine, one run.

The model is a small MLP on scikit-learn's digits (64 -> 64 relu -> 10
softmax), saved once as a .keras file that both servers load. Each server
runs in a process of its own; the load comes from this process (asyncio +
a small HTTP/1.1 client on asyncio streams, one row per request,
keep-alive connections), so on a small
machine the client competes with the server for the CPU, alike for both.
Each cell runs for `--requests` requests or `--seconds` seconds, whichever
ends first, after a warm-up.

Run: `.venv/bin/python benchmarks/bench_serve.py`; needs the `bench` and
`serve` extras (Flask, FastAPI, uvicorn); writes
`benchmarks/results/serve.json` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = pathlib.Path(__file__).resolve().parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

FLASK_APP = textwrap.dedent('''
    import sys
    import keras, numpy as np
    from flask import Flask, jsonify, request
    model = keras.saving.load_model(sys.argv[1])
    app = Flask(__name__)

    @app.route("/predict", methods=["POST"])
    def predict():
        x = np.array(request.get_json()["instances"], dtype="float32")
        return jsonify({"predictions": model.predict(x, verbose=0).tolist()})

    print("ready", flush=True)
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_model(folder: pathlib.Path) -> pathlib.Path:
    import keras
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,), name="pixels"),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X / 16.0, y, epochs=3, verbose=0)
    path = folder / "digits.keras"
    model.save(path)
    return path


def start_nbkeras(path: pathlib.Path, window_ms: float) -> tuple:
    proc = subprocess.Popen([sys.executable, "-m", "nbkeras.cli", "serve", str(path),
                             "--port", "0", "--window-ms", str(window_ms)],
                            stdout=subprocess.PIPE, text=True, env=ENV)
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/v1/models/digits:predict)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"nbkeras serve did not start: {line!r}")
    return proc, match.group(1)


def start_flask(path: pathlib.Path, folder: pathlib.Path) -> tuple:
    script = folder / "flask_app.py"
    script.write_text(FLASK_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    proc.stdout.readline()
    url = f"http://127.0.0.1:{port}/predict"
    wait_up(url)
    return proc, url


def wait_up(url: str, timeout: float = 120) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.post(url, json={"instances": [[0.0] * 64]}, timeout=30)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


async def _connection(host: str, port: int, path: str, bodies, state: dict, latencies: list):
    """One client connection: keep-alive HTTP/1.1 requests one after another
    (reconnecting when the server closes, as Flask's HTTP/1.0 server does)."""
    reader = writer = None
    while state["sent"] < state["limit"] and time.perf_counter() < state["deadline"]:
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port)
        body = bodies[state["sent"] % len(bodies)]
        state["sent"] += 1
        request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                   "\r\n").encode() + body
        t0 = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in fields:
            await reader.readexactly(int(fields["content-length"]))
        else:
            await reader.read()  # the body runs to the end of the connection
        latencies.append(time.perf_counter() - t0)
        state["errors"] += lines[0].split(" ")[1] != "200"
        if lines[0].startswith("HTTP/1.0") or fields.get("connection", "").lower() == "close" \
                or "content-length" not in fields:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(url: str, concurrency: int, requests: int, seconds: float, rows) -> dict:
    """`concurrency` connections sending one row per request until `requests` are
    sent or `seconds` pass. The client is hand-written on asyncio streams: httpx's
    AsyncClient spent more CPU per request than the server (63 req/s on /healthz at
    concurrency 32 where this client gets about 900) and measured itself."""
    hostport, _, path = url[len("http://"):].partition("/")
    host, port = hostport.rsplit(":", 1)
    bodies = [json.dumps({"instances": [row]}).encode() for row in rows]
    state = {"sent": 0, "limit": requests, "deadline": time.perf_counter() + seconds,
             "errors": 0}
    latencies: list = []
    start = time.perf_counter()
    await asyncio.gather(*(_connection(host, int(port), "/" + path, bodies, state, latencies)
                           for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"requests": len(latencies), "errors": state["errors"], "seconds": round(elapsed, 2),
            "rps": round(len(latencies) / elapsed, 1), "p50_ms": round(pct(0.5), 2),
            "p99_ms": round(pct(0.99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per cell (default 2000)")
    parser.add_argument("--seconds", type=float, default=20, help="per cell (default 20)")
    parser.add_argument("--window-ms", type=float, default=2.0)
    args = parser.parse_args()
    from sklearn.datasets import load_digits
    rows = (load_digits().data / 16.0).tolist()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average": os.getloadavg()},
               "model": "MLP 64 -> 64 relu -> 10 softmax", "cells": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        path = save_model(folder)
        for server in ("nbkeras", "flask"):
            proc, url = (start_nbkeras(path, args.window_ms) if server == "nbkeras"
                         else start_flask(path, folder))
            try:
                wait_up(url)
                asyncio.run(load(url, 4, 40, 30, rows))  # warm-up: traces, connections
                for concurrency in (1, 32):
                    cell = asyncio.run(load(url, concurrency, args.requests, args.seconds, rows))
                    cell.update(server=server, concurrency=concurrency)
                    results["cells"].append(cell)
                    print(f"{server:8} c={concurrency:<3} {cell['rps']:8.1f} req/s  "
                          f"p50 {cell['p50_ms']:7.2f} ms  p99 {cell['p99_ms']:7.2f} ms  "
                          f"({cell['requests']} requests, {cell['errors']} errors)", flush=True)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    results["machine"]["load_average_after"] = os.getloadavg()
    out = HERE / "results" / "serve.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
