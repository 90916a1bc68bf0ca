"""The run registry on a temporary NBKERAS_HOME: what is written reads back,
the change cursor, best/last summaries, old files, and files that cannot be
used (warned about once, never raising)."""

import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import warnings

import pytest

import nbkeras
from nbkeras import registry as R


@pytest.fixture
def reg(nbkeras_home):
    return R.get_registry()


def _run(reg, model="mnist", epochs=(), status=None, version_id=None):
    run_id = reg.start_run(model=model, version_id=version_id, options={"epochs": len(epochs)},
                           device="cpu", backend="tensorflow", epochs_planned=len(epochs))
    for i, metrics in enumerate(epochs):
        reg.log_epoch(run_id, i, metrics)
    if status:
        reg.end_run(run_id, status)
    return run_id


def test_home_comes_from_the_environment(nbkeras_home, reg):
    assert R.default_home() == nbkeras_home
    assert reg.path == nbkeras_home / "registry.sqlite3"
    assert reg.path.exists()
    assert reg.recording


def test_home_defaults_to_jupyter_data_dir(monkeypatch):
    from jupyter_core.paths import jupyter_data_dir
    monkeypatch.delenv("NBKERAS_HOME")
    assert str(R.default_home()) == os.path.join(jupyter_data_dir(), "nbkeras")


def test_get_registry_is_cached_per_home(nbkeras_home, tmp_path, monkeypatch):
    first = R.get_registry()
    assert R.get_registry() is first
    monkeypatch.setenv("NBKERAS_HOME", str(tmp_path / "other"))
    assert R.get_registry() is not first


def test_a_run_reads_back_with_history_and_evaluations(reg):
    vid = reg.add_model_version("mnist", "input 784\ndense 10 softmax", 7850)
    run_id = _run(reg, epochs=[{"loss": 1.0, "accuracy": 0.5}, {"loss": 0.5, "accuracy": 0.8}],
                  status="completed", version_id=vid)
    eid = reg.add_evaluation(run_id, "mnist", {"loss": 0.4, "accuracy": 0.85})
    run = reg.run(run_id)
    assert run["status"] == "completed" and run["ended"] is not None
    assert run["epochs"] == 2 and run["epochs_planned"] == 2
    assert run["history"] == [{"epoch": 0, "loss": 1.0, "accuracy": 0.5},
                              {"epoch": 1, "loss": 0.5, "accuracy": 0.8}]
    assert run["spec"] == "input 784\ndense 10 softmax"
    assert run["options"] == {"epochs": 2}
    assert run["evaluations"][0]["id"] == eid
    assert run["evaluations"][0]["metrics"] == {"loss": 0.4, "accuracy": 0.85}
    assert run["started"].endswith("+00:00") and run["duration"] >= 0
    assert reg.model_versions("mnist")[0]["params"] == 7850
    assert reg.run(12345) is None


def test_public_runs_newest_first_with_epoch_lists(reg):
    a = _run(reg, "a", [{"loss": 1.0}], "completed")
    b = _run(reg, "b", [{"loss": 2.0}, {"loss": 1.5}], "stopped")
    runs = nbkeras.runs()
    assert [r["id"] for r in runs] == [b, a]
    assert runs[0]["epochs"] == [{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.5}]
    for key in ("id", "model", "status", "started", "ended", "epochs", "evaluations"):
        assert key in runs[0]
    assert [r["id"] for r in nbkeras.runs(model="a")] == [a]
    json.dumps(runs)  # plain JSON all the way


