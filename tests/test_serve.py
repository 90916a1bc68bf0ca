"""Serving over HTTP: `create_app` on a real uvicorn server, `nbkeras serve`
as a subprocess and `%serve` in the shell, all driven by real HTTP requests.

Oracle: every prediction is compared with `model.predict` on the same rows.
"""

import concurrent.futures
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

keras = pytest.importorskip("keras")

import nbkeras  # noqa: E402
from nbkeras.errors import UsageError  # noqa: E402
from nbkeras.serve import ServedModel, create_app  # noqa: E402
from nbkeras.serve.runner import ServerThread, check_exposure  # noqa: E402

TIMEOUT = httpx.Timeout(60.0)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype("float32"), y


@pytest.fixture(scope="module")
def model(digits):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((64,), name="pixels"),
                          keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    X, y = digits
    m.fit(X[:300], y[:300], epochs=1, verbose=0)
    return m


@pytest.fixture(scope="module")
def server(model):
    served = ServedModel(model, "digits", class_names=[f"d{i}" for i in range(10)],
                         spec="dense 16 relu\ndense 10 softmax", run_id=7, version=3)
    thread = ServerThread(create_app(served, max_body=50_000), port=0)
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        yield c


def predict(client, body, name="digits", **kw):
    return client.post(f"/v1/models/{name}:predict", json=body, **kw)


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_predictions_equal_model_predict_in_every_form(client, model, digits):
    X, _ = digits
    rows = X[:40]
    expected = model.predict(rows, verbose=0)
    names = [f"d{i}" for i in expected.argmax(axis=1)]
    for body in ({"instances": rows.tolist()},
                 {"instances": [{"pixels": r} for r in rows.tolist()]},
                 {"inputs": rows.tolist()},
                 {"inputs": {"pixels": rows.tolist()}}):
        r = predict(client, body)
        assert r.status_code == 200, r.text
        answer = r.json()
        np.testing.assert_allclose(answer["predictions"], expected, atol=1e-6)
        np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-6)
        assert answer["classes"] == names
        if "inputs" in body:  # TF Serving's name for the columnar answer
            assert answer["outputs"] == answer["predictions"]


def test_metadata_status_health_and_docs(client, model):
    meta = client.get("/v1/models/digits/metadata").json()
    assert meta["model_spec"] == {"name": "digits", "version": "3"}
    assert meta["inputs"] == [{"name": "pixels", "shape": [-1, 64], "dtype": "float32"}]
    assert meta["outputs"][0]["shape"] == [-1, 10]
    assert meta["outputs"][0]["name"] == model.layers[-1].name
    assert meta["class_names"] == [f"d{i}" for i in range(10)]
    assert meta["spec"].startswith("dense 16") and meta["run_id"] == 7 and meta["kind"] == "softmax"
    status = client.get("/v1/models/digits").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert client.get("/healthz").json() == {"status": "ok", "model": "digits"}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/models/{name}:predict" in paths


def _row(n=64, value=0.5):
    return [value] * n


BAD = [
    (b"{not json", 400, "the body is not JSON"),
    (json.dumps({"instances": [_row(), _row(), _row(), _row(63)]}), 422,
     "instances[3] has 63 values; the model takes 64"),
    (json.dumps({"instances": [[_row(8)] * 8]}), 422, "instances[0] has shape 8x8; the model takes 64"),
    (json.dumps({"instances": [_row()[:-1] + ["x"]]}), 422, "instances[0] holds 'x', a JSON string"),
    (json.dumps({"instances": [_row(), _row()[:10]]}), 422, "instances[1] has 10 values"),
    ('{"instances": [[' + ",".join(["0"] * 63 + ["NaN"]) + "]]}", 422, "instances[0] holds NaN"),
    ('{"instances": [[' + ",".join(["0"] * 63 + ["Infinity"]) + "]]}", 422, "an infinity"),
    ('{"instances": [[' + ",".join(["0"] * 63 + ["1e400"]) + "]]}", 422, "an infinity"),
    (json.dumps({"instances": [_row()[:-1] + [None]]}), 422, "null"),
    (json.dumps({"rows": [_row()]}), 422, 'the body has `rows`; send exactly one of "instances"'),
    (json.dumps({"instances": [{"pixel": _row()}]}), 422,
     "instances[0] has key 'pixel'; the model's one input is 'pixels'"),
    (json.dumps({"inputs": {"image": [_row()]}}), 422, "the model's one input is 'pixels'"),
    (json.dumps({"instances": []}), 422, "no rows were sent"),
    (json.dumps([_row()]), 422, "the body is a JSON array"),
    (json.dumps({"instances": _row()}), 422, "instances[0] has shape a scalar"),
]


