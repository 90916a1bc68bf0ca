"""The sidebar's JSON API (`nbkeras.server`), through a real Jupyter server.

The registry is written from the test process (as a kernel would) and read
back through `jp_fetch`, which carries the server's token unless a test
overrides the Authorization header.
"""

import json

import pytest
from tornado.httpclient import HTTPClientError

from nbkeras.registry import get_registry

pytest_plugins = ["pytest_jupyter.jupyter_server"]

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nbkeras": True}}}


@pytest.fixture
def registry(nbkeras_home):
    """The test's registry with two models: a finished run and a running one."""
    reg = get_registry()
    vid = reg.add_model_version("digits", "input 64\ndense 10 softmax", params=650)
    done = reg.start_run(model="digits", version_id=vid, options={"epochs": 2, "batch_size": 32},
                         device="CPU", backend="tensorflow", epochs_planned=2,
                         notebook="work/digits.ipynb")
    reg.log_epoch(done, 0, {"loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.6})
    reg.log_epoch(done, 1, {"loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.8})
    reg.end_run(done, "completed")
    reg.add_evaluation(done, "digits", {"loss": 0.72, "accuracy": 0.79})
    live = reg.start_run(model=XSS, version_id=None, options={}, device="GPU:0",
                         backend="tensorflow", epochs_planned=5)
    reg.log_epoch(live, 0, {"loss": 2.0})
    return reg, done, live


async def get_json(jp_fetch, *parts, **kwargs):
    response = await jp_fetch("nbkeras", "api", *parts, **kwargs)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def get_error(jp_fetch, *parts, **kwargs):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nbkeras", "api", *parts, **kwargs)
    body = info.value.response.body.decode()
    assert "Traceback" not in body
    return info.value.code, json.loads(body)


@pytest.mark.parametrize("headers", [{"Authorization": "token not-the-token"},
                                     {"Authorization": ""}])
@pytest.mark.parametrize("parts", [("runs",), ("runs", "1")])
async def test_requests_without_a_valid_token_are_forbidden(jp_fetch, registry, headers, parts):
    code, _ = await get_error(jp_fetch, *parts, headers=headers)
    assert code == 403


async def test_empty_registry_lists_no_runs(jp_fetch):
    body = await get_json(jp_fetch, "runs")
    assert body["runs"] == []
    assert isinstance(body["cursor"], int)


async def test_runs_lists_every_run_newest_first_with_its_metrics(jp_fetch, registry):
    _, done, live = registry
    body = await get_json(jp_fetch, "runs")
    assert [r["id"] for r in body["runs"]] == [live, done]
    running, finished = body["runs"]
    assert running["model"] == XSS  # JSON keeps the text as it is; the panel shows it as text
    assert running["status"] == "running" and running["ended"] is None
    assert (running["epochs"], running["epochs_planned"]) == (1, 5)
    assert running["device"] == "GPU:0"
    assert finished["status"] == "completed"
    assert finished["epochs"] == 2
    assert finished["last"]["val_accuracy"] == pytest.approx(0.8)
    assert finished["best"]["val_loss"] == pytest.approx(0.7)
    assert finished["notebook"] == "work/digits.ipynb"
    assert finished["started"] and finished["ended"]
    assert body["cursor"] >= max(r["seq"] for r in body["runs"])


async def test_since_returns_only_runs_that_changed(jp_fetch, registry):
    reg, done, live = registry
    cursor = (await get_json(jp_fetch, "runs"))["cursor"]
    assert (await get_json(jp_fetch, "runs", params={"since": cursor}))["runs"] == []

    reg.log_epoch(live, 1, {"loss": 1.5})
    body = await get_json(jp_fetch, "runs", params={"since": cursor})
    assert [(r["id"], r["epochs"]) for r in body["runs"]] == [(live, 2)]
    assert body["cursor"] > cursor

    reg.end_run(live, "stopped")
    later = await get_json(jp_fetch, "runs", params={"since": body["cursor"]})
    assert [(r["id"], r["status"]) for r in later["runs"]] == [(live, "stopped")]
    assert (await get_json(jp_fetch, "runs", params={"since": 0}))["runs"][-1]["id"] == done


async def test_model_parameter_filters_runs(jp_fetch, registry):
    _, done, live = registry
    body = await get_json(jp_fetch, "runs", params={"model": "digits"})
    assert [r["id"] for r in body["runs"]] == [done]
    body = await get_json(jp_fetch, "runs", params={"model": XSS})
    assert [r["id"] for r in body["runs"]] == [live]


async def test_run_detail_has_history_options_evaluations_and_spec(jp_fetch, registry):
    _, done, _ = registry
    run = await get_json(jp_fetch, "runs", str(done))
    assert run["id"] == done and run["model"] == "digits"
    assert [h["epoch"] for h in run["history"]] == [0, 1]
    assert run["history"][1]["val_accuracy"] == pytest.approx(0.8)
    assert run["options"] == {"epochs": 2, "batch_size": 32}
    assert run["spec"] == "input 64\ndense 10 softmax"
    assert run["evaluations"][0]["metrics"]["accuracy"] == pytest.approx(0.79)


async def test_unknown_run_is_a_json_404(jp_fetch, registry):
    code, body = await get_error(jp_fetch, "runs", "987654")
    assert code == 404
    assert body == {"code": 404, "message": "no run with id 987654"}


async def test_unknown_route_is_a_json_404(jp_fetch):
    code, body = await get_error(jp_fetch, "nothing-here")
    assert code == 404 and body["code"] == 404 and "nothing-here" in body["message"]


@pytest.mark.parametrize("parts, params, quoted", [
    (("runs",), {"since": "abc"}, "'abc'"),
    (("runs",), {"since": "-1"}, "'-1'"),
    (("runs",), {"since": "1.5"}, "'1.5'"),
    (("runs",), {"limit": "0"}, "'0'"),
    (("runs",), {"model": ""}, "model"),
    (("runs", "abc"), {}, "'abc'"),
    (("runs", "-3"), {}, "'-3'"),
])
async def test_malformed_parameters_are_a_json_400(jp_fetch, registry, parts, params, quoted):
    code, body = await get_error(jp_fetch, *parts, params=params)
    assert code == 400
    assert body["code"] == 400 and quoted in body["message"]


async def test_limit_caps_the_number_of_runs(jp_fetch, registry):
    _, _, live = registry
    body = await get_json(jp_fetch, "runs", params={"limit": "1"})
    assert [r["id"] for r in body["runs"]] == [live]


async def test_each_run_carries_the_direction_of_each_metric(jp_fetch, nbkeras_home):
    reg = get_registry()
    rid = reg.start_run(model="m", version_id=None, options={}, device="CPU",
                        backend="tensorflow", epochs_planned=2)
    # `wobble`: a custom metric whose compiled Keras object says lower is better
    reg.log_epoch(rid, 1, {"loss": 1.0, "val_wobble": 0.5, "val_auc": 0.5,
                           "learning_rate": 0.1}, {"loss": "min", "val_wobble": "min"})
    body = await get_json(jp_fetch, "runs")
    assert body["runs"][0]["directions"] == {"loss": "min", "val_wobble": "min",
                                             "val_auc": "max"}
    run = await get_json(jp_fetch, "runs", str(rid))
    assert run["directions"] == body["runs"][0]["directions"]


def _kill_run(reg, run_id):
    """Make `run_id` a run whose kernel died (its pid is gone)."""
    import sqlite3
    import subprocess
    import sys
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    db = sqlite3.connect(reg.path)
    with db:
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, run_id))
    db.close()


def _status_in_file(reg, run_id):
    import sqlite3
    db = sqlite3.connect(reg.path)
    try:
        return db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    finally:
        db.close()


async def test_reads_report_a_dead_kernel_run_and_the_timer_records_it(
        jp_fetch, jp_serverapp, registry):
    reg, _, live = registry
    _kill_run(reg, live)
    cursor = (await get_json(jp_fetch, "runs"))["cursor"]
    body = await get_json(jp_fetch, "runs", params={"since": cursor})
    assert [(r["id"], r["status"]) for r in body["runs"]] == [(live, "interrupted")]
    assert _status_in_file(reg, live) == "running"  # the reads wrote nothing

    marker = jp_serverapp.web_app.settings["nbkeras_marker"]
    assert marker.running
    assert await marker.tick() == [live]
    assert _status_in_file(reg, live) == "interrupted"
    body = await get_json(jp_fetch, "runs", params={"since": cursor})
    assert body["cursor"] > cursor and [r["id"] for r in body["runs"]] == [live]
    assert await marker.tick() == []
    await jp_serverapp.cleanup_extensions()  # what the server does when it stops
    assert not marker.running


async def test_the_timer_marks_on_its_own(registry):
    import asyncio

    from nbkeras.server import InterruptedMarker
    reg, _, live = registry
    _kill_run(reg, live)
    marker = InterruptedMarker(every_s=0.02)
    marker.start()
    try:
        for _ in range(200):
            if _status_in_file(reg, live) == "interrupted":
                break
            await asyncio.sleep(0.01)
    finally:
        await marker.stop()
    assert _status_in_file(reg, live) == "interrupted"


# -- managing runs -------------------------------------------------------------

WRITES = [("DELETE", ("runs", "{done}"), None),
          ("PATCH", ("runs", "{done}"), {"starred": True}),
          ("DELETE", ("versions", "{vid}"), None)]


def _parts(parts, registry):
    reg, done, _ = registry
    vid = reg.run(done)["version_id"]
    return [p.format(done=done, vid=vid) for p in parts]


def _request(method, body):
    kwargs = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    return kwargs


@pytest.mark.parametrize("method,parts,body", WRITES)
async def test_writes_without_a_token_are_forbidden_and_change_nothing(
        jp_fetch, registry, method, parts, body):
    reg, done, _ = registry
    code, _ = await get_error(jp_fetch, *_parts(parts, registry),
                              headers={"Authorization": ""}, **_request(method, body))
    assert code == 403
    run = reg.run(done)
    assert run is not None and not run["starred"]


@pytest.mark.parametrize("method,parts,body", WRITES)
async def test_writes_to_an_unknown_id_are_a_json_404(jp_fetch, registry, method, parts, body):
    code, answer = await get_error(jp_fetch, parts[0], "9999", **_request(method, body))
    assert code == 404 and "9999" in answer["message"]


async def test_delete_a_run_and_the_poll_drops_it(jp_fetch, registry):
    reg, done, live = registry
    cursor = (await get_json(jp_fetch, "runs"))["cursor"]
    body = await get_json(jp_fetch, "runs", str(done), method="DELETE")
    assert body == {"deleted": [done]}
    assert reg.run(done) is None
    poll = await get_json(jp_fetch, "runs", params={"since": cursor})
    assert poll["deleted"] == [done] and poll["cursor"] > cursor
    assert [r["id"] for r in (await get_json(jp_fetch, "runs"))["runs"]] == [live]
    code, _ = await get_error(jp_fetch, "runs", str(done))
    assert code == 404


async def test_star_a_run(jp_fetch, registry):
    _, done, _ = registry
    body = await get_json(jp_fetch, "runs", str(done), method="PATCH",
                          body=json.dumps({"starred": True}))
    assert body == {"id": done, "starred": True}
    assert (await get_json(jp_fetch, "runs", str(done)))["starred"] is True
    code, answer = await get_error(jp_fetch, "runs", str(done), method="PATCH",
                                   body=json.dumps({"starred": "yes"}))
    assert code == 400 and "starred" in answer["message"]


async def test_delete_a_model_version_with_its_runs(jp_fetch, registry):
    reg, done, live = registry
    vid = reg.run(done)["version_id"]
    body = await get_json(jp_fetch, "versions", str(vid), method="DELETE")
    assert body == {"version_id": vid, "name": "digits", "runs": [done]}
    assert reg.model_versions("digits") == [] and reg.run(live) is not None


async def test_a_run_carries_its_fit_line(jp_fetch, registry):
    _, done, _ = registry
    body = await get_json(jp_fetch, "runs", str(done))
    assert body["fit_line"] == "%fit digits -e 2"



# -- studies and cross-validation groups ---------------------------------------

TUNED_SPEC = """input 64
dense {16, 64}@width relu
dropout 0.0..0.5
dense 10 softmax
optimizer adam lr=1e-4..1e-2:log"""


@pytest.fixture
def groups(nbkeras_home):
    """A `%tune` study of three trials (the last stopped early, its weights
    restored at epoch 2) and a 2-fold `%fit --cv` group, as the kernel records them."""
    reg = get_registry()
    vid = reg.add_model_version("tn", TUNED_SPEC, params=1000)
    trials = []
    for n, (width, loss) in enumerate([(16, [0.9, 0.7]), (64, [0.8, 0.5]),
                                       (64, [0.9, 0.4, 0.6])]):
        options = {"epochs": 4, "val_split": 0.2, "early_stop": 1 if n == 2 else None,
                   "monitor": None, "study": "tn", "trial": n, "objective": "val_loss",
                   "direction": "min",
                   "values": {"width": width, "dropout.rate": 0.1 * n,
                              "optimizer.learning_rate": 10.0 ** -(n + 2)}}
        rid = reg.start_run(model="tn", version_id=vid, options=options, device="CPU",
                            backend="tensorflow", epochs_planned=4)
        for e, v in enumerate(loss, start=1):
            reg.log_epoch(rid, e, {"loss": v, "val_loss": v, "val_accuracy": 1 - v})
        reg.end_run(rid, "completed")
        trials.append(rid)
    folds = []
    for k in (1, 2):
        rid = reg.start_run(model="tn", version_id=vid,
                            options={"epochs": 1, "cv": 2, "cv_group": "cv-tn-1", "fold": k},
                            device="CPU", backend="tensorflow", epochs_planned=1)
        reg.log_epoch(rid, 1, {"loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.7 + 0.1 * k})
        reg.end_run(rid, "completed")
        folds.append(rid)
    plain = reg.start_run(model="tn", version_id=vid, options={"epochs": 1}, device="CPU",
                          backend="tensorflow", epochs_planned=1)
    return reg, vid, trials, folds, plain


async def test_a_trial_and_a_fold_carry_their_group(jp_fetch, groups):
    _, _, trials, folds, plain = groups
    runs = {r["id"]: r for r in (await get_json(jp_fetch, "runs"))["runs"]}
    first = runs[trials[0]]["group"]
    assert first == {"study": "tn", "trial": 0, "objective": "val_loss", "direction": "min",
                     "values": {"width": 16, "dropout.rate": 0.0,
                                "optimizer.learning_rate": pytest.approx(0.01)},
                     "restored_epoch": None}
    assert runs[folds[1]]["group"] == {"cv_group": "cv-tn-1", "fold": 2, "folds": 2,
                                       "restored_epoch": None,
                                       "fit_line": "%fit tn -e 1 --cv 2"}
    assert "group" not in runs[plain]
    # the trial that early stopping ended holds epoch 2's weights, not the last epoch's
    restored = runs[trials[2]]["group"]
    assert restored["restored_epoch"] == 2
    assert restored["held"]["val_loss"] == pytest.approx(0.4)
    assert runs[trials[2]]["last"]["val_loss"] == pytest.approx(0.6)
    # a poll for changes carries the group too, and so do the run's details
    poll = await get_json(jp_fetch, "runs", params={"since": "0"})
    assert {r["id"]: r.get("group") for r in poll["runs"]}[folds[0]]["fold"] == 1
    detail = await get_json(jp_fetch, "runs", str(trials[1]))
    assert detail["group"]["values"]["width"] == 64


async def test_a_versions_search_spaces(jp_fetch, groups):
    reg, vid, _, _, _ = groups
    body = await get_json(jp_fetch, "versions", str(vid), "spaces")
    spaces = {s["name"]: s for s in body["spaces"]}
    assert list(spaces) == ["width", "dropout.rate", "optimizer.learning_rate"]
    assert spaces["width"]["kind"] == "choice" and spaces["width"]["choices"] == [16, 64]
    assert (spaces["dropout.rate"]["kind"], spaces["dropout.rate"]["log"]) == ("float", False)
    assert spaces["optimizer.learning_rate"]["log"] is True
    plain = reg.add_model_version("plain", "input 4\ndense 1", params=5)
    assert (await get_json(jp_fetch, "versions", str(plain), "spaces")) == {"spaces": []}
    code, answer = await get_error(jp_fetch, "versions", "9999", "spaces")
    assert code == 404 and "9999" in answer["message"]
    code, _ = await get_error(jp_fetch, "versions", str(vid), "spaces",
                              headers={"Authorization": ""})
    assert code == 403



def test_spaces_are_read_without_loading_keras(tmp_path):
    """The server never imports Keras: a parse names an unlabelled space by its
    layer's parameter only with Keras' tables, so the names come from the
    version's trials (the same spaces, in the same order)."""
    import subprocess
    import sys
    code = """
import json, sys
from nbkeras.registry import Registry
reg = Registry(sys.argv[1])
vid = reg.add_model_version("m", "input 4\\ndense {8, 16} relu\\ndense 1", params=5)
before = reg.version_spaces(vid)
reg.start_run(model="m", version_id=vid, options={"study": "m", "trial": 0,
              "values": {"dense.units": 8}}, device="CPU", backend="tf", epochs_planned=1)
after = reg.version_spaces(vid)
print(json.dumps([[s["name"] for s in before], [s["name"] for s in after], after[0]["kind"],
                  "keras" in sys.modules or "tensorflow" in sys.modules]))
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == [["dense.arg1"], ["dense.units"], "choice", False]

# -- the %fit line of a run (nbkeras.options.fitline) ---------------------------

def _options_of(line):
    """A run's options as `%fit LINE` records them (see nbkeras.train.plan)."""
    from nbkeras.magics import NbkerasMagics
    from nbkeras.notebook.lineargs import split_line
    args = NbkerasMagics.fit.parser.parse_args(split_line(line))
    options = {k: v for k, v in vars(args).items()
               if isinstance(v, (str, int, float, bool, list, type(None)))}
    options.update(epochs_planned=args.epochs, initial_epoch=args.initial_epoch or 0)
    return options


@pytest.mark.parametrize("line,expected", [
    ("digits x y", "%fit digits x y"),
    ("digits x y --epochs 20 --batch-size 32 --val-split 0.2",
     "%fit digits x y -e 20 --val-split 0.2"),
    ("net x_train y_train -b 64 --no-shuffle --mixed-precision --seed 3",
     "%fit net x_train y_train -b 64 --no-shuffle --seed 3 --mixed-precision"),
    ("net ds --val xv yv --early-stop 3 --monitor val_loss",
     "%fit net ds --val xv yv --early-stop 3 --monitor val_loss"),
    ("net x[:100] y[:100] --initial-epoch 5", "%fit net x[:100] y[:100] --initial-epoch 5"),
])
def test_fit_line_shows_only_the_flags_that_differ_from_their_defaults(line, expected):
    from nbkeras.options.fitline import fit_line
    assert fit_line("ignored", _options_of(line)) == expected


def test_fit_line_round_trips_through_the_parser():
    from nbkeras.options.fitline import fit_line
    options = _options_of("m x y -e 7 --lr-schedule cosine --reduce-lr 2 --jit")
    again = _options_of(fit_line("m", options)[len("%fit "):])
    assert again == options


def test_fit_line_of_a_run_without_options_is_the_bare_magic():
    from nbkeras.options.fitline import fit_line
    assert fit_line("digits", {}) == "%fit digits"
    assert fit_line("digits", None) == "%fit digits"


def test_option_differences_list_only_what_differs():
    from nbkeras.options.fitline import option_differences
    a = {"options": _options_of("m x y -e 20 --seed 1")}
    b = {"options": _options_of("m x y -e 20 -b 64")}
    assert option_differences([a, b]) == [("-b", ["", "64"]), ("--seed", ["1", ""])]