def test_best_and_last_follow_the_metric_direction(reg):
    run_id = _run(reg, epochs=[
        {"loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.6, "learning_rate": 0.1},
        {"loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.9, "learning_rate": 0.1},
        {"loss": 0.4, "val_loss": 0.8, "val_accuracy": 0.7, "learning_rate": 0.01},
    ])
    s = reg.run_summaries()[0]
    assert s["last"] == {"loss": 0.4, "val_loss": 0.8, "val_accuracy": 0.7, "learning_rate": 0.01}
    assert s["best"] == {"loss": 0.4, "val_loss": 0.7, "val_accuracy": 0.9}
    assert s["best_epoch"] == {"loss": 2, "val_loss": 1, "val_accuracy": 1}
    assert s["status"] == "running" and s["ended"] is None
    assert s["id"] == run_id


def test_non_finite_metrics_are_stored_as_null(reg):
    run_id = _run(reg, epochs=[{"loss": float("nan"), "accuracy": 0.5}])
    assert reg.run(run_id)["history"] == [{"epoch": 0, "loss": None, "accuracy": 0.5}]


def test_cursor_gives_only_changed_runs(reg):
    a = _run(reg, "a", [{"loss": 1.0}])
    b = _run(reg, "b", [{"loss": 1.0}])
    cur = reg.cursor()
    assert reg.run_summaries(since=cur) == []
    reg.log_epoch(a, 1, {"loss": 0.5})
    changed = reg.run_summaries(since=cur)
    assert [r["id"] for r in changed] == [a]
    assert reg.cursor() > cur and changed[0]["seq"] == reg.cursor()
    cur = reg.cursor()
    reg.end_run(b, "failed", error="boom")
    reg.add_evaluation(a, "a", {"loss": 0.3})
    assert [r["id"] for r in reg.run_summaries(since=cur)] == [b, a]
    assert reg.run(b)["error"] == "boom"


def test_summaries_filter_and_limit(reg):
    ids = [_run(reg, "a" if i % 2 else "b", [{"loss": 1.0}]) for i in range(6)]
    assert [r["id"] for r in reg.run_summaries(model="a")] == ids[1::2][::-1]
    assert [r["id"] for r in reg.run_summaries(limit=2)] == ids[::-1][:2]


def test_same_spec_twice_is_one_version(reg):
    v1 = reg.add_model_version("m", "dense 3", 10)
    assert reg.add_model_version("m", "dense 3", 10) == v1
    v2 = reg.add_model_version("m", "dense 4", 12)
    assert v2 != v1
    assert [v["id"] for v in reg.model_versions("m")] == [v2, v1]


def test_an_unknown_status_is_recorded_as_failed_without_raising(reg):
    run_id = _run(reg)
    with pytest.warns(RuntimeWarning, match="unknown run status 'finished'"):
        reg.end_run(run_id, "finished")
    assert reg.run(run_id)["status"] == "failed"
    assert "finished" in reg.run(run_id)["error"]


def test_a_reused_pid_does_not_keep_a_run_running(reg):
    run_id = _run(reg)
    db = sqlite3.connect(reg.path)
    with db:  # our own pid, but a process that started at another time
        db.execute("UPDATE runs SET pid_start = pid_start + 1 WHERE id = ?", (run_id,))
    assert reg.run(run_id)["status"] == "interrupted"
    db.close()


def test_the_file_is_in_wal_mode(reg):
    db = sqlite3.connect(reg.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] \
        == R.SCHEMA_VERSION
    db.close()


def _dead_pid():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def _file_bytes(reg):
    """The database and its write-ahead log, byte for byte (not the shared-memory index)."""
    return {p.name: p.read_bytes() for p in reg.path.parent.iterdir()
            if p.name in (reg.path.name, reg.path.name + "-wal")}


def test_reads_report_a_dead_process_run_interrupted_and_write_nothing(reg):
    run_id = _run(reg, epochs=[{"loss": 1.0}])
    other = _run(reg, "other", epochs=[{"loss": 1.0}], status="completed")
    db = sqlite3.connect(reg.path)
    with db:
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", (_dead_pid(), run_id))
    before, cur = _file_bytes(reg), reg.cursor()
    # every reader, as the sidebar and %models call them
    assert reg.run(run_id)["status"] == "interrupted"
    assert reg.run(run_id)["ended"] is not None
    assert [r["status"] for r in reg.run_summaries()] == ["completed", "interrupted"]
    assert reg.runs(model="mnist")[0]["status"] == "interrupted"
    assert reg.model_stats() and reg.model_names() == ["mnist", "other"]
    assert [r["id"] for r in reg.run_summaries(since=cur)] == [run_id]  # the poll learns of it
    assert reg.run_summaries(since=cur, model="other") == []
    assert reg.cursor() == cur
    assert _file_bytes(reg) == before
    assert db.execute("SELECT status, ended, seq FROM runs WHERE id = ?",
                      (run_id,)).fetchone()[:2] == ("running", None)
    # the explicit write records it, once
    assert reg.mark_interrupted() == [run_id]
    assert reg.cursor() > cur
    status, ended, heartbeat = db.execute(
        "SELECT status, ended, heartbeat FROM runs WHERE id = ?", (run_id,)).fetchone()
    assert (status, ended) == ("interrupted", heartbeat)
    assert [r["id"] for r in reg.run_summaries(since=cur)] == [run_id]
    assert reg.run_summaries(since=reg.cursor()) == []  # no longer reported again
    assert reg.run(other)["status"] == "completed"
    assert reg.mark_interrupted() == []
    db.close()


def test_the_first_run_of_a_writer_marks_dead_runs_interrupted(nbkeras_home):
    reg = R.Registry(nbkeras_home)
    run_id = _run(reg, epochs=[{"loss": 1.0}])
    db = sqlite3.connect(reg.path)
    with db:
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", (_dead_pid(), run_id))
    reg.close()
    writer = R.Registry(nbkeras_home)  # another kernel
    assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] \
        == "running"  # opening alone writes nothing but the schema check
    _run(writer, "next")
    assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] \
        == "interrupted"
    writer.close()
    db.close()


