"""However a run ends, its model comes out with readable, finite weights:
the last good ones (issue 19, item 12).

On JAX, Keras takes the variables' values off the model while an epoch
trains and hands them to the compiled step; a step that fails (out of
memory on a GPU) leaves them empty, and before nbkeras put the last good
state back, reading a weight and every later `%fit` failed with
`TypeError: 'NoneType' object is not callable`.

Each failure is injected where it happens for real: inside the compiled
step at run time (a host callback that raises: `jax.pure_callback`,
`tf.numpy_function`), in the data source (a `PyDataset` that raises), and a
loss that becomes NaN. The oracle is plain Keras from the same initial
weights on the same data: the weights nbkeras keeps equal those of the
steps that completed, and where plain Keras itself loses them (JAX, a
failed step) those of the last epoch that ended. Each backend runs in a
subprocess with an IPython shell (as `tests/test_backends.py` does).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import contextlib, io, json, math, numpy as np, keras
    from IPython.core.interactiveshell import InteractiveShell
    import nbkeras
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbkeras")
    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, :2].sum(1) > 0).astype("int32")
    ip.user_ns.update(x=x, y=y)
    FAIL = {"at": None, "oom": False, "nan": False}
    CALLS = [0]

    def hook(a):
        CALLS[0] += 1
        if FAIL["at"] is not None and CALLS[0] >= FAIL["at"]:
            if FAIL["nan"]:
                return np.full_like(a, np.nan)
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
                               "4.00GiB" if FAIL["oom"] else "injected failure")
        return a

    class Boom(keras.layers.Layer):
        '''The identity, through a host callback that runs inside the compiled
        step at run time (once a step), so that `hook` can make the step fail
        or its output NaN.'''
        def call(self, t):
            if backend == "jax":
                import jax
                @jax.custom_jvp
                def ident(a):
                    return jax.pure_callback(hook, jax.ShapeDtypeStruct(a.shape, a.dtype), a)
                @ident.defjvp
                def _(p, tangents):
                    return ident(p[0]), tangents[0]
                return ident(t)
            import tensorflow as tf
            out = tf.numpy_function(hook, [t], t.dtype)
            out.set_shape(t.shape)
            return t + tf.stop_gradient(out - t)

    class Data(keras.utils.PyDataset):
        '''The arrays in batches of 16; at batch 2 of epoch 2 it raises. (Keras reads a batch or two and
        ends an "epoch" before training, on JAX and TensorFlow alike: the
        first training epoch is the one after the first `on_epoch_end`.)'''
        def __init__(self, mode):
            super().__init__()
            self.mode, self.epoch = mode, 0
        def __len__(self):
            return 6
        def __getitem__(self, i):
            s = slice(i * 16, (i + 1) * 16)
            if self.epoch == 2 and i == 1:
                raise RuntimeError("the data source failed")
            return x[s], y[s]
        def on_epoch_end(self):
            self.epoch += 1

    def make():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              Boom(), keras.layers.Dense(2, activation="softmax")])
        m.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        return m

    def arm(at, oom=False, nan=False):
        CALLS[0] = 0
        FAIL.update(at=at, oom=oom, nan=nan)

    def weights(m):
        try:
            return [np.array(w).tolist() for w in m.get_weights()]
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    def fit(line):
        result = ip.run_cell(line)
        error = result.error_in_exec
        return None if error is None else f"{type(error).__name__}: {error}"

    def plain(data, epochs, at=None, **kw):
        '''Plain Keras from the same initial weights: its weights at the end.'''
        m = make()
        arm(at)
        with contextlib.suppress(Exception):
            m.fit(data, epochs=epochs, verbose=0, shuffle=False, **kw)
        arm(None)
        return weights(m)

    def then(name):
        '''The next %fit of the model: does it train?'''
        arm(None)
        before = ip.user_ns[name].get_weights()
        error = fit(f"%fit {name} x y -e 1 -b 16 --steps-per-execution 1 --quiet")
        after = ip.user_ns[name].get_weights()
        return {"error": error, "changed": any(not np.array_equal(a, b)
                                               for a, b in zip(before, after)),
                "finite": all(np.isfinite(w).all() for w in after)}

    out = {"backend": backend}
    ARRAYS = "x y -e 3 -b 16 --no-shuffle --steps-per-execution 1 --quiet"

    # A: the run's first step runs out of memory
    ip.user_ns["a"] = make()
    out["a_before"] = weights(ip.user_ns["a"])
    arm(1, oom=True)
    out["a_error"] = fit(f"%fit a {ARRAYS}")
    out["a_after"] = weights(ip.user_ns["a"])
    out["a_then"] = then("a")

    # B: the compiled step fails at step 2 of epoch 2 (6 steps an epoch)
    ip.user_ns["b"] = make()
    arm(8)
    out["b_error"] = fit(f"%fit b {ARRAYS}")
    out["b_after"] = weights(ip.user_ns["b"])
    out["b_run"] = nbkeras.runs("b")[0]
    out["b_plain_failed"] = plain(x, 3, at=8, y=y, batch_size=16)
    out["b_plain_epoch1"] = plain(x, 1, y=y, batch_size=16)
    out["b_then"] = then("b")

    # C: the data source raises at batch 2 of epoch 2
    ip.user_ns["c"], ip.user_ns["raising"] = make(), Data("raise")
    out["c_error"] = fit("%fit c raising -e 3 --quiet")
    out["c_after"] = weights(ip.user_ns["c"])
    out["c_plain"] = plain(Data("raise"), 3)
    out["c_then"] = then("c")

    # D: the loss becomes NaN at step 2 of epoch 2, inside the compiled step (the step
    # count is exact; a data source's NaN batch is not: TensorFlow's reader prefetches
    # across the epoch end that would switch it on, and CI saw it land in no epoch)
    ip.user_ns["d"] = make()
    arm(8, nan=True)
    out["d_error"] = fit(f"%fit d {ARRAYS}")
    out["d_after"] = weights(ip.user_ns["d"])
    out["d_run"] = nbkeras.runs("d")[0]
    out["d_plain_epoch1"] = plain(x, 1, y=y, batch_size=16)
    out["d_then"] = then("d")
    print("\\nRESULT", json.dumps(out, default=str))
""")


