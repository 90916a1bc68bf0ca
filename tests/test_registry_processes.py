"""The registry across real processes: two writers at once keep every
epoch, and a process killed with SIGKILL keeps its finished epochs and its
run reads as interrupted (computed by reads, recorded by `mark_interrupted`)."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from nbkeras import registry as R

WRITER = textwrap.dedent("""
    import sys, time
    from nbkeras.registry import get_registry
    model, seconds = sys.argv[1], float(sys.argv[2])
    reg = get_registry()
    run_id = reg.start_run(model=model, version_id=None, options={}, device="cpu",
                           backend="tensorflow", epochs_planned=0)
    print(run_id, flush=True)
    sys.stdin.readline()  # both writers start together
    end, epoch = time.time() + seconds, 0
    while time.time() < end:
        reg.log_epoch(run_id, epoch, {"loss": 1.0 / (epoch + 1), "val_accuracy": epoch / 1e4})
        epoch += 1
        time.sleep(0.002)  # an epoch of (very fast) training; without it SQLite's
        # busy handler can let one tight-looping writer starve the other
    reg.end_run(run_id, "completed")
    print(epoch, flush=True)
""")


def _spawn(*args):
    return subprocess.Popen([sys.executable, "-c", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def test_two_processes_writing_at_once_keep_every_epoch(nbkeras_home):
    procs = [_spawn(WRITER, name, "1.5") for name in ("a", "b")]
    run_ids = [int(p.stdout.readline()) for p in procs]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "not being recorded" not in err
        counts.append(int(out.strip()))
    reg = R.get_registry()
    assert all(n > 20 for n in counts), counts
    for run_id, n in zip(run_ids, counts):
        run = reg.run(run_id)
        assert run["status"] == "completed"
        assert [h["epoch"] for h in run["history"]] == list(range(n))
        assert run["epochs"] == n
        assert run["last"]["loss"] == 1.0 / n
        assert run["best"]["val_accuracy"] == (n - 1) / 1e4


KILLED = textwrap.dedent("""
    import time
    from nbkeras.registry import get_registry
    reg = get_registry()
    run_id = reg.start_run(model="killed", version_id=None, options={}, device="cpu",
                           backend="tensorflow", epochs_planned=10)
    for epoch in range(3):
        reg.log_epoch(run_id, epoch, {"loss": 1.0 - epoch / 10})
    print(run_id, flush=True)
    time.sleep(600)  # the fourth epoch, never finished
""")


def test_a_sigkilled_process_keeps_finished_epochs_and_reads_interrupted(nbkeras_home):
    proc = _spawn(KILLED)
    run_id = int(proc.stdout.readline())
    reg = R.get_registry()
    assert reg.run(run_id)["status"] == "running"  # alive: still running
    cur = reg.cursor()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    changed = reg.run_summaries(since=cur)  # the sidebar's poll learns of it
    assert [(r["id"], r["status"]) for r in changed] == [(run_id, "interrupted")]
    run = reg.run(run_id)
    assert run["status"] == "interrupted" and run["ended"] is not None
    assert [h["loss"] for h in run["history"]] == [1.0, 0.9, 0.8]
    # reads wrote nothing: a fresh process reads the file's own status
    assert _status_in_file(reg.path) == "running"
    assert reg.mark_interrupted() == [run_id]  # the server's timer, or the next writer
    assert _status_in_file(reg.path) == "interrupted"


def _status_in_file(path):
    out = subprocess.run([sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect("
                          "sys.argv[1]).execute('SELECT status FROM runs').fetchone()[0])",
                          str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_a_killed_zombie_reads_interrupted_before_it_is_reaped(nbkeras_home):
    proc = _spawn(KILLED)
    run_id = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.time() + 10
    reg = R.get_registry()
    while reg.run(run_id)["status"] != "interrupted" and time.time() < deadline:
        time.sleep(0.05)
    assert reg.run(run_id)["status"] == "interrupted"
    proc.wait(timeout=30)


FIT_KERNEL = textwrap.dedent("""
    import os, sys, time
    from IPython.core.interactiveshell import InteractiveShell
    name, epochs, wait_for = sys.argv[1], sys.argv[2], sys.argv[3]
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbkeras")
    ip.run_cell("import numpy as np; rng = np.random.default_rng(0); "
                "X = rng.normal(size=(64, 8)).astype('float32'); y = (X[:, 0] > 0).astype('int32')")
    ip.run_cell(f"%%model {name} --seed 0\\ninput 8\\ndense 4 relu\\ndense 2 softmax\\n").raise_error()
    if wait_for != "-":  # start training once the other kernel is training
        from nbkeras import runs
        while not any(r["model"] == wait_for and r["epochs"] for r in runs(model=wait_for)):
            time.sleep(0.05)
    ip.run_cell(f"%fit {name} X y -e {epochs} -b 16 --val-split 0.25 --quiet").raise_error()
""")


def test_two_kernels_running_fit_keep_every_epoch_and_a_killed_one_reads_interrupted(
        nbkeras_home):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    killed = subprocess.Popen([sys.executable, "-c", FIT_KERNEL, "b", "100000", "-"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finished = subprocess.Popen([sys.executable, "-c", FIT_KERNEL, "a", "30", "b"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = finished.communicate(timeout=240)
        assert finished.returncode == 0, err[-2000:]
        reg = R.get_registry()
        seen = reg.run_summaries(model="b")[0]
        assert seen["status"] == "running" and seen["epochs"] > 0
    finally:
        killed.kill()  # SIGKILL, mid-epoch
        killed.communicate(timeout=60)
    a = reg.runs(model="a")[0]
    assert a["status"] == "completed"
    assert [e["epoch"] for e in a["epochs"]] == list(range(1, 31))
    assert all({"loss", "val_loss", "accuracy", "val_accuracy"} <= set(e) for e in a["epochs"])
    b = reg.runs(model="b")[0]
    assert b["status"] == "interrupted" and b["ended"] is not None
    n = len(b["epochs"])
    assert n >= seen["epochs"] and [e["epoch"] for e in b["epochs"]] == list(range(1, n + 1))
    # the two runs really wrote at the same time
    db = sqlite3.connect(reg.path)
    (a_first, a_last), = db.execute("SELECT MIN(time), MAX(time) FROM epochs WHERE run_id = ?",
                                    (a["id"],))
    b_during_a = db.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ? AND time BETWEEN ? "
                            "AND ?", (b["id"], a_first, a_last)).fetchone()[0]
    db.close()
    assert b_during_a >= 5