def test_a_run_of_another_host_is_never_judged(reg):
    run_id = _run(reg)
    db = sqlite3.connect(reg.path)
    with db:
        db.execute("UPDATE runs SET pid = ?, host = 'elsewhere' WHERE id = ?",
                   (_dead_pid(), run_id))
    assert reg.run(run_id)["status"] == "running"
    assert reg.mark_interrupted() == []
    db.close()


# -- metric directions -------------------------------------------------------

def test_directions_from_training_are_stored_and_decide_the_best(reg):
    run_id = reg.start_run(model="m", version_id=None, options={}, device="cpu",
                           backend="tensorflow", epochs_planned=3)
    # a custom metric whose name says nothing: the compiled metric says lower is better
    given = {"loss": "min", "val_loss": "min", "wobble": "min", "val_wobble": "min"}
    reg.log_epoch(run_id, 1, {"loss": 1.0, "val_loss": 1.0, "wobble": 0.5, "val_wobble": 0.5,
                              "learning_rate": 0.1}, given)
    reg.log_epoch(run_id, 2, {"loss": 0.8, "val_loss": 1.1, "wobble": 0.7, "val_wobble": 0.3,
                              "learning_rate": 0.1})  # no directions: the stored ones hold
    reg.log_epoch(run_id, 3, {"loss": 0.9, "val_loss": 0.9, "wobble": 0.2, "val_wobble": 0.4,
                              "auc": 0.5, "learning_rate": 0.1}, directions=None)
    s = reg.run(run_id)
    assert s["best"] == {"loss": 0.8, "val_loss": 0.9, "wobble": 0.2, "val_wobble": 0.3,
                         "auc": 0.5}
    assert s["best_epoch"] == {"loss": 2, "val_loss": 3, "wobble": 3, "val_wobble": 2, "auc": 3}
    assert s["directions"] == {**given, "auc": "max"}  # never the learning rate
    db = sqlite3.connect(reg.path)
    stored = json.loads(db.execute("SELECT directions FROM runs WHERE id = ?",
                                   (run_id,)).fetchone()[0])
    db.close()
    assert stored == s["directions"]


