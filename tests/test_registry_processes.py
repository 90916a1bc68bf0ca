"""The registry across real processes: two writers at once keep every
epoch, and a process killed with SIGKILL keeps its finished epochs and its
run reads as interrupted."""

import os
import signal
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
    # persisted: a fresh process sees it too, without having to detect it
    out = subprocess.run([sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect("
                          "sys.argv[1]).execute('SELECT status FROM runs').fetchone()[0])",
                          str(reg.path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "interrupted"


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
