"""Requests that arrive together are predicted in one batch.

As TensorFlow Serving's batching does: the first request waiting opens a
window (`window_ms`, a few milliseconds); requests arriving within it join
the batch until it holds `max_batch` rows. Unlike TF Serving, the window is
only waited while another request is on its way in (its body being read or
checked: `arriving`), so a lone request never waits for company. The
batch goes through one `predict` on the one thread that calls the model,
and each request gets its own rows back. While that thread predicts, new
requests queue up and form the next batch, so under concurrency the server
makes one predict call per batch instead of one per request. A batch is padded with zero rows
to the next power of two (up to `max_batch`), so the model sees a handful of
batch sizes and compiles each once (JAX) or retraces rarely (TensorFlow);
rows are independent in inference, so padding changes no answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np


@dataclass
class _Job:
    arrays: List[np.ndarray]
    rows: int
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Collects requests into batches and predicts them on one thread.

    Args:
        predict: takes one array per input (a batch), returns one per output.
        window_ms: how long the first request of a batch waits for others;
            0: take only what is already queued. Defaults to 2.
        max_batch: the most rows in one predict call. Defaults to 256.

    Example:
        >>> batcher = Batcher(served.predict_arrays)
        >>> outputs = await batcher.submit(arrays, rows)
    """

    def __init__(self, predict: Callable[[List[np.ndarray]], List[np.ndarray]],
                 window_ms: float = 2.0, max_batch: int = 256):
        self.predict = predict
        self.window = max(0.0, float(window_ms)) / 1000.0
        self.max_batch = max(1, int(max_batch))
        self._queue: Optional[asyncio.Queue] = None
        self._held: Optional[_Job] = None
        self._task: Optional[asyncio.Task] = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nbkeras-predict")
        self.batches = 0  # predict calls made (tests and the benchmark read it)
        self.arriving = 0  # requests being read or checked, not yet submitted

    def arrive(self) -> "_Arrival":
        """Context manager around reading and checking one request's body: while
        it lasts, a batch being formed waits (up to the window) for it."""
        return _Arrival(self)

    async def submit(self, arrays: List[np.ndarray], rows: int) -> List[np.ndarray]:
        """The model's outputs for these rows (raises what the model raised)."""
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        if rows > self.max_batch:  # a big request is a batch of its own
            outs = await asyncio.get_running_loop().run_in_executor(
                self._pool, self.predict, arrays)
            return outs
        self._queue.put_nowait(_Job(arrays, rows, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = self._held or await self._queue.get()
            self._held = None
            batch, rows = [first], first.rows
            deadline = loop.time() + self.window
            while rows < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0 or self.arriving <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                if rows + job.rows > self.max_batch:
                    self._held = job
                    break
                batch.append(job)
                rows += job.rows
            try:
                outs = await loop.run_in_executor(self._pool, self._predict_batch, batch, rows)
            except Exception as e:  # every request of the batch gets the model's error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(e)
                continue
            start = 0
            for job in batch:
                if not job.future.done():
                    job.future.set_result([o[start:start + job.rows] for o in outs])
                start += job.rows

    def _predict_batch(self, batch: List[_Job], rows: int) -> List[np.ndarray]:
        self.batches += 1
        size = min(self.max_batch, 1 << (rows - 1).bit_length())
        arrays = []
        for k in range(len(batch[0].arrays)):
            parts = [job.arrays[k] for job in batch]
            if size > rows:
                parts.append(np.zeros((size - rows,) + parts[0].shape[1:], parts[0].dtype))
            arrays.append(parts[0] if len(parts) == 1 else np.concatenate(parts))
        return [np.asarray(o)[:rows] for o in self.predict(arrays)]

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._pool.shutdown(wait=False)


class _Arrival:
    def __init__(self, batcher: Batcher):
        self.batcher = batcher

    def __enter__(self):
        self.batcher.arriving += 1
        return self

    def __exit__(self, *exc):
        self.batcher.arriving -= 1
        return False