def test_without_directions_the_metric_names_decide(reg):
    run_id = _run(reg, epochs=[{"val_mae": 0.5, "val_auc": 0.5, "lr": 0.1},
                               {"val_mae": 0.4, "val_auc": 0.4, "lr": 0.1}])
    s = reg.run_summaries()[0]
    assert s["best_epoch"] == {"val_mae": 1, "val_auc": 0}
    assert s["directions"] == {"val_mae": "min", "val_auc": "max"}
    assert reg.run(run_id)["directions"] == s["directions"]


def test_a_run_without_stored_directions_reads_them_from_the_names(reg):
    run_id = _run(reg, epochs=[{"loss": 1.0, "accuracy": 0.5}])
    db = sqlite3.connect(reg.path)
    with db:
        db.execute("UPDATE runs SET directions = NULL WHERE id = ?", (run_id,))
    db.close()
    assert reg.run(run_id)["directions"] == {"loss": "min", "accuracy": "max"}


# -- old files ---------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
INSERT INTO meta VALUES ('schema_version', 1);
CREATE TABLE model_versions (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
    spec_text TEXT NOT NULL, params INTEGER, source TEXT NOT NULL DEFAULT 'spec',
    created REAL NOT NULL);
CREATE TABLE runs (id INTEGER PRIMARY KEY, model TEXT NOT NULL, version_id INTEGER,
    status TEXT NOT NULL, started REAL NOT NULL, ended REAL, device TEXT, backend TEXT,
    notebook TEXT, options TEXT, epochs_planned INTEGER, error TEXT);
CREATE TABLE epochs (run_id INTEGER NOT NULL, epoch INTEGER NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch));
CREATE TABLE evaluations (id INTEGER PRIMARY KEY, run_id INTEGER, model TEXT NOT NULL,
    metrics TEXT NOT NULL, created REAL NOT NULL);
INSERT INTO model_versions VALUES (1, 'old', 'dense 2', 6, 'spec', 1700000000);
INSERT INTO runs VALUES (1, 'old', 1, 'completed', 1700000000, 1700000060, 'cpu',
    'tensorflow', NULL, '{}', 2, NULL);
INSERT INTO runs VALUES (2, 'old', 1, 'running', 1700000100, NULL, 'cpu',
    'tensorflow', NULL, '{}', 5, NULL);