@pytest.mark.parametrize("body,status,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_gets_its_status_and_a_json_message(client, body, status, message):
    r = client.post("/v1/models/digits:predict", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["error"]


def test_unknown_model_route_and_oversized_body(client):
    r = predict(client, {"instances": [_row()]}, name="cats")
    assert r.status_code == 404 and "no model named 'cats'" in r.json()["error"]
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and "/v1/models/digits:predict" in r.json()["error"]
    big = {"instances": [_row()] * 200}  # about 80 KB, over the fixture's 50,000 bytes
    r = predict(client, big)
    assert r.status_code == 413 and "over the limit of 50,000 bytes" in r.json()["error"]


def test_model_exception_is_a_one_line_500(model):
    class Broken(ServedModel):
        def predict_arrays(self, arrays):
            raise RuntimeError("kernel exploded\n  at line 2\n  at line 3")
    thread = ServerThread(create_app(Broken(model, "digits")), port=0)
    try:
        r = httpx.post(f"{thread.url}/v1/models/digits:predict", json={"instances": [_row()]},
                       timeout=TIMEOUT)
    finally:
        thread.stop()
    assert r.status_code == 500
    assert r.json() == {"error": "the model failed: RuntimeError: kernel exploded at line 2 at line 3"}


def test_token_is_required_and_checked(model):
    thread = ServerThread(create_app(ServedModel(model, "digits"), token="s3cret"), port=0)
    try:
        with httpx.Client(base_url=thread.url, timeout=TIMEOUT) as c:
            body = {"instances": [_row()]}
            assert predict(c, body).status_code == 401
            wrong = predict(c, body, headers={"Authorization": "Bearer s3cre"})
            assert wrong.status_code == 401 and "Authorization: Bearer" in wrong.json()["error"]
            assert c.get("/v1/models/digits/metadata").status_code == 401
            assert predict(c, body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
            assert c.get("/healthz").status_code == 200  # liveness probes carry no token
    finally:
        thread.stop()


def test_only_loopback_without_a_token():
    check_exposure("127.0.0.1", None, False)
    check_exposure("::1", None, False)
    with pytest.raises(UsageError, match="listening on 0.0.0.0 lets anyone.*--token T"):
        check_exposure("0.0.0.0", None, False)
    warned = []
    check_exposure("0.0.0.0", None, True, warn=warned.append)
    assert "without a token" in warned[0]
    check_exposure("0.0.0.0", "t", False)
    with pytest.raises(UsageError, match="both given"):
        check_exposure("0.0.0.0", "t", True)


def test_load_answers_equal_sequential_ones(server, client, digits):
    """500 requests of 1 to 4 rows at concurrency 16: no errors, each answer the
    sequential one, and fewer predict calls than requests (they were batched)."""
    X, _ = digits
    rng = np.random.default_rng(0)
    bodies = []
    for _ in range(500):
        start, n = int(rng.integers(0, 1700)), int(rng.integers(1, 5))
        bodies.append({"instances": X[start:start + n].tolist()})
    sequential = {}
    for body in bodies[:60]:
        sequential[json.dumps(body)] = predict(client, body).json()["predictions"]
    batcher = server.app.state.batcher
    before = batcher.batches

    def send(body, c):
        return body, predict(c, body)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT,
                      limits=httpx.Limits(max_connections=16)) as c:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda b: send(b, c), bodies))
    errors = [r.text for _, r in results if r.status_code != 200]
    assert errors == []
    for body, r in results:
        key = json.dumps(body)
        if key in sequential:
            np.testing.assert_allclose(r.json()["predictions"], sequential[key], atol=1e-6)
        assert len(r.json()["predictions"]) == len(body["instances"])
    assert batcher.batches - before < len(bodies)
    stats = server.app.state.stats.snapshot()
    assert stats["served"] >= 500 and stats["p99"] is not None


