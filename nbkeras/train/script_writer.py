"""The text of the `%fit --code` script, rendered section by section: the
imports, the device set-up, the model (from its spec's code, or the saved
model), its weights and seeds, the data files, the callbacks, the `fit`
call and the save. `nbkeras.train.script` writes it and shows it; the
pieces it is made of are `script_parts.py`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, List

import numpy as np

from ..errors import DataError
from .script_parts import (built_at_fit, carries_optimizer, compile_from_config_lines, data_stem,
                           device_choice, fit_seed_states, fresh_copy, is_literal, mixed_copy,
                           policy_of, session_copies, spec_source)

SCRIPT = "train.py"

_MULTI_WORKER = """\
# More than one machine (Keras' multi-worker forms), the same script on each:
# - JAX: call `keras.distribution.initialize()` right after `import keras`
#   on every process. It takes `job_addresses=` (the coordinator's
#   "host:port"), `num_processes=` and `process_id=`, or reads them from
#   KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and
#   KERAS_DISTRIBUTION_PROCESS_ID. `keras.distribution.list_devices()` then
#   lists the devices of every host, for `DataParallel(devices=...)`.
# - TensorFlow: set TF_CONFIG on each worker (JSON: {"cluster": {"worker":
#   ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": I}})
#   and build and compile inside `tf.distribute.MultiWorkerMirroredStrategy()`'s
#   scope; let only worker 0 (the chief) save the model.
"""


@dataclass
class FitScript:
    """A written script: its text, its folder and the data files beside it."""

    code: str
    folder: str
    files: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # where it cannot train as %fit would

    @property
    def path(self) -> str:
        return os.path.join(self.folder, SCRIPT)


class Writer:
    """One script, rendered section by section."""

    def __init__(self, plan, model, info, out: FitScript):
        import keras
        self.keras = keras
        self.plan, self.model, self.info, self.out = plan, model, info, out
        self.imports = {"os", "pathlib"}
        self.uses_layers = False
        self.compiled_from_config = False  # the script's optimizer is built by then
        self.copies = session_copies(plan, model)
        self.carry = carries_optimizer(plan, model)
        self.notes: List[str] = []  # what the script cannot do as %fit does

    def render(self) -> str:
        build = self._build_model()  # first: it decides which imports the model needs
        data = self._data()
        callbacks = self._callbacks()
        body = (self._setup() + build + self._instantiate() + [""] + data + self._prebuild()
                + self._seed() + [""] + callbacks + self._fit() + [""] + self._finish())
        return "\n".join(self._head() + body).rstrip() + "\n"

    # header and imports
    def _head(self) -> List[str]:
        plan, opts = self.plan, self.plan.options
        xy = " and ".join(f"`{e}`" for e in (opts.get("x"), opts.get("y")) if e)
        shown = os.path.join(self.out.folder, SCRIPT)
        lines = [f'"""Train `{plan.name}` on {xy} as `%fit {plan.name}` would, with plain Keras.',
                 "",
                 "Written by nbkeras (`%fit ... --code`). Run it from the notebook's folder:",
                 "",
                 f"    python {shown}",
                 "",
                 "The data are the .npy files beside this script; the paths the options",
                 "name (checkpoint, CSV log, TensorBoard) are relative to where it runs.",
                 '"""', "", *_MULTI_WORKER.splitlines(), ""]
        lines += [f"import {m}" for m in sorted(self.imports - {"numpy"})]
        lines += ["", "import numpy as np", "",
                  f'os.environ.setdefault("KERAS_BACKEND", "{self.keras.backend.backend()}")',
                  "import keras  # noqa: E402"]
        if self.uses_layers:
            lines.append("from keras import layers  # noqa: E402")
        return lines + ["", "HERE = pathlib.Path(__file__).resolve().parent", "", ""]

    def _setup(self) -> List[str]:
        from .device import is_mixed, mixed_policy_name
        lines: List[str] = []
        if self.plan.mixed_precision or is_mixed(self.model):
            policy = policy_of(self.model) if is_mixed(self.model) else mixed_policy_name()
            lines += ["# --mixed-precision: mixed_float16 on a GPU, mixed_bfloat16 on a CPU",
                      f"keras.mixed_precision.set_dtype_policy({policy!r})"]
        lines += self._distribution()
        while lines and not lines[0]:
            lines.pop(0)
        return lines + ["", ""] if lines else lines

    def _distribution(self) -> List[str]:
        devices = getattr(self.plan, "devices", None)
        if devices is None or devices is False or devices == [] or devices == "":
            return []
        self.imports.add("contextlib")
        jax_pick, tf_lines, said = device_choice(devices)
        return [
            "",
            f"# --devices {said}: data parallel, one replica of the model per device, each",
            "# batch split between them (the batch size is the global one).",
            "scope = contextlib.nullcontext()",
            'if keras.backend.backend() == "jax":',
            "    # keras.distribution.initialize()  # several hosts: see the top of this file",
            f"    devices = {jax_pick}",
            "    distribution = keras.distribution.DataParallel(devices=devices)",
            "    keras.distribution.set_distribution(distribution)",
            '    print(f"data parallel over {len(devices)} devices: {devices}")',
            'elif keras.backend.backend() == "tensorflow":',
            "    import tensorflow as tf",
            "",
            *("    " + line for line in tf_lines),
            "    scope = strategy.scope()  # the model is built and compiled in it",
            '    print(f"data parallel over {strategy.num_replicas_in_sync} devices")',
            "else:",
            '    print("data parallel needs the JAX or TensorFlow backend: one device")']

    # the model
    def _build_model(self) -> List[str]:
        source = spec_source(self.plan, self.model, self.info)
        if source is not None:
            body, compile_line = source
            self.uses_layers = True
            self.compiled_from_config = any("compile_from_config" in l for l in compile_line)
            lines = ["def build_model():",
                     f'    """`{self.plan.name}` from its %%model spec (the code of '
                     '`%%model --code`)."""']
            lines += [("    " + l) if l else "" for l in body]
            lines += ["    " + l for l in compile_line]
            return lines + ["    return model", "", ""]
        return self._saved_model()

    def _start_model(self):
        """The model `fit` starts from in the notebook: `model` itself when the
        run goes on with its optimizer, else the copy `%fit` trains (its
        weights, a fresh optimizer)."""
        if self.carry:
            return self.model
        if "mixed" in self.copies:
            return mixed_copy(self.model, self.info)
        return fresh_copy(self.model)

    def _saved_model(self) -> List[str]:
        """A model not built from a spec (or no longer matching it): saved beside the script."""
        plan = self.plan
        name = f"{plan.name}.start.keras"
        self._start_model().save(os.path.join(self.out.folder, name))
        self.out.files.append(name)
        why = ("was not built by a %%model spec" if not self.info.spec_text
               else "no longer matches its %%model spec")
        lines = ["def build_model():",
                 f'    """`{plan.name}` {why}: the model itself, saved beside',
                 "    this script by `%fit --code` (its weights, compile settings and",
                 f'    optimizer state as `%fit {plan.name}` starts from them)."""',
                 f'    model = keras.saving.load_model(HERE / "{name}")']
        if plan.settle:
            lines += ["    # the loss %fit settles from the labels"]
            lines += ["    " + l for l in compile_from_config_lines(self.model, plan)]
        else:
            if plan.options.get("jit"):
                lines.append("    model.jit_compile = True  # --jit")
            if plan.step_size > 1:
                lines.append(f"    model.steps_per_execution = {plan.step_size}"
                             "  # --steps-per-execution")
        return lines + ["    return model", "", ""]

    def _instantiate(self) -> List[str]:
        inner = ["model = build_model()"]
        if self.uses_layers:
            inner += self._load_weights()
        inner += self._seed_streams()
        if "contextlib" in self.imports:
            return ["with scope:"] + ["    " + l for l in inner]
        return inner

    def _load_weights(self) -> List[str]:
        """The weights `fit` starts from in the notebook (initial or trained)
        and, when the run goes on with it, the optimizer's state."""
        name, n = f"{self.plan.name}.start.weights.h5", self.info.epochs_done
        # save_weights writes the optimizer's variables too: a copy without one has none
        start = self.model if self.carry else fresh_copy(self.model, compiled=False)
        start.save_weights(os.path.join(self.out.folder, name))
        self.out.files.append(name)
        held = (f"after {n} epoch{'s' if n != 1 else ''} of training there" if n
                else "its initial weights")
        lines = [f"# the weights `{self.plan.name}` holds in the notebook ({held})"]
        if self.carry:
            step = int(self.keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            lines[0] += ","
            lines += [f"# and its optimizer's state (step {step}, learning rate, slots): "
                      "%fit goes on with it"]
            if not self.compiled_from_config:
                lines += ["model.optimizer.build(model.trainable_variables)  # the slots to "
                          "load into"]
        lines += ["# (delete the next line to train from new weights)",
                  f'model.load_weights(HERE / "{name}")']
        return lines

    def _seed_streams(self) -> List[str]:
        """Dropout's random streams where `fit` starts them in the notebook
        (Keras saves no seed state with a model)."""
        states = fit_seed_states(self.plan, self.model, self.info)
        if not states:
            return []
        name = f"{self.plan.name}.start.seeds.npy"
        np.save(os.path.join(self.out.folder, name), np.stack(states), allow_pickle=False)
        self.out.files.append(name)
        return ["# the random streams of its dropout layers, where %fit starts them (Keras",
                "# saves no seed state with a model)",
                'streams = [v for v in model.variables if v.name == "seed_generator_state"]',
                f'for stream, state in zip(streams, np.load(HERE / "{name}")):',
                "    stream.assign(state)"]

    def _prebuild(self) -> List[str]:
        if not built_at_fit(self.plan, self.model):
            return []
        y = ("keras.tree.map_structure(first, y)" if self.plan.fit_kwargs.get("y") is not None
             else "None")
        return ["", "# the loss and metrics built before fit, as %fit has them (on JAX, fit would",
                "# build them from a first shuffled batch, one shuffle more than in the notebook)",
                f"first = lambda a: a[:{self.plan.batch_size}]  # one batch  # noqa: E731",
                f"model.evaluate(keras.tree.map_structure(first, x), {y}, verbose=0)"]

    def _seed(self) -> List[str]:
        if self.plan.seed is None:
            return ["", "# no --seed: shuffling and dropout draw new numbers on each run"]
        return ["", "# --seed, where %fit sets it: once the model holds its starting state, "
                "before fit",
                f"keras.utils.set_random_seed({self.plan.seed})"]

    # data, callbacks, fit
    def _data(self) -> List[str]:
        plan, kw = self.plan, self.plan.fit_kwargs
        lines = [self._assign("x", plan.x, "x")]
        if kw.get("y") is not None:
            lines.append(self._assign("y", kw["y"], "y"))
        val = kw.get("validation_data")
        if val is not None:
            vx, vy = val if isinstance(val, tuple) else (val, None)
            lines.append(self._assign("x_val", vx, "x_val"))
            if vy is not None:
                lines.append(self._assign("y_val", vy, "y_val"))
        if kw.get("sample_weight") is not None:
            lines.append(self._assign("sample_weight", kw["sample_weight"], "sample_weight"))
        return lines

    def _assign(self, var: str, value: Any, stem: str) -> str:
        taken = self.out.files
        if isinstance(value, dict):
            parts = [f"    {k!r}: {self._save(v, data_stem(f'{stem}_{k}', taken))},"
                     for k, v in value.items()]
            return "\n".join([f"{var} = {{", *parts, "}"])
        if isinstance(value, (list, tuple)):
            parts = [f"    {self._save(v, data_stem(f'{stem}_{i}', taken))},"
                     for i, v in enumerate(value)]
            return "\n".join([f"{var} = [", *parts, "]"])
        return f"{var} = {self._save(value, data_stem(stem, taken))}"

    def _save(self, value: Any, stem: str) -> str:
        name = f"{stem}.npy"
        try:
            array = np.asarray(value)
            np.save(os.path.join(self.out.folder, name), array, allow_pickle=False)
        except (ValueError, TypeError) as exc:
            raise DataError(f"--code cannot write `{stem}` as a .npy file ({exc}): give "
                            "numeric arrays") from None
        self.out.files.append(name)
        return f'np.load(HERE / "{name}")'

    def _callbacks(self) -> List[str]:
        keras, plan = self.keras, self.plan
        cb_mod = keras.callbacks
        defs: List[str] = []
        items: List[str] = []
        monitor, mode = plan.monitor, plan.mode
        watch = f"monitor={monitor!r}, mode={mode!r}"
        for cb in plan.callbacks:
            if isinstance(cb, cb_mod.EarlyStopping):
                items += [f"# --early-stop {cb.patience}: the best weights are restored at the end",
                          f"keras.callbacks.EarlyStopping({watch}, patience={cb.patience}, "
                          "restore_best_weights=True),"]
            elif isinstance(cb, cb_mod.ReduceLROnPlateau):
                items += [f"# --reduce-lr {cb.patience}",
                          f"keras.callbacks.ReduceLROnPlateau({watch}, patience={cb.patience}, "
                          f"factor={float(cb.factor)!r}),"]
            elif isinstance(cb, cb_mod.LearningRateScheduler):
                defs += self._schedule()
                items += [f"# --lr-schedule {plan.options.get('lr_schedule')}",
                          "keras.callbacks.LearningRateScheduler(lr_schedule),"]
            elif isinstance(cb, cb_mod.ModelCheckpoint):
                path = getattr(cb, "final_path", cb.filepath)
                weights = ", save_weights_only=True" if cb.save_weights_only else ""
                items += ["# --checkpoint: the best model so far",
                          f"keras.callbacks.ModelCheckpoint({path!r}, {watch}, "
                          f"save_best_only=True{weights}),"]
            elif isinstance(cb, cb_mod.TensorBoard):
                items += ["# --tensorboard",
                          f"keras.callbacks.TensorBoard(log_dir={cb.log_dir!r}),"]
            elif isinstance(cb, cb_mod.CSVLogger):
                append = ", append=True" if cb.append else ""
                items += ["# --csv", f"keras.callbacks.CSVLogger({cb.filename!r}{append}),"]
            else:
                items.append(f"# ({type(cb).__name__}: an nbkeras callback, not written out)")
                self.notes.append(f"its callback {type(cb).__name__} is not written out")
        if not items:
            return defs + ["callbacks = []", ""]
        return defs + ["callbacks = ["] + ["    " + i for i in items] + ["]", ""]

    def _schedule(self) -> List[str]:
        opts, plan = self.plan.options, self.plan
        kind = str(opts.get("lr_schedule")).lower()
        base = self.info.extra.get("base_lr")
        if base is None:
            base = float(self.keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        base = float(str(np.float32(base)))  # 0.001, not 0.0010000000474974513
        decay, step = opts.get("lr_decay"), opts.get("lr_step")
        self.imports.add("math")
        if kind == "cosine":
            n = max(plan.epochs, 1)
            doc = f"cosine decay from {base!r} over {plan.epochs} epochs"
            value = f"{base!r} * 0.5 * (1 + math.cos(math.pi * min(epoch, {plan.epochs}) / {n}))"
        elif kind == "exponential":
            rate = 0.9 if decay is None else decay
            doc = f"{base!r} times {rate!r} per epoch"
            value = f"{base!r} * {rate!r} ** epoch"
        else:
            factor = 0.5 if decay is None else decay
            every = step or max(1, plan.epochs // 3)
            doc = f"{base!r} times {factor!r} every {every} epochs"
            value = f"{base!r} * {factor!r} ** (epoch // {every})"
        return ["def lr_schedule(epoch, lr):",
                f'    """--lr-schedule {kind}: {doc}."""',
                f"    return {value}", "", ""]

    def _fit(self) -> List[str]:
        kw = self.plan.fit_kwargs
        args = ["x"] + (["y"] if kw.get("y") is not None else [])
        for key, value in kw.items():
            if key in ("y", "verbose"):
                continue
            if key == "validation_data":
                args.append("validation_data=(x_val, y_val)" if isinstance(value, tuple)
                            else "validation_data=x_val")
            elif key == "sample_weight":
                args.append("sample_weight=sample_weight")
            elif key == "shuffle" and value is True:
                continue  # Keras' default
            elif key == "initial_epoch" and not value:
                continue
            elif is_literal(value):
                args.append(f"{key}={value!r}")
            else:
                args.append(f"# {key}: not written out ({type(value).__name__})")
                self.notes.append(f"fit's {key}= ({type(value).__name__}) is not written out")
        args += ["callbacks=callbacks", "verbose=2"]
        return (["history = model.fit("] + [f"    {a}," if not a.startswith("#") else f"    {a}"
                                           for a in args] + [")"])

    def _finish(self) -> List[str]:
        name = f"{self.plan.name}.keras"
        self.imports.add("json")
        return [f'model.save(HERE / "{name}")',
                f"# each epoch's logged values, as `{self.plan.name}.history.history` holds "
                "them in the notebook",
                "logged = {k: [float(v) for v in values] for k, values in history.history.items()}",
                '(HERE / "history.json").write_text(json.dumps(logged, indent=1))',
                'print(f"{len(history.epoch)} epochs trained; model saved to '
                f'{{HERE / {name!r}}}, history to history.json beside it")']