INSERT INTO epochs VALUES (1, 0, '{"loss": 0.9, "val_accuracy": 0.7}');
INSERT INTO epochs VALUES (1, 1, '{"loss": 0.6, "val_accuracy": 0.6}');
"""


@pytest.mark.parametrize("with_meta", [True, False], ids=["v1", "v1-without-meta"])
def test_an_older_file_is_migrated(nbkeras_home, with_meta):
    nbkeras_home.mkdir()
    db = sqlite3.connect(nbkeras_home / "registry.sqlite3")
    script = V1_SCHEMA if with_meta else V1_SCHEMA.replace(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value);\n"
        "INSERT INTO meta VALUES ('schema_version', 1);\n", "")
    db.executescript(script)
    db.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = R.get_registry()
    assert reg.recording and reg.schema_version() == R.SCHEMA_VERSION
    old = reg.run(1)
    assert old["history"] == [{"epoch": 0, "loss": 0.9, "val_accuracy": 0.7},
                              {"epoch": 1, "loss": 0.6, "val_accuracy": 0.6}]
    assert old["best"] == {"loss": 0.6, "val_accuracy": 0.7}
    assert old["last"] == {"loss": 0.6, "val_accuracy": 0.6}
    assert old["epochs"] == 2 and old["duration"] == 60
    assert old["started"] == "2023-11-14T22:13:20+00:00"
    assert old["directions"] == {"loss": "min", "val_accuracy": "max"}
    assert reg.run(2)["status"] == "interrupted"  # it can never finish now
    new = _run(reg, "old", [{"loss": 0.1}], "completed")  # and it takes new runs
    assert [r["id"] for r in reg.run_summaries(since=reg.cursor() - 1)] == [new]


def test_a_version_2_file_gains_directions_and_keeps_its_runs(nbkeras_home):
    from nbkeras.registry import schema
    nbkeras_home.mkdir()
    db = sqlite3.connect(nbkeras_home / "registry.sqlite3", isolation_level=None)
    db.execute("BEGIN")
    schema.MIGRATIONS[1](db)
    schema.MIGRATIONS[2](db)
    db.execute("INSERT INTO meta VALUES ('schema_version', 2)")
    db.execute("INSERT INTO runs (id, model, status, started, ended, last, best, best_epoch, "
               "epochs_done) VALUES (1, 'old', 'completed', 1700000000, 1700000060, "
               "'{\"loss\": 0.5, \"val_auc\": 0.7}', '{\"loss\": 0.5, \"val_auc\": 0.8}', "
               "'{\"loss\": 2, \"val_auc\": 1}', 2)")
    db.execute("COMMIT")
    db.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = R.get_registry()
    assert reg.schema_version() == R.SCHEMA_VERSION == 4
    old = reg.run(1)
    assert old["best"] == {"loss": 0.5, "val_auc": 0.8}
    assert old["directions"] == {"loss": "min", "val_auc": "max"}  # from the names
    new = _run(reg, "new", [{"loss": 1.0}], "completed")
    assert reg.run(new)["directions"] == {"loss": "min"}


def test_a_file_from_a_newer_package_warns_and_is_left_alone(nbkeras_home):
    nbkeras_home.mkdir()
    db = sqlite3.connect(nbkeras_home / "registry.sqlite3")
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value);"
                     "INSERT INTO meta VALUES ('schema_version', 99);")
    db.close()
    with pytest.warns(R.RegistryWarning, match="newer nbkeras"):
        reg = R.get_registry()
    assert not reg.recording
    db = sqlite3.connect(nbkeras_home / "registry.sqlite3")
    assert db.execute("SELECT value FROM meta").fetchone()[0] == 99
    db.close()


# -- files that cannot be used -----------------------------------------------

def _null_calls(reg):
    vid = reg.add_model_version("m", "dense 1", 2)
    run_id = reg.start_run(model="m", version_id=vid, options={}, device="cpu",
                           backend="tensorflow", epochs_planned=1)
    reg.log_epoch(run_id, 0, {"loss": 1.0})
    reg.add_evaluation(run_id, "m", {"loss": 1.0})
    reg.end_run(run_id, "completed")
    assert reg.mark_interrupted() == []
    return reg.run_summaries(), reg.runs(), reg.cursor()


def test_a_corrupt_file_warns_once_and_records_nothing(nbkeras_home):
    nbkeras_home.mkdir()
    (nbkeras_home / "registry.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.warns(R.RegistryWarning, match="runs are not being recorded") as record:
        reg = R.get_registry()
        assert _null_calls(reg) == ([], [], 0)
        assert R.get_registry() is reg
        _null_calls(R.get_registry())
    assert len(record) == 1
    assert not reg.recording


def test_a_home_that_is_a_file_warns(nbkeras_home):
    nbkeras_home.write_text("oops")
    with pytest.warns(R.RegistryWarning, match="runs are not being recorded"):
        reg = R.get_registry()
    assert _null_calls(reg) == ([], [], 0)


def test_a_full_disk_after_opening_warns_once_and_stops_recording(reg):
    run_id = _run(reg, epochs=[{"loss": 1.0}])
    reg._db.execute("PRAGMA max_page_count = %d" % reg._db.execute(
        "PRAGMA page_count").fetchone()[0])
    with pytest.warns(R.RegistryWarning, match="full") as record:
        for epoch in range(1, 200):  # fills the last pages, then fails
            reg.log_epoch(run_id, epoch, {"loss": 1.0, "padding": float(epoch)} |
                          {f"m{i}": 0.5 for i in range(50)})
        reg.end_run(run_id, "completed")
    assert len(record) == 1
    assert reg.broken
    run = reg.run(run_id)  # reads still work; the epochs that fitted are kept
    assert 1 < run["epochs"] < 200
    assert [h["epoch"] for h in run["history"]] == list(range(run["epochs"]))
    assert run["status"] == "completed"  # closing the run is still tried (an in-place update)


READ_ONLY_SCRIPT = textwrap.dedent("""
    import os, sys, warnings
    from nbkeras import registry as R
    home = sys.argv[1]
    if os.geteuid() == 0:  # root ignores permissions: become nobody (modules already loaded)
        os.setgid(65534); os.setuid(65534)
    os.environ["NBKERAS_HOME"] = home
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        reg = R.get_registry()
        run_id = reg.start_run(model="m", version_id=None, options={}, device="cpu",
                               backend="tensorflow", epochs_planned=1)
        reg.log_epoch(run_id, 0, {"loss": 1.0}); reg.end_run(run_id, "completed")
        R.get_registry().log_epoch(run_id, 1, {"loss": 1.0})
    print(type(reg).__name__, run_id, len(w), str(w[0].message) if w else "")
