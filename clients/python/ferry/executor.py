"""Ferry as a ``concurrent.futures.Executor``: ``submit(fn, *args, **kwargs)`` answers a real
``concurrent.futures.Future``; submissions wait a moment to travel together through
``Client.submit_batch`` (one task group), and one background thread settles the futures from the
group's event stream (GET /v3/events), never by polling. ``map`` yields results in input order.
A future cancelled while its task is queued or running is cancelled at the gateway too."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from concurrent import futures as cf
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from ._sse import EventStream
from .client import FINAL_STATES, MAX_TASKS_PER_REQUEST, Client, encode_json, _payload
from .errors import FerryError

_Item = Tuple[str, str, cf.Future]  # (function id, encoded payload, future)
_FLUSH = object()


class Executor(cf.Executor):
    """Runs functions on one Ferry endpoint.

    ``batch_size`` tasks go in one request at most; a partial batch waits ``batch_delay`` seconds
    for more. ``task_group_id`` joins an existing group. Results stored as objects are downloaded
    as ``Client.result`` does (``resolve=False`` answers the reference itself).
    """

    def __init__(
        self,
        client: Client,
        endpoint: Optional[str] = None,
        *,
        batch_size: int = 1000,
        batch_delay: float = 0.02,
        task_group_id: Optional[str] = None,
        resolve: bool = True,
        resolver_threads: int = 4,
    ) -> None:
        self.client = client
        self.endpoint = endpoint or client.endpoint
        if not self.endpoint:
            raise FerryError("VALIDATION_ERROR", "no endpoint: pass endpoint=..., give Client(endpoint=...) or set FERRY_ENDPOINT")
        self.batch_size = max(1, min(batch_size, MAX_TASKS_PER_REQUEST))
        self.batch_delay = batch_delay
        self.task_group_id: Optional[str] = task_group_id
        self._resolve = resolve
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        #: Futures whose task is stored and has not ended, by task id.
        self._open: Dict[str, cf.Future] = {}
        #: Final docs of tasks whose submit answer has not come back yet (the stream can be quicker).
        self._early: Dict[str, Dict[str, Any]] = {}
        self._unsubmitted = 0
        #: Futures not done yet (what shutdown waits for).
        self._pending: Set[cf.Future] = set()
        self._shutdown = False
        self._stream: Optional[EventStream] = None
        self._last_event_id: Optional[str] = None
        self._stream_error: Optional[BaseException] = None
        self._resolver = cf.ThreadPoolExecutor(max_workers=max(1, resolver_threads), thread_name_prefix="ferry-resolve")
        self._submitter = threading.Thread(target=self._submit_loop, name="ferry-submit", daemon=True)
        self._listener = threading.Thread(target=self._listen_loop, name="ferry-events", daemon=True)
        self._submitter.start()
        self._listener.start()

    # ── the concurrent.futures API ──

    def submit(self, fn: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> cf.Future:  # type: ignore[override]
        """Submits ``fn(*args, **kwargs)`` (a Python function, or a registered function's id); the future settles when the task ends."""
        return self._enqueue(self.client.function_id(fn), [encode_json(_payload(args, kwargs), "task arguments")])[0]

    def map(self, fn: Callable[..., Any] | str, *iterables: Iterable[Any], timeout: Optional[float] = None, chunksize: int = 0) -> Iterator[Any]:  # type: ignore[override]
        """``fn`` over the inputs, results in input order; submitted in batches of ``chunksize`` (default ``batch_size``)."""
        function_id = self.client.function_id(fn)
        chunk = self.batch_size if chunksize <= 0 else min(chunksize, MAX_TASKS_PER_REQUEST)
        deadline = None if timeout is None else time.monotonic() + timeout
        fs: List[cf.Future] = []
        args_iter = zip(*iterables)
        while True:
            part = list(itertools.islice(args_iter, chunk))
            if not part:
                break
            fs.extend(self._enqueue(function_id, [encode_json(_payload(a, None), "task arguments") for a in part]))

        def results() -> Iterator[Any]:
            try:
                fs.reverse()
                while fs:
                    # Popped only once its result is in hand: on a timeout it is cancelled with the rest.
                    value = fs[-1].result(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    fs.pop()
                    yield value
            finally:
                for f in fs:
                    f.cancel()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submissions; ``cancel_futures`` cancels what has not ended; ``wait`` waits for every future."""
        with self._lock:
            if self._shutdown and not wait:
                return
            self._shutdown = True
            pending = list(self._pending)
        if cancel_futures:
            for f in pending:
                f.cancel()  # queued ones never go; stored ones are cancelled at the gateway
        self._queue.put(_FLUSH)
        self._queue.put(None)
        if not wait:
            # The threads end by themselves once every future has settled.
            with self._lock:
                self._changed.notify_all()
            return
        cf.wait(pending)
        with self._lock:
            self._changed.notify_all()
        self._submitter.join()
        self._stop_stream()
        self._listener.join()
        self._resolver.shutdown(wait=True)

    @staticmethod
    def task_id(future: cf.Future) -> Optional[str]:
        """The task id of a future of this executor once its batch is stored at the gateway (also ``future.task_id``)."""
        return getattr(future, "task_id", None)

    # ── batches ──

    def _enqueue(self, function_id: str, payloads: List[str]) -> List[cf.Future]:
        out: List[cf.Future] = []
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            for p in payloads:
                f: cf.Future = cf.Future()
                f.task_id = None  # type: ignore[attr-defined]
                self._pending.add(f)
                self._unsubmitted += 1
                out.append(f)
                self._queue.put((function_id, p, f))
        for f in out:
            f.add_done_callback(self._on_done)
        return out

    def _submit_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: List[_Item] = [] if first is _FLUSH else [first]
            deadline = time.monotonic() + self.batch_delay
            stop = first is _FLUSH
            while not stop and len(batch) < self.batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None or item is _FLUSH:
                    if item is None:
                        self._queue.put(None)
                    break
                batch.append(item)
            if batch:
                self._send(batch)

    def _send(self, batch: List[_Item]) -> None:
        by_function: Dict[str, List[_Item]] = {}
        skipped = 0
        for item in batch:
            if item[2].cancelled():
                skipped += 1  # cancelled while queued: it never goes
                continue
            by_function.setdefault(item[0], []).append(item)
        with self._changed:
            self._unsubmitted -= skipped
            self._changed.notify_all()
        for function_id, items in by_function.items():
            try:
                submitted = self.client._submit_encoded(self.endpoint, function_id, [i[1] for i in items], self.task_group_id, self.batch_size)  # type: ignore[arg-type]
            except BaseException as err:  # noqa: BLE001 - every future of the batch learns why
                with self._changed:
                    self._unsubmitted -= len(items)
                    self._changed.notify_all()
                for i in items:
                    _settle(i[2], error=err)
                continue
            cancel_now: List[str] = []
            with self._changed:
                self.task_group_id = submitted.task_group_id
                self._unsubmitted -= len(items)
                for (_, _, f), task_id in zip(items, submitted.task_ids):
                    f.task_id = task_id  # type: ignore[attr-defined]
                    if f.cancelled():
                        cancel_now.append(task_id)
                    elif self._stream_error is not None:
                        _settle(f, error=self._stream_error)
                    elif task_id in self._early:
                        self._resolver.submit(self._settle_doc, f, self._early.pop(task_id))
                    else:
                        self._open[task_id] = f
                if not self._unsubmitted:
                    self._early.clear()
                self._changed.notify_all()
            for task_id in cancel_now:
                self._cancel_at_gateway(task_id)

    # ── the event stream ──

    def _listen_loop(self) -> None:
        while True:
            with self._changed:
                while self.task_group_id is None or not (self._open or self._unsubmitted):
                    if self._shutdown and not (self._open or self._unsubmitted):
                        self._resolver.shutdown(wait=False)
                        return  # shut down with nothing left to hear of
                    self._changed.wait()
                stream = EventStream(self.client._http, {"task_group_id": self.task_group_id}, self._last_event_id)
                self._stream = stream
            try:
                for kind, doc, event_id in stream:
                    self._last_event_id = event_id
                    if kind == "task" and isinstance(doc, dict) and doc.get("status") in FINAL_STATES:
                        self._on_final(doc)
                    with self._lock:
                        idle = not self._open and not self._unsubmitted
                    if idle:
                        break
            except BaseException as err:  # noqa: BLE001 - a refused stream: no future can settle from it
                with self._lock:
                    self._stream_error = err
                    stranded = list(self._open.values())
                    self._open.clear()
                for f in stranded:
                    _settle(f, error=err)
            finally:
                with self._lock:
                    if self._stream is stream:
                        self._stream = None
                stream.stop()

    def _on_final(self, doc: Dict[str, Any]) -> None:
        task_id = str(doc.get("task_id"))
        with self._lock:
            f = self._open.pop(task_id, None)
            if f is None:
                if self._unsubmitted:
                    self._early[task_id] = doc
                return
        if doc.get("status") == "success" and self._resolve and (doc.get("details") or {}).get("result_ref"):
            self._resolver.submit(self._settle_doc, f, doc)  # a download: not on the stream's thread
        else:
            self._settle_doc(f, doc)

    def _settle_doc(self, f: cf.Future, doc: Dict[str, Any]) -> None:
        try:
            value = self.client.value(doc, resolve=self._resolve)
        except BaseException as err:  # noqa: BLE001
            _settle(f, error=err)
        else:
            _settle(f, value=value)

    def _stop_stream(self) -> None:
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.stop()

    # ── cancellation ──

    def _on_done(self, f: cf.Future) -> None:
        with self._lock:
            self._pending.discard(f)
        if not f.cancelled():
            return
        # CANCELLED → CANCELLED_AND_NOTIFIED: what concurrent.futures.wait and as_completed count as done.
        f.set_running_or_notify_cancel()
        with self._lock:
            task_id = getattr(f, "task_id", None)
            if task_id is not None:
                self._open.pop(task_id, None)
        if task_id is not None:
            self._cancel_at_gateway(task_id)
        # else: still queued; the submitter skips it, or cancels it once its batch lands.

    def _cancel_at_gateway(self, task_id: str) -> None:
        try:
            self.client.cancel(task_id)
        except FerryError as err:
            if err.code not in ("TASK_ALREADY_FINISHED", "NOT_FOUND"):
                raise


def _settle(f: cf.Future, value: Any = None, error: Optional[BaseException] = None) -> None:
    """Sets a future's outcome unless it was cancelled meanwhile."""
    try:
        if error is not None:
            f.set_exception(error)
        else:
            f.set_result(value)
    except cf.InvalidStateError:
        pass
