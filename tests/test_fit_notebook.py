"""`%fit` in a real kernel: the saved notebook keeps a small static record,
and interrupting the kernel stops training cleanly."""

import json
import threading

import nbformat
import pytest
from nbclient import NotebookClient

DATA = """\
import numpy as np
from sklearn.datasets import load_digits
d = load_digits()
x = (d.data[:600] / 16).astype('float32'); y = d.target[:600]
xv = (d.data[600:700] / 16).astype('float32'); yv = d.target[600:700]"""

MODEL = """\
%%model clf
input 64
dense 16 relu
dense 10 softmax"""


def _execute(cells, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "fit.ipynb"
    nbformat.write(nb, path)
    return nb, path


def _cell_bytes(cell):
    return len(json.dumps(cell["outputs"]).encode())


def test_saved_notebook_keeps_a_small_static_record(tmp_path):
    nb, path = _execute([
        "%load_ext nbkeras", DATA, MODEL,
        "h = %fit clf x y -e 4 -b 16 --val xv yv",
        "print(len(h.history['loss']), sorted(h.history))",
        "h2 = %fit clf x y -e 60 -b 8 --resume",
    ], tmp_path)
    fit = nb.cells[3]
    kinds = [o["output_type"] for o in fit["outputs"]]
    assert "error" not in kinds
    mimes = [m for o in fit["outputs"] for m in o.get("data", {})]
    # the live panel was replaced by the record: no widget view, no widget state
    assert "application/vnd.jupyter.widget-view+json" not in mimes
    assert not nb.metadata.get("widgets"), "nbclient stored widget state for a finished panel"
    html = next(o["data"]["text/html"] for o in fit["outputs"] if "text/html" in o.get("data", {}))
    assert "<table" in html and "val" in html and "completed" in html
    assert "CPU · mixed precision off" in html
    assert any("image/png" in o.get("data", {}) for o in fit["outputs"])
    assert "4 ['accuracy', 'loss', 'val_accuracy', 'val_loss']" in nb.cells[4]["outputs"][0]["text"]
    # the size bound holds whatever the epochs and batches (60 epochs x 75 batches)
    assert _cell_bytes(fit) < 100_000
    assert _cell_bytes(nb.cells[5]) < 100_000
    assert "completed, epoch 64 of 64" in json.dumps(nb.cells[5]["outputs"])  # resumed: epochs 5-64 after 4

    from nbconvert import HTMLExporter
    body, _ = HTMLExporter().from_filename(str(path))
    assert "nbkeras-metrics" in body
    assert body.count("data:image/png;base64") >= 2


@pytest.fixture
def kernel():
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _run(kc, code, hook=None, timeout=120):
    outputs = []

    def collect(msg):
        if msg["msg_type"] in ("stream", "display_data", "update_display_data",
                               "execute_result", "error"):
            outputs.append(msg)
        if hook:
            hook(msg)

    reply = kc.execute_interactive(code, output_hook=collect, timeout=timeout)
    return reply, outputs


def _text(outputs):
    parts = []
    for msg in outputs:
        c = msg["content"]
        parts.append(c.get("text", "") + c.get("data", {}).get("text/plain", "")
                     + c.get("data", {}).get("text/html", "") + " ".join(c.get("traceback", [])))
    return "\n".join(parts)


def _replies(kc, msg_ids, hook, timeout=120):
    """Replies to several queued execute requests, feeding iopub to `hook`."""
    import queue
    import time
    replies, outputs, deadline = {}, {m: [] for m in msg_ids}, time.time() + timeout
    idle = set()
    while (len(replies) < len(msg_ids) or msg_ids[0] not in idle) and time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
            parent = msg["parent_header"].get("msg_id")
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle.add(parent)
            elif parent in outputs:
                outputs[parent].append(msg)
                hook(msg)
        except queue.Empty:
            pass
        try:
            reply = kc.get_shell_msg(timeout=0.05)
            replies[reply["parent_header"]["msg_id"]] = reply
        except queue.Empty:
            pass
    return replies, outputs


def test_interrupt_stops_training_and_the_queued_cells(kernel):
    """Stop means stop: training ends after the current batch, the weights
    and the partial history are kept, the run is recorded as stopped, and
    the cell ends as interrupted (one line, no traceback), so the cells
    queued after it ("Run All") are aborted."""
    km, kc = kernel
    for code in ["%load_ext nbkeras", DATA, MODEL]:
        reply, outs = _run(kc, code)
        assert reply["content"]["status"] == "ok", _text(outs)
    timer = []

    def interrupt_when_training(msg):
        # the panel is shown when training starts; interrupt a little later
        if msg["msg_type"] == "display_data" and not timer:
            timer.append(threading.Timer(4.0, km.interrupt_kernel))
            timer[0].start()

    ids = [kc.execute("h = %fit clf x y -e 500 -b 8"),
           kc.execute("print('queued cell ran')"),
           kc.execute("%evaluate clf x y")]
    replies, outputs = _replies(kc, ids, interrupt_when_training)
    assert timer, "training never started"
    assert [replies[i]["content"]["status"] for i in ids] == ["error", "aborted", "aborted"]
    text = _text(outputs[ids[0]])
    assert replies[ids[0]]["content"]["ename"] == "TrainingStopped"
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert "stopped at epoch" in text and "of 500: weights kept, history in `clf.history`" in text
    shown = ("stream", "display_data", "update_display_data", "execute_result", "error")
    assert not [m for i in ids[1:] for m in outputs[i] if m["msg_type"] in shown]

    reply, outs = _run(kc, "h = clf.history\n"
                           "print(len(h.history['loss']), h.epoch[-1] + 1 if h.epoch else 0)")
    done, last = map(int, _text(outs).split())
    assert 1 <= done < 500 and last == done
    # the model is still usable, its weights kept, and the run is marked stopped
    reply, outs = _run(kc, "print(clf.predict(x[:3], verbose=0).shape)\n"
                           "from nbkeras.registry import get_registry\n"
                           "from nbkeras.state import get_info\n"
                           "print(get_registry().run(get_info(clf).run_ids[-1])['status'])")
    assert "(3, 10)" in _text(outs) and "stopped" in _text(outs)
    reply, outs = _run(kc, "h = %fit clf x y -e 1 --quiet")
    assert reply["content"]["status"] == "ok" and "completed" in _text(outs)


def test_the_live_panel_updates_its_own_outputs_in_a_real_kernel(kernel):
    """The panel's updates are update_display_data messages for the display
    ids it showed, parented to the %fit cell (sent straight to IOPub, not
    through IPython's stream-flushing display path)."""
    km, kc = kernel
    for code in ["%load_ext nbkeras", DATA, MODEL,
                 "from nbkeras.view.publish import OutputUpdater, _direct\n"
                 "assert _direct(get_ipython().display_pub), 'ipykernel changed its publisher'"]:
        reply, outs = _run(kc, code)
        assert reply["content"]["status"] == "ok", _text(outs)
    reply, outs = _run(kc, "h = %fit clf x y -e 8 -b 8 --update-interval 0.05")
    assert reply["content"]["status"] == "ok", _text(outs)
    shown = [m["content"]["transient"]["display_id"] for m in outs
             if m["msg_type"] == "display_data" and m["content"].get("transient")]
    updates = [m for m in outs if m["msg_type"] == "update_display_data"]
    assert len(shown) == 2                     # the panel, and the place of the record's chart
    assert {m["content"]["transient"]["display_id"] for m in updates} == set(shown)
    live = [m for m in updates if m["content"]["transient"]["display_id"] == shown[0]]
    assert len(live) >= 8                                    # at least one per epoch
    assert all("<svg" in m["content"]["data"]["text/html"] for m in live[1:-1])
    parents = {m["parent_header"]["msg_id"] for m in updates}
    assert parents == {reply["parent_header"]["msg_id"]}
    last = [m for m in updates if m["content"]["transient"]["display_id"] == shown[0]][-1]
    assert "data-status='completed'" in last["content"]["data"]["text/html"]


def test_a_background_run_leaves_its_record_in_a_headlessly_executed_notebook(tmp_path):
    """nbclient listens to the executing cell only: the background run's updates
    are parented to it (`job.wait()` here) and applied to the %fit cell's
    outputs by display id, so the saved file keeps the record, not a frozen
    'running' panel; a text view writes into its own cell, not the one running."""
    nb, _ = _execute([
        "%load_ext nbkeras", DATA, MODEL,
        "job = %fit clf x y -e 3 -b 16 --background",
        "job.wait(); print(job.status)",
        "%%model other\ninput 64\ndense 10 softmax",
        "job2 = %fit other x y -e 2 -b 64 --background --text",
        "job2.wait(); print('second', job2.status)",
    ], tmp_path)
    fit = nb.cells[3]["outputs"]
    html = [o["data"]["text/html"] for o in fit if "text/html" in o.get("data", {})]
    assert html and "data-status='completed'" in html[0] and "data-status='running'" not in html[0]
    assert any("image/png" in o.get("data", {}) for o in fit)
    # the Stop button's output is emptied: no widget view left in the cell
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in fit)
    assert nb.cells[4]["outputs"][-1]["text"] == "completed\n"
    text = "".join(o.get("data", {}).get("text/plain", "") for o in nb.cells[6]["outputs"])
    assert "other: training epochs 1-2" in text and "epoch 2/2" in text
    waited = "".join(o.get("text", "") for o in nb.cells[7]["outputs"])
    assert waited == "second completed\n"  # the run's lines are not in the cell that waits