""")


@pytest.fixture
def read_only_home():
    home = pathlib.Path(tempfile.mkdtemp(prefix="nbkeras-ro-"))  # reachable by `nobody`
    yield home
    for path in (home, *home.iterdir()):
        path.chmod(0o755)
    shutil.rmtree(home)


@pytest.mark.parametrize("existing_file", [False, True])
def test_a_read_only_home_warns_once_and_records_nothing(read_only_home, existing_file):
    home = read_only_home
    if existing_file:
        R.Registry(home).close()
        (home / "registry.sqlite3").chmod(0o444)
    home.chmod(0o555)
    out = subprocess.run([sys.executable, "-c", READ_ONLY_SCRIPT, str(home)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    kind, run_id, n, message = out.stdout.strip().split(" ", 3)
    assert (kind, run_id, n) == ("NullRegistry", "None", "1")
    assert message.startswith("nbkeras: runs are not being recorded:")


def test_a_locked_file_skips_one_write_and_keeps_recording(reg):
    run_id = _run(reg, epochs=[{"loss": 1.0}])
    reg._db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(reg.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another kernel holding the write lock
    with pytest.warns(R.RegistryWarning, match="a write was skipped"):
        reg.log_epoch(run_id, 1, {"loss": 0.5})
    other.execute("ROLLBACK")
    other.close()
    assert not reg.broken
    reg.log_epoch(run_id, 2, {"loss": 0.25})
    assert [h["epoch"] for h in reg.run(run_id)["history"]] == [0, 2]


def test_models_magic_and_registry_never_import_keras(nbkeras_home):
    code = textwrap.dedent("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        from nbkeras.registry import get_registry
        reg = get_registry()
        rid = reg.start_run(model="m", version_id=None, options={}, device="cpu",
                            backend="tensorflow", epochs_planned=1)
        reg.log_epoch(rid, 1, {"loss": 1.0}); reg.end_run(rid, "completed")
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "nbkeras")
        view = ip.run_line_magic("models", "")
        ip.run_line_magic("models", "m")
        print(len(view.runs), [m for m in ("keras", "tensorflow") if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 []"


def test_an_empty_file_is_a_version_0_registry(nbkeras_home):
    nbkeras_home.mkdir()
    (nbkeras_home / "registry.sqlite3").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = R.get_registry()
    assert reg.schema_version() == R.SCHEMA_VERSION
    run_id = _run(reg, epochs=[{"loss": 1.0}], status="completed")
    assert reg.run(run_id)["epochs"] == 1


def test_a_lock_reported_without_waiting_is_retried(nbkeras_home, monkeypatch):
    # CI: a writer's start_run came back None ("database is locked" at once,
    # bypassing the busy timeout) and its whole run went unrecorded
    import sqlite3
    from nbkeras.registry import Registry, get_registry
    reg = get_registry()
    real = Registry._transaction
    failures = iter([True, True])

    def flaky(db, fn):
        if next(failures, False):
            raise sqlite3.OperationalError("database is locked")
        return real(db, fn)

    monkeypatch.setattr(Registry, "_transaction", staticmethod(flaky))
    run_id = reg.start_run(model="m", version_id=None, options={}, device="cpu",
                           backend="tensorflow", epochs_planned=1)
    assert isinstance(run_id, int)
    assert reg.run(run_id)["model"] == "m"


# -- deleting and starring ---------------------------------------------------

def _rows_in_file(path, run_id):
    """What a fresh connection (another process) finds of a run in the file."""
    db = sqlite3.connect(str(path))
    try:
        return tuple(db.execute(sql, (run_id,)).fetchone()[0] for sql in (
            "SELECT COUNT(*) FROM runs WHERE id = ?",
            "SELECT COUNT(*) FROM epochs WHERE run_id = ?",
            "SELECT COUNT(*) FROM evaluations WHERE run_id = ?"))
    finally:
        db.close()


def test_a_deleted_run_leaves_the_file_and_other_readers_see_it(reg):
    keep = _run(reg, epochs=[{"loss": 1.0}], status="completed")
    gone = _run(reg, epochs=[{"loss": 1.0}, {"loss": 0.5}], status="completed")
    reg.add_evaluation(gone, "mnist", {"loss": 0.4})
    other = R.Registry(reg.home)  # as another kernel or the server would
    assert other.run(gone) is not None and _rows_in_file(reg.path, gone) == (1, 2, 1)
    cursor = other.cursor()

    assert reg.delete_runs([gone, 12345]) == [gone]
    assert _rows_in_file(reg.path, gone) == (0, 0, 0)
    assert other.run(gone) is None
    assert [r["id"] for r in other.run_summaries()] == [keep]
    # a poller learns of the deletion through the cursor
    assert other.cursor() > cursor
    assert other.deleted_since(cursor) == [gone]
    assert other.run_summaries(since=cursor) == []
    assert reg.delete_runs([gone]) == []
    other.close()


def test_a_deleted_runs_id_is_never_reused(reg):
    first = _run(reg, status="completed")
    last = _run(reg, status="completed")
    reg.delete_runs([last])
    assert _run(reg) == last + 1 != first


def test_deleting_a_model_version_deletes_its_runs(reg):
    v1 = reg.add_model_version("m", "dense 1", 2)
    v2 = reg.add_model_version("m", "dense 2", 4)
    a = _run(reg, model="m", version_id=v1, status="completed")
    b = _run(reg, model="m", version_id=v2, status="completed")
    assert reg.delete_model_version(v2) == {"version_id": v2, "name": "m", "runs": [b]}
    assert [v["id"] for v in R.Registry(reg.home).model_versions("m")] == [v1]
    assert [r["id"] for r in reg.run_summaries()] == [a]
    assert reg.delete_model_version(v2) is None
    assert reg.add_model_version("m", "dense 3", 6) == v2 + 1  # no id reuse


def test_a_starred_run_reads_back_starred(reg):
    run_id = _run(reg, status="completed")
    assert reg.run_summaries()[0]["starred"] is False
    cursor = reg.cursor()
    assert reg.set_starred(run_id, True)
    other = R.Registry(reg.home)
    assert [r["starred"] for r in other.run_summaries(since=cursor)] == [True]
    assert reg.set_starred(run_id, False) and not other.run(run_id)["starred"]
    assert not reg.set_starred(999, True)
    other.close()


def test_the_precision_of_a_run_comes_from_its_options(reg):
    reg.start_run(model="m", version_id=None, options={"mixed_precision": True},
                  device="GPU:0", backend="tensorflow", epochs_planned=1)
    _run(reg)
    assert [r["precision"] for r in reg.run_summaries()] == ["float32", "mixed"]
