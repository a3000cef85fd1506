"""The Ferry client: register Python functions by their source, run them on an endpoint, move data
by reference. The REST contract is the gateway's (docs: shared/API.md; the TypeScript SDK in
src/sdk/ is the same client for JavaScript)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from ._config import resolve_access
from ._http import MAX_ERROR_BYTES, Response, Transport, decode_json, error_from_body
from ._source import function_source
from .errors import FerryError, TaskCancelled, TaskFailed, WaitTimeout

if TYPE_CHECKING:
    from ._sse import EventStream
    from .executor import Executor

MiB = 1024 * 1024
#: Tasks in one submit request (the gateway's LIMITS.maxTasksPerRequest).
MAX_TASKS_PER_REQUEST = 5000
#: Bytes of one submit request's body, with room for its envelope (the gateway's default limit is 10 MB).
MAX_REQUEST_BYTES = 10_000_000 - 4096
#: The gateway's cap on ?wait= and run's wait (seconds).
MAX_WAIT_S = 60
#: Task ids per POST /v2/batch_status.
BATCH_STATUS_CHUNK = 1000
#: One PUT /v3/objects up to this size; larger objects go in parts.
MULTIPART_THRESHOLD = 32 * MiB
DEFAULT_PART_SIZE = 16 * MiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 64 * MiB
#: Read size when streaming an object into memory.
READ_CHUNK = 1 * MiB

FINAL_STATES = frozenset({"success", "failed", "cancelled"})

FunctionLike = Union[Callable[..., Any], str]
PutData = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", Any]


class ObjectRef(Dict[str, Any]):
    """A reference to an object: the dict ``{"$ref": id}`` that a task argument carries (the endpoint
    hands the function a DataRef for it), with the object's ``size``, ``sha256`` and, for a
    result, ``content_type`` as attributes (they do not travel)."""

    def __init__(self, object_id: str, size: int, sha256: str, content_type: Optional[str] = None) -> None:
        super().__init__({"$ref": object_id})
        self.id = object_id
        self.size = size
        self.sha256 = sha256
        self.content_type = content_type

    def __repr__(self) -> str:
        extra = f", content_type={self.content_type!r}" if self.content_type else ""
        return f"ObjectRef({self.id!r}, size={self.size}, sha256={self.sha256[:12]!r}…{extra})"

    def __reduce__(self) -> Any:
        return (ObjectRef, (self.id, self.size, self.sha256, self.content_type))

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> "ObjectRef":
        object_id, size, digest = answer.get("$ref"), answer.get("size"), answer.get("sha256")
        if not isinstance(object_id, str) or not isinstance(size, int) or not isinstance(digest, str):
            raise FerryError("INVALID_RESULT_REF", f"not an object reference: {str(answer)[:200]}")
        content_type = answer.get("content_type")
        return cls(object_id, size, digest, content_type if isinstance(content_type, str) else None)


@dataclass
class Batch:
    """Tasks submitted by ``submit_batch``: one task group, ids in the order of the inputs."""

    task_group_id: str
    task_ids: List[str] = field(default_factory=list)


def _json_default(value: Any) -> Any:
    # numpy scalars (np.int64, np.bool_, …) travel as the Python numbers they hold.
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    if hasattr(value, "__array__") and hasattr(value, "shape"):
        raise TypeError(
            f"an array of shape {value.shape} cannot travel as a JSON argument: upload it with client.put(array) and pass the reference"
        )
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("bytes cannot travel as a JSON argument: upload them with client.put(data) and pass the reference")
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def encode_json(value: Any, what: str) -> str:
    """JSON text of task arguments; NaN, infinities and non-JSON values refused with VALIDATION_ERROR."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as err:
        raise FerryError("VALIDATION_ERROR", f"{what}: {err}") from None


