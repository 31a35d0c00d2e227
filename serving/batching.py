"""Adaptive micro-batching: requests that wait for the same signature run together, as one batch.

No request waits for others to arrive. One worker thread per signature takes
every request queued when it becomes free (up to `max_rows` examples) and runs
them as one call, so batches form only while the model is busy: a lone request
runs at once, and under load 8 requests of 1 example cost about one call of 8.
Requests are concatenated along the batch dimension (the first, which the
signature must leave free) when the rest of their shapes agree; the outputs are
split back by each request's number of examples.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

Arrays = dict[str, np.ndarray]


def _rows(inputs: Arrays) -> int:
    return len(next(iter(inputs.values())))


def _shape_key(inputs: Arrays) -> tuple:
    """Requests with equal keys can be concatenated: same names, dtypes and non-batch dimensions."""
    return tuple((name, array.dtype.str, array.shape[1:]) for name, array in sorted(inputs.items()))


class Batcher:
    """Calls `run` (numpy inputs -> numpy outputs, batch first) for many threads, batching those that wait."""

    def __init__(self, run: Callable[[Arrays], Arrays], max_rows: int = 64) -> None:
        self._run, self._max_rows = run, max_rows
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._work, daemon=True, name="batcher").start()

    def __call__(self, inputs: Arrays) -> Arrays:
        """The outputs for `inputs`: {"image": (n, 28, 28, 1)} -> {"digit": (n,), ...}; raises what `run` raises."""
        done = self.submit(inputs)
        return self._run(inputs) if done is None else done.result()

    def submit(self, inputs: Arrays) -> Future | None:
        """Queue `inputs` without waiting: a future of their outputs, or None once closed (call `run` yourself).

        The REST server's event loop awaits this future (asyncio.wrap_future), so no thread sits waiting on it.
        """
        done: Future = Future()
        with self._lock:
            if self._closed:
                return None
            self._queue.put((inputs, done))
        return done

    def close(self) -> None:
        """Stop the worker once the requests already queued are answered; later calls run unbatched."""
        with self._lock:
            self._closed = True
            self._queue.put(None)

    def _work(self) -> None:
        while (first := self._queue.get()) is not None:
            waiting, rows, closing = [first], _rows(first[0]), False
            while rows < self._max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                waiting.append(item)
                rows += _rows(item[0])
            # A future cancelled while it waited (its client hung up: asyncio.wrap_future passes the
            # cancellation on) is dropped; the others are marked running, so none can be cancelled now.
            waiting = [item for item in waiting if item[1].set_running_or_notify_cancel()]
            groups: dict[tuple, list] = {}
            for item in waiting:
                groups.setdefault(_shape_key(item[0]), []).append(item)
            for group in groups.values():
                try:
                    self._answer(group)
                except Exception as err:  # this thread answers every later request: it must not die
                    for _, done in group:
                        if not done.done():
                            done.set_exception(err)
            if closing:
                return

    def _answer_each(self, group: list) -> None:
        for inputs, done in group:
            try:
                done.set_result(self._run(inputs))
            except Exception as err:  # the error belongs to that request: hand it over
                done.set_exception(err)

    def _answer(self, group: list) -> None:
        if len(group) == 1:
            self._answer_each(group)
            return
        sizes = [_rows(inputs) for inputs, _ in group]
        merged = {name: np.concatenate([inputs[name] for inputs, _ in group]) for name in group[0][0]}
        try:
            outputs = self._run(merged)
        except Exception:  # one bad request must not fail the others: answer each alone
            self._answer_each(group)
            return
        if any(array.ndim == 0 or len(array) != sum(sizes) for array in outputs.values()):
            self._answer_each(group)  # outputs that are not one row per example cannot be split
            return
        ends = np.cumsum(sizes)
        for (_, done), end, size in zip(group, ends, sizes, strict=True):
            done.set_result({name: array[end - size : end] for name, array in outputs.items()})