def test_stop_frees_the_port(model):
    thread = ServerThread(create_app(ServedModel(model, "digits")), port=0)
    port = thread.port
    assert httpx.get(f"{thread.url}/healthz", timeout=TIMEOUT).status_code == 200
    assert not port_is_free(port)
    thread.stop()
    assert port_is_free(port)
    with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is in use"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen()
            ServerThread(create_app(ServedModel(model, "digits")), port=port)


def test_serve_magic_serves_a_snapshot_until_served_again(ip, run, model, digits):
    """(What the cell shows is checked in a real kernel below: `capsys` here
    closed its buffer under IPython's display when this test ran alone.)"""
    from nbkeras.serve.magic import curl_example, servers
    X, _ = digits
    m = keras.models.clone_model(model)
    m.set_weights(model.get_weights())
    ip.user_ns["m"] = m
    run("%serve m --port 0")
    try:
        serving = servers()["m"]
        curl = curl_example(serving, None)
        body = json.loads(shlex.split(curl)[2])
        assert np.asarray(body["instances"]).shape == (1, 64)
        r = httpx.post(f"{serving.url}:predict", json=body, timeout=TIMEOUT)
        assert r.status_code == 200
        before = m.predict(X[:5], verbose=0)
        m.set_weights([w * 0 for w in m.get_weights()])  # "training" it again
        r = httpx.post(f"{serving.url}:predict", json={"instances": X[:5].tolist()}, timeout=TIMEOUT)
        np.testing.assert_allclose(r.json()["predictions"], before, atol=1e-6)
        port = serving.server.port
        run(f"%serve m --port {port}")  # serve the current weights, same port
        serving = servers()["m"]
        r = httpx.post(f"{serving.url}:predict", json={"instances": X[:5].tolist()}, timeout=TIMEOUT)
        np.testing.assert_allclose(r.json()["predictions"], m.predict(X[:5], verbose=0), atol=1e-6)
        assert "1 requests" in serving.stats.line() and "0 errors" in serving.stats.line()
        run("%serve m --port 0")  # another port: the new server listens, then the old stops
        assert servers()["m"].server.port != port and port_is_free(port)
        port = servers()["m"].server.port
        assert nbkeras.serving("m") is servers()["m"]  # the public way to the URL
    finally:
        run("%serve --stop m")
    assert "m" not in servers() and port_is_free(port)
    assert nbkeras.serving("m") is None
    with pytest.raises(UsageError, match="no model named `nope`"):
        run("%serve nope --port 0")
    with pytest.raises(UsageError, match="listening on 0.0.0.0"):
        run("%serve m --host 0.0.0.0 --port 0")