def _payload(args: Sequence[Any], kwargs: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    return {"args": list(args), "kwargs": dict(kwargs)} if kwargs else {"args": list(args)}


def _is_result_ref(doc: Mapping[str, Any]) -> bool:
    return bool((doc.get("details") or {}).get("result_ref"))


class Client:
    """A client of one Ferry gateway.

    ``url`` and ``token`` default to FERRY_URL / FERRY_TOKEN, then ``~/.ferry/user.json`` (``ferry
    login``; the directory is FERRY_HOME when set), as the CLI reads them. ``endpoint`` (default:
    FERRY_ENDPOINT) is where tasks go when a call names none.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        endpoint: Optional[str] = None,
        max_retries: int = 20,
        timeout: float = 120.0,
        max_result_bytes: int = 4 * 1024 * MiB,
    ) -> None:
        url, token = resolve_access(url, token)
        #: The largest result object ``result`` downloads into memory (larger: ``resolve=False`` and ``get`` by range).
        self.max_result_bytes = max_result_bytes
        self.url = url
        self.endpoint: Optional[str] = endpoint or os.environ.get("FERRY_ENDPOINT") or None
        self._http = Transport(url, token, max_retries=max_retries, timeout=timeout)
        self._token = token
        self._function_ids: Dict[Any, str] = {}
        self._function_endpoints: Dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ferry.Client(url={self.url!r}, endpoint={self.endpoint!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the kept-alive connections (the client opens new ones if used again)."""
        self._http.close()

    def __del__(self) -> None:
        http = getattr(self, "_http", None)
        if http is not None:
            http.close()

    @property
    def retries(self) -> int:
        """Requests retried after a 429 (or a 503 with Retry-After) since this client was made."""
        return self._http.retries

    # ── functions ──

    def register(self, func: Callable[..., Any], endpoint: Optional[str] = None, *, description: Optional[str] = None) -> str:
        """Registers a Python function by its source and answers its id.

        The source is ``inspect.getsource(func)``, dedented, decorators stripped; it must compile.
        Closures, lambdas, builtins and functions without source are refused (FunctionRefused,
        code ``INVALID_FUNCTION_CODE``). The id derives from the source: registering the same
        source again answers the same id. ``endpoint``, when given, is where ``run`` and ``submit``
        send this function's tasks when they name no endpoint.
        """
        name, source = function_source(func)
        body: Dict[str, Any] = {"function_name": name, "function_code": source, "meta": {"runtime": "python"}}
        if description is not None:
            body["description"] = description
        res = self._http.call("POST", "/v3/functions", body, repeatable=True)
        function_id = str(res["function_uuid"])
        self._function_ids[func] = function_id
        if endpoint is not None:
            self._function_endpoints[function_id] = endpoint
        return function_id

    def function_id(self, function: FunctionLike) -> str:
        """The id of a function: a registered id as it is, a Python function registered once per client."""
        if isinstance(function, str):
            return function
        known = self._function_ids.get(function)
        return known if known is not None else self.register(function)

    def get_function(self, function_id: str) -> Dict[str, Any]:
        return self._http.call("GET", f"/v2/functions/{_enc(function_id)}")

    def _endpoint_for(self, function_id: str, endpoint: Optional[str]) -> str:
        chosen = endpoint or self._function_endpoints.get(function_id) or self.endpoint
        if not chosen:
            raise FerryError("VALIDATION_ERROR", "no endpoint: pass endpoint=..., give Client(endpoint=...) or set FERRY_ENDPOINT")
        return chosen

    # ── tasks ──

    def submit(self, function: FunctionLike, *args: Any, endpoint: Optional[str] = None, **kwargs: Any) -> str:
        """Submits ``function(*args, **kwargs)`` and answers the task id."""
        return self.submit_batch(function, [(args, kwargs)], endpoint=endpoint).task_ids[0]

    def submit_batch(
        self,
        function: FunctionLike,
        inputs: Iterable[Any],
        *,
        endpoint: Optional[str] = None,
        task_group_id: Optional[str] = None,
        max_tasks_per_request: int = MAX_TASKS_PER_REQUEST,
    ) -> Batch:
        """Submits one task per input, split into requests under the gateway's limits, all in one task group.

        An input is an argument tuple or list (``(1, 2)``), an ``(args, kwargs)`` pair whose first
        item is a tuple and second a dict, or any other value (one argument).
        """
        function_id = self.function_id(function)
        ep = self._endpoint_for(function_id, endpoint)
        encoded = [encode_json(_payload(*_split_input(i)), "task arguments") for i in inputs]
        return self._submit_encoded(ep, function_id, encoded, task_group_id, max_tasks_per_request)

    def _submit_encoded(self, endpoint: str, function_id: str, encoded: List[str], task_group_id: Optional[str], max_tasks: int) -> Batch:
        max_tasks = max(1, min(max_tasks, MAX_TASKS_PER_REQUEST))
        batch = Batch(task_group_id or "")
        start = 0
        while start < len(encoded):
            end, size = start, 0
            while end < len(encoded) and end - start < max_tasks:
                n = len(encoded[end]) + 1
                if end > start and size + n > MAX_REQUEST_BYTES:
                    break
                size += n
                end += 1
            group = f',"task_group_id":{json.dumps(batch.task_group_id)}' if batch.task_group_id else ""
            body = f'{{"tasks":{{{json.dumps(function_id)}:[{",".join(encoded[start:end])}]}}{group}}}'.encode("utf-8")
            try:
                res = self._http.json_of(
                    self._http.open("POST", f"/v3/endpoints/{_enc(endpoint)}/submit", body, {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}),
                    "submit",
                )
            except FerryError as err:
                # A gateway with a smaller per-request task limit names it: split smaller and go on.
                limit = (err.details or {}).get("max_tasks") if isinstance(err.details, dict) else None
                if err.code == "TOO_MANY_TASKS" and isinstance(limit, int) and 1 <= limit < end - start:
                    max_tasks = limit
                    continue
                raise
            batch.task_group_id = str(res["task_group_id"])
            batch.task_ids.extend(res["tasks"][function_id])
            start = end
        return batch

    def run(self, function: FunctionLike, *args: Any, endpoint: Optional[str] = None, timeout: float = 300.0, resolve: bool = True, **kwargs: Any) -> Any:
        """Runs ``function(*args, **kwargs)`` on the endpoint and answers its result (one POST /v3/run when it ends within a minute).

        ``endpoint``, ``timeout`` and ``resolve`` are this method's own; every other keyword goes to the function.
        """
        function_id = self.function_id(function)
        body = {"endpoint_id": self._endpoint_for(function_id, endpoint), "function_uuid": function_id, **_payload(args, kwargs), "wait": min(max(timeout, 0), MAX_WAIT_S)}
        started = time.monotonic()
        raw = encode_json(body, "task arguments").encode("utf-8")
        res = self._http.open("POST", "/v3/run", raw, {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}, timeout=self._http_timeout(body["wait"]))
        doc = self._http.json_of(res, "POST /v3/run", ok=(200, 202))
        if doc["status"] in FINAL_STATES:
            return self.value(doc, resolve=resolve)
        return self.result(doc["task_id"], timeout=max(0.0, timeout - (time.monotonic() - started)), resolve=resolve)

    def task(self, task_id: str, wait: Optional[float] = None) -> Dict[str, Any]:
        """A task's doc; with ``wait``, the gateway holds the answer until it ends or ``wait`` s (≤ 60) pass."""
        query = f"?wait={min(max(wait, 0), MAX_WAIT_S):g}" if wait is not None else ""
        return self._http.call("GET", f"/v2/tasks/{_enc(task_id)}{query}", timeout=self._http_timeout(wait or 0))

    def result(self, task_id: str, timeout: float = 300.0, *, resolve: bool = True) -> Any:
        """Waits for the task and answers its result (TaskFailed, TaskCancelled or WaitTimeout otherwise).

        A result the endpoint stored as an object is downloaded and checked against its digest: a
        numpy array (``application/x-npy``) as an array, bytes as bytes, JSON as its value. With
        ``resolve=False`` it is answered as its ObjectRef instead, to pass on to another task.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            doc = self.task(task_id, wait=float(min(int(left + 0.999), MAX_WAIT_S)))
            if doc["status"] in FINAL_STATES:
                return self.value(doc, resolve=resolve)
            if time.monotonic() >= deadline:
                raise WaitTimeout([task_id], timeout)

    def value(self, doc: Mapping[str, Any], *, resolve: bool = True) -> Any:
        """The result of an ended task's doc, decoded as ``result`` does; raises for a failed or cancelled task."""
        status = doc.get("status")
        if status == "failed":
            raise TaskFailed(str(doc.get("task_id")), dict(doc.get("exception") or {"code": "UNKNOWN", "name": "Error", "message": "no exception recorded"}))
        if status == "cancelled":
            raise TaskCancelled(str(doc.get("task_id")))
        if status != "success":
            raise FerryError("VALIDATION_ERROR", f"task {doc.get('task_id')} has not ended (status {status})")
        if _is_result_ref(doc):
            ref = ObjectRef.of(doc["result"])
            return self.read_result_object(ref) if resolve else ref
        return doc.get("result")

    def read_result_object(self, ref: "ObjectRef") -> Any:
        """A result stored as an object, read into one buffer of its size and checked against its sha256."""
        object_id, size, digest = ref.id, ref.size, ref.sha256
        if size > self.max_result_bytes:
            raise FerryError(
                "PAYLOAD_TOO_LARGE",
                f"result object {object_id} has {size} bytes, over this client's max_result_bytes ({self.max_result_bytes}): "
                "answer it by reference (resolve=False) and read it by range with get()",
            )
        res = self._open_object(object_id, None)
        try:
            buf = bytearray(size)
            view = memoryview(buf)
            at = 0
            while at < size:
                n = res.raw.readinto(view[at : min(size, at + READ_CHUNK)])
                if not n:
                    break
                at += n
            longer = at == size and res.raw.read(1) != b""
        finally:
            res.close()
        if at != size or longer or hashlib.sha256(buf).hexdigest() != digest:
            raise FerryError("DIGEST_MISMATCH", f"object {object_id}: read {at}{'+' if longer else ''} bytes not matching the result's {size} bytes (sha256 {digest})")
        content_type = ref.content_type
        if content_type == "application/json":
            return decode_json(buf, f"result object {object_id}", size)
        if content_type == "application/x-npy":
            return _load_npy(buf, object_id)
        return bytes(buf)

    def batch_status(self, task_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
        """Task docs of many tasks (unknown ids are absent)."""
        out: Dict[str, Dict[str, Any]] = {}
        for i in range(0, len(task_ids), BATCH_STATUS_CHUNK):
            res = self._http.call("POST", "/v2/batch_status", {"task_ids": list(task_ids[i : i + BATCH_STATUS_CHUNK])}, repeatable=True)
            out.update(res["results"])
        return out

    def wait_all(self, task_ids: Sequence[str], timeout: float = 300.0, *, return_exceptions: bool = False) -> List[Any]:
        """Waits for every task and answers their results in the order of ``task_ids``.

        The first failed or cancelled task raises its error, unless ``return_exceptions`` is true:
        then the error takes the task's place in the list. Polls only the tasks still open, holding
        each poll on one of them (GET ?wait) so the wait is driven by results, not a timer.
        """
        deadline = time.monotonic() + timeout
        done: Dict[str, Dict[str, Any]] = {}
        still = list(dict.fromkeys(task_ids))
        while True:
            docs = self.batch_status(still)
            open_ids: List[str] = []
            for t in still:
                doc = docs.get(t)
                if doc is not None and doc["status"] in FINAL_STATES:
                    done[t] = doc
                else:
                    open_ids.append(t)
            still = open_ids
            if not still:
                break
            if time.monotonic() >= deadline:
                raise WaitTimeout(still, timeout)
            self.task(still[len(still) // 4], wait=1)
        out: List[Any] = []
        for t in task_ids:
            try:
                out.append(self.value(done[t]))
            except FerryError as err:
                if not return_exceptions or not isinstance(err, (TaskFailed, TaskCancelled)):
                    raise
                out.append(err)
        return out

    def cancel(self, task_id: str) -> Dict[str, Any]:
        """Cancels a task that has not ended (its doc, status ``cancelled``); TASK_ALREADY_FINISHED otherwise."""
        return self._http.call("DELETE", f"/v2/tasks/{_enc(task_id)}")

    def task_group(self, task_group_id: str) -> List[str]:
        """A task group's task ids, in submission order."""
        res = self._http.call("GET", f"/v2/taskgroup/{_enc(task_group_id)}")
        return [t["id"] for t in res["tasks"]]

    def events(
        self,
        *,
        task_group_id: Optional[str] = None,
        endpoint_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        task_ids: Optional[Sequence[str]] = None,
        last_event_id: Optional[str] = None,
    ) -> "EventStream":
        """The event stream (GET /v3/events) of one selector: iterate it for ``(type, data, event_id)``
        (``type`` ``"task"`` with the task's doc, or ``"endpoint"``); it starts with the current state,
        reconnects by itself with Last-Event-ID, and ends when ``stop()`` is called (from any thread)."""
        from ._sse import EventStream

        chosen = {k: v for k, v in (("task_group_id", task_group_id), ("endpoint_id", endpoint_id), ("workflow_id", workflow_id)) if v is not None}
        if task_ids is not None:
            chosen["task_id"] = list(task_ids)
        if len(chosen) != 1:
            raise FerryError("VALIDATION_ERROR", "events: give exactly one of task_group_id, endpoint_id, workflow_id, task_ids")
        return EventStream(self._http, chosen, last_event_id)

    def executor(self, endpoint: Optional[str] = None, **options: Any) -> "Executor":
        """A ``concurrent.futures.Executor`` running functions on ``endpoint`` (see ferry.Executor)."""
        from .executor import Executor

        return Executor(self, endpoint, **options)

    # ── endpoints ──

    def endpoint_status(self, endpoint_id: Optional[str] = None) -> Dict[str, Any]:
        ep = endpoint_id or self.endpoint
        if not ep:
            raise FerryError("VALIDATION_ERROR", "no endpoint: pass one or set Client(endpoint=...)")
        return self._http.call("GET", f"/v2/endpoints/{_enc(ep)}/status")

    def endpoints(self) -> List[Dict[str, Any]]:
        return self._http.call("GET", "/v2/endpoints")

    # ── objects (data by reference) ──

    def put(
        self,
        data: PutData,
        *,
        content_type: str = "application/octet-stream",
        ttl_s: Optional[int] = None,
        part_size: int = DEFAULT_PART_SIZE,
        multipart_threshold: int = MULTIPART_THRESHOLD,
    ) -> ObjectRef:
        """Uploads bytes once and answers their reference, ``{"$ref": id}`` (an ObjectRef: ``.size`` and ``.sha256`` too), to pass as an argument.

        ``data`` is a path (``str`` or ``os.PathLike``: read part by part, never whole) or bytes-like
        (``bytes``, ``bytearray``, ``memoryview``, a C-contiguous numpy array: its raw bytes, sent
        without a copy). Objects over ``multipart_threshold`` go as a multipart upload, one part
        of ``part_size`` bytes in memory at a time.
        """
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise FerryError("VALIDATION_ERROR", f"part_size must be {MIN_PART_SIZE} … {MAX_PART_SIZE} bytes")
        threshold = min(multipart_threshold, MAX_PART_SIZE)
        if isinstance(data, (str, os.PathLike)):
            path = os.fspath(data)
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size <= threshold:
                    return self._put_single(f.read(threshold), content_type, ttl_s)
                return self._put_multipart(_file_parts(f, part_size), content_type, part_size, ttl_s)
        try:
            view = memoryview(data)
            view = view.cast("B") if view.ndim != 1 or view.format != "B" else view
        except TypeError as err:
            raise FerryError("VALIDATION_ERROR", f"put takes a path or bytes-like data, not {type(data).__name__} ({err})") from None
        if view.nbytes <= threshold:
            return self._put_single(view, content_type, ttl_s)
        return self._put_multipart((view[i : i + part_size] for i in range(0, view.nbytes, part_size)), content_type, part_size, ttl_s)

    def _put_single(self, body: Union[bytes, memoryview], content_type: str, ttl_s: Optional[int]) -> ObjectRef:
        query = f"?ttl_s={int(ttl_s)}" if ttl_s is not None else ""
        res = self._http.open("PUT", f"/v3/objects{query}", body, {"Content-Type": content_type})
        return ObjectRef.of(self._http.json_of(res, "PUT /v3/objects"))

    def _put_multipart(self, parts: Iterable[Union[bytes, memoryview]], content_type: str, part_size: int, ttl_s: Optional[int]) -> ObjectRef:
        start_body: Dict[str, Any] = {"content_type": content_type, "part_size": part_size}
        if ttl_s is not None:
            start_body["ttl_s"] = int(ttl_s)
        upload = self._http.call("POST", "/v3/objects/uploads", start_body)
        base = f"/v3/objects/uploads/{_enc(upload['upload_id'])}"
        try:
            # One part in memory at a time: each is dropped before the next is read (no enumerate,
            # whose result tuple would hold the previous part while the next one is read).
            n = 0
            for part in parts:
                n += 1
                self._http.json_of(self._http.open("PUT", f"{base}/{n}", part, {"Content-Type": "application/octet-stream"}), f"PUT part {n}")
                del part
            return ObjectRef.of(self._http.call("POST", f"{base}/complete", {}))
        except BaseException:
            try:
                self._http.open("DELETE", base).read_some(MAX_ERROR_BYTES)
            except FerryError:
                pass
            raise

    def get(self, ref: Union[str, Mapping[str, Any]], offset: int = 0, length: Optional[int] = None, *, max_bytes: int = 1024 * MiB) -> bytes:
        """An object's bytes, or ``length`` bytes from ``offset`` (refused over ``max_bytes``)."""
        object_id = ref if isinstance(ref, str) else str(ref.get("$ref"))
        rng = None
        if offset or length is not None:
            if length is not None and length <= 0:
                raise FerryError("VALIDATION_ERROR", "length must be positive")
            rng = f"bytes={offset}-{'' if length is None else offset + length - 1}"
        return self._open_object(object_id, rng).read(max_bytes, f"object {object_id}")

    def _open_object(self, object_id: str, rng: Optional[str]) -> Response:
        if not (isinstance(object_id, str) and len(object_id) == 64 and all(c in "0123456789abcdef" for c in object_id)):
            raise FerryError("INVALID_ID", f"not an object id: {str(object_id)[:80]!r}")
        res = self._http.open("GET", f"/v3/objects/{object_id}", None, {"Range": rng} if rng else None)
        if res.status not in (200, 206):
            raise error_from_body(res.status, res.read_some(MAX_ERROR_BYTES))
        return res

    def object_stats(self) -> Dict[str, Any]:
        """Your objects: count, bytes stored, bytes the gateway served (per reader: ``user``, ``endpoint:<id>``)."""
        return self._http.call("GET", "/v3/objects/stats")

    def delete_object(self, ref: Union[str, Mapping[str, Any]]) -> None:
        object_id = ref if isinstance(ref, str) else str(ref.get("$ref"))
        self._http.call("DELETE", f"/v3/objects/{_enc(object_id)}")

    # ── internals ──

    def _http_timeout(self, wait: float) -> float:
        return max(self._http._timeout, wait + 30.0)


def _split_input(item: Any) -> "tuple[Sequence[Any], Optional[Mapping[str, Any]]]":
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], tuple) and isinstance(item[1], dict):
        return item[0], item[1]
    if isinstance(item, (tuple, list)):
        return item, None
    return (item,), None


def _file_parts(f: io.BufferedReader, part_size: int) -> Iterable[bytes]:
    while True:
        part = f.read(part_size)
        if not part:
            return
        yield part
        del part  # before reading the next one


def _load_npy(buf: bytearray, object_id: str) -> Any:
    try:
        import numpy as np
    except ImportError:
        raise FerryError("NOT_IMPLEMENTED", f"result object {object_id} is a numpy array (.npy): install numpy to read it, or read its bytes with client.get()") from None
    try:
        return np.load(io.BytesIO(buf), allow_pickle=False)
    except ValueError as err:
        raise FerryError("INVALID_RESULT_REF", f"result object {object_id} is not a readable .npy file ({err})") from None


def _enc(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")