def _run(backend, tmp_path):
    env = dict(os.environ, KERAS_BACKEND=backend, NBKERAS_HOME=str(tmp_path),
               JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("\nRESULT ")[-1])


def _same(a, b):
    assert isinstance(a, list), a  # readable: a list of arrays, not an error text
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(np.array(u), np.array(v), rtol=1e-6, atol=1e-7)


def _trains(then):
    assert then == {"error": None, "changed": True, "finite": True}


@pytest.fixture(scope="module", params=["jax", "tensorflow"])
def outcome(request, tmp_path_factory):
    return _run(request.param, tmp_path_factory.mktemp(request.param))


def test_out_of_memory_in_the_first_step_keeps_the_weights_and_the_next_fit_trains(outcome):
    assert outcome["a_error"].startswith("UsageError: out of memory with batch size 16")
    _same(outcome["a_after"], outcome["a_before"])
    _trains(outcome["a_then"])


def test_a_step_that_fails_mid_epoch_leaves_the_last_good_weights(outcome):
    assert "injected failure" in outcome["b_error"]
    if outcome["backend"] == "jax":  # plain Keras loses them: the last epoch that ended
        assert not isinstance(outcome["b_plain_failed"], list)
        _same(outcome["b_after"], outcome["b_plain_epoch1"])
        assert outcome["b_run"]["kept_epoch"] == 1
    else:                            # the steps that completed, as plain Keras keeps them
        _same(outcome["b_after"], outcome["b_plain_failed"])
    assert outcome["b_run"]["status"] == "failed"
    _trains(outcome["b_then"])


def test_a_data_source_that_fails_mid_epoch_leaves_the_last_steps_weights(outcome):
    assert "the data source failed" in outcome["c_error"]
    _same(outcome["c_after"], outcome["c_plain"])
    _trains(outcome["c_then"])


def test_a_nan_loss_leaves_the_last_finite_epochs_weights(outcome):
    assert "loss became nan in epoch 2" in outcome["d_error"]
    assert "the model holds the weights of epoch 1" in outcome["d_error"]
    _same(outcome["d_after"], outcome["d_plain_epoch1"])
    assert outcome["d_run"]["status"] == "failed" and len(outcome["d_run"]["epochs"]) == 1
    _trains(outcome["d_then"])