def _start_command(args, env=None):
    proc = subprocess.Popen([sys.executable, "-m", "nbkeras.cli", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    return proc


def test_command_serves_a_saved_model(model, digits, tmp_path):
    X, _ = digits
    path = tmp_path / "digits.keras"
    model.save(path)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"class_names": list("abcdefghij"), "run_id": 4}))
    proc = _start_command([str(path), "--port", "0", "--metadata", str(meta)],
                          env={"NBKERAS_TOKEN": "tok"})
    try:
        line = proc.stdout.readline()  # printed once the model is loaded and the port bound
        match = re.search(r"at (http://127\.0\.0\.1:\d+)/v1/models/digits:predict", line)
        assert match, line + proc.stderr.read() if proc.poll() is not None else line
        base = match.group(1)
        auth = {"Authorization": "Bearer tok"}
        r = httpx.post(f"{base}/v1/models/digits:predict", json={"instances": X[:20].tolist()},
                       headers=auth, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        expected = model.predict(X[:20], verbose=0)
        np.testing.assert_allclose(r.json()["predictions"], expected, atol=1e-6)
        assert r.json()["classes"] == [list("abcdefghij")[i] for i in expected.argmax(axis=1)]
        assert httpx.post(f"{base}/v1/models/digits:predict", json={"instances": [_row()]},
                          timeout=TIMEOUT).status_code == 401
        meta = httpx.get(f"{base}/v1/models/digits/metadata", headers=auth, timeout=TIMEOUT).json()
        assert meta["run_id"] == 4 and meta["inputs"][0]["shape"] == [-1, 64]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert port_is_free(int(base.rsplit(":", 1)[1]))


def test_command_refuses_an_open_host_without_a_token(tmp_path):
    proc = _start_command([str(tmp_path / "none.keras"), "--host", "0.0.0.0"])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "listening on 0.0.0.0 lets anyone who reaches this machine call the model" in err
    proc = _start_command([str(tmp_path / "none.keras")])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "is not a file" in err


def test_live_line_counts_and_redraws_in_place(model):
    """The line `%serve` shows: counts, rate, percentiles, errors; redrawn only
    when it changes, and a last time saying the server stopped."""
    from nbkeras.serve.magic import Serving
    from nbkeras.serve.stats import ServeStats
    clock = [100.0]
    stats = ServeStats(clock=lambda: clock[0])
    assert stats.line() == "0 requests · 0.0/s · p50 – · p99 – · 0 errors"
    for i in range(100):
        stats.record(0.001 * (i + 1), ok=i != 5)
        clock[0] += 0.04
    # 100 requests in the 4 s since the first: the rate of a load just begun
    assert stats.line() == "100 requests · 25.0/s · p50 51.0 ms · p99 100.0 ms · 1 errors"
    clock[0] += 20
    for i in range(20):
        stats.record(0.001, ok=True)
        clock[0] += 0.5
    assert stats.snapshot()["rate"] == 20 / 10  # then over the last 10 seconds
    clock[0] += 60  # the rate is over the last 10 seconds
    assert stats.snapshot()["rate"] == 0.0

    class Recorder:
        def __init__(self):
            self.bundles = []

        def update(self, bundle):
            self.bundles.append(bundle["text/plain"])

    class FakeServer:
        def stop(self):
            pass
    serving = Serving("m", None, FakeServer(), stats)
    recorder = Recorder()
    serving.follow(recorder, interval=0.05)
    time.sleep(0.5)
    stats.record(0.002, ok=True)
    time.sleep(0.5)
    serving.stop()
    assert recorder.bundles[0].startswith("`m`: 120 requests")
    assert recorder.bundles[1].startswith("`m`: 121 requests")
    assert len(recorder.bundles) == 3 and recorder.bundles[-1].endswith("(stopped)")


def test_command_with_two_worker_processes(model, digits, tmp_path):
    X, _ = digits
    path = tmp_path / "digits.keras"
    model.save(path)
    proc = _start_command([str(path), "--port", "0", "--workers", "2"])
    try:
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)/v1/models/digits:predict with 2 worker", line)
        assert match, line
        base = match.group(1)
        deadline = time.monotonic() + 180  # the workers load the model after the line
        while True:
            try:
                r = httpx.post(f"{base}/v1/models/digits:predict",
                               json={"instances": X[:8].tolist()}, timeout=TIMEOUT)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.5)
        np.testing.assert_allclose(r.json()["predictions"], model.predict(X[:8], verbose=0),
                                   atol=1e-6)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0
    assert port_is_free(int(base.rsplit(":", 1)[1]))


JAX_SCRIPT = """
import numpy as np, keras, httpx
from nbkeras.serve import ServedModel, create_app
from nbkeras.serve.runner import ServerThread
assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((64,), name="pixels"), keras.layers.Dense(16, activation="relu"),
                      keras.layers.Dense(10, activation="softmax")])
t = ServerThread(create_app(ServedModel(m, "d")), port=0)
x = np.random.default_rng(0).random((37, 64)).astype("float32")
for n in (1, 3, 37):  # padded to 1, 4 and 64 rows: each compiled once
    r = httpx.post(f"{t.url}/v1/models/d:predict", json={"instances": x[:n].tolist()}, timeout=60)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], m.predict(x[:n], verbose=0), atol=1e-6)
t.stop()
print("ok")
"""


def test_serves_on_the_jax_backend():
    out = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "KERAS_BACKEND": "jax",
                                           "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


@pytest.fixture(scope="module")
def two_inputs():
    """Two named inputs (one of integer tokens) and one sigmoid unit."""
    keras.utils.set_random_seed(1)
    tokens = keras.Input((5,), name="tokens", dtype="int32")
    extra = keras.Input((3,), name="extra")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 4)(tokens))
    out = keras.layers.Dense(1, activation="sigmoid", name="spam")(
        keras.layers.Concatenate()([h, extra]))
    model = keras.Model([tokens, extra], out)
    served = ServedModel(model, "spam", class_names=["ham", "spam"])
    thread = ServerThread(create_app(served), port=0)
    yield model, thread
    thread.stop()


def test_several_named_inputs_rows_and_columns(two_inputs):
    model, thread = two_inputs
    rng = np.random.default_rng(0)
    tok = rng.integers(0, 20, (6, 5)).astype("int32")
    ext = rng.random((6, 3)).astype("float32")
    p = model.predict({"tokens": tok, "extra": ext}, verbose=0)
    url = f"{thread.url}/v1/models/spam:predict"
    rows = {"instances": [{"tokens": t, "extra": e} for t, e in zip(tok.tolist(), ext.tolist())]}
    cols = {"inputs": {"tokens": tok.tolist(), "extra": ext.tolist()}}
    for body in (rows, cols):
        r = httpx.post(url, json=body, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"], p, atol=1e-6)
        assert r.json()["classes"] == ["spam" if v > 0.5 else "ham" for v in p[:, 0]]
        np.testing.assert_allclose(r.json()["probabilities"],
                                   np.concatenate([1 - p, p], axis=1), atol=1e-6)
    meta = httpx.get(f"{thread.url}/v1/models/spam/metadata", timeout=TIMEOUT).json()
    assert [(i["name"], i["shape"], i["dtype"]) for i in meta["inputs"]] == [
        ("tokens", [-1, 5], "int32"), ("extra", [-1, 3], "float32")]
    assert meta["kind"] == "sigmoid" and meta["outputs"][0]["name"] == "spam"


TWO_BAD = [
    ({"instances": [[1, 2, 3, 4, 5]]}, "instances[0] is a JSON array; this model has 2 inputs"),
    ({"instances": [{"tokens": [1, 2, 3, 4, 5]}]}, "instances[0] lacks 'extra'"),
    ({"instances": [{"tokens": [1, 2, 3, 4, 5], "extra": [0, 0, 0], "more": 1}]},
     "instances[0] has unknown 'more'"),
    ({"instances": [{"tokens": [1, 2, 3, 4.5, 5], "extra": [0, 0, 0]}]},
     "instances[0][\"tokens\"] holds a fraction; input 'tokens' takes integers (int32)"),
    ({"instances": [{"tokens": [1, 2, 3, 4], "extra": [0, 0, 0]}]},
     "instances[0][\"tokens\"] has 4 values; the model takes 5"),
    ({"inputs": {"tokens": [[1, 2, 3, 4, 5]] * 2, "extra": [[0, 0, 0]]}},
     "the inputs have different numbers of rows (`tokens` 2, `extra` 1)"),
    ({"inputs": [[1, 2, 3, 4, 5]]}, '"inputs" is a JSON array; this model has 2 inputs'),
]


@pytest.mark.parametrize("body,message", TWO_BAD, ids=[m for _, m in TWO_BAD])
def test_several_inputs_bad_keys_and_dtypes(two_inputs, body, message):
    _, thread = two_inputs
    r = httpx.post(f"{thread.url}/v1/models/spam:predict", json=body, timeout=TIMEOUT)
    assert r.status_code == 422 and message in r.json()["error"], r.text


def test_serve_in_a_real_kernel_live_line_and_shutdown(tmp_path):
    """`%serve` in an ipykernel: the URL and curl example shown, answers equal
    the kernel's own `predict`, the live line updated in place (update_display_data
    with the line's display id), and shutting the kernel down frees the port."""
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    outputs = []

    def run_cell(code):
        outputs.clear()
        reply = kc.execute_interactive(code, output_hook=outputs.append, timeout=240)
        assert reply["content"]["status"] == "ok", reply["content"]
        return outputs[:]
    try:
        run_cell("%load_ext nbkeras\nimport numpy as np\n"
                 "x = np.random.default_rng(0).random((5, 64)).astype('float32')")
        run_cell("%%model clf --seed 0\ninput 64\ndense 16 relu\ndense 10 softmax")
        shown = run_cell("%serve clf --port 0")
        texts = [m["content"]["data"]["text/plain"] for m in shown if m["msg_type"] == "display_data"]
        url = re.search(r"at (http://127\.0\.0\.1:\d+/v1/models/clf):predict", texts[0]).group(1)
        curl = re.search(r"curl -d '(\{.*?\})' ", texts[0])
        assert curl and curl.group(1).startswith('{"instances":[[0,0,0,')  # short to read
        r = httpx.post(f"{url}:predict", content=curl.group(1), timeout=TIMEOUT)
        assert r.status_code == 200, r.text  # the example works as shown
        line_id = [m for m in shown if m["msg_type"] == "display_data"][1]["content"]["transient"]["display_id"]
        expected = run_cell("import json; print(json.dumps(clf.predict(x, verbose=0).tolist()))")
        expected = json.loads("".join(m["content"].get("text", "") for m in expected))
        x = np.random.default_rng(0).random((5, 64)).astype("float32")
        for _ in range(3):
            r = httpx.post(f"{url}:predict", json={"instances": x.tolist()}, timeout=TIMEOUT)
            np.testing.assert_allclose(r.json()["predictions"], expected, atol=1e-6)
        updates = run_cell("import time; time.sleep(3)")
        lines = [m["content"]["data"]["text/plain"] for m in updates
                 if m["msg_type"] == "update_display_data"
                 and m["content"]["transient"]["display_id"] == line_id]
        assert lines and lines[-1].startswith("`clf`: 4 requests") and "0 errors" in lines[-1]
        port = int(url.split(":")[2].split("/")[0])
        assert not port_is_free(port)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert port_is_free(port)


def test_the_serve_package_imports_no_ipython_and_no_keras():
    code = ("import sys\nimport nbkeras.serve, nbkeras.serve.command, nbkeras.serve.magic\n"
            "print([m for m in ('keras', 'tensorflow', 'IPython', 'fastapi') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_several_outputs_answer_by_output_name():
    keras.utils.set_random_seed(2)
    inp = keras.Input((4,), name="x")
    digit = keras.layers.Dense(3, activation="softmax", name="digit")(inp)
    value = keras.layers.Dense(1, name="value")(inp)
    model = keras.Model(inp, [digit, value])
    served = ServedModel(model, "two")
    x = np.random.default_rng(0).random((3, 4)).astype("float32")
    d, v = model.predict(x, verbose=0)
    rows = served.parse({"instances": x.tolist()})
    answer = served.answer(served.predict_arrays(rows["arrays"]), rows["form"])
    assert set(answer) == {"predictions"}  # no classes for several outputs
    np.testing.assert_allclose([r["digit"] for r in answer["predictions"]], d, atol=1e-6)
    np.testing.assert_allclose([r["value"] for r in answer["predictions"]], v, atol=1e-6)
    cols = served.parse({"inputs": {"x": x.tolist()}})
    answer = served.answer(served.predict_arrays(cols["arrays"]), cols["form"])
    np.testing.assert_allclose(answer["outputs"]["value"], v, atol=1e-6)
    assert [o["name"] for o in served.metadata()["outputs"]] == ["digit", "value"]


@pytest.mark.parametrize("host,port,message", [
    ("127.0.0.1", 70000, "--port 70000: give a port from 1 to 65535"),
    ("no-such-host.invalid", 0, "--host no-such-host.invalid: not an address"),
])
def test_bad_port_or_host_is_a_usage_error(host, port, message):
    from nbkeras.serve.runner import bind
    with pytest.raises(UsageError, match=re.escape(message)):
        bind(host, port)
