"""Ferry's Python runner: one warm CPython process per function per worker.

Started by the worker (src/endpoint/worker/python-runner.ts) as `python3 -B runner.py`. Standard
library only; numpy is used only when the function itself imported it.

The worker and the runner talk over the process's stdin and stdout in frames:

    u32 header length (big-endian) | u64 body length (big-endian) | header (UTF-8 JSON) | body

and both sides refuse a frame whose lengths pass their bounds before reading it. Worker to runner:

    {"type": "init", "name", "memory_mb", "max_stdout_bytes", "max_body_bytes"}  body: the source
    {"type": "run"}                                                               body: payload JSON
    {"type": "read_result", "ok", "size", "sha256" | "code", "message"}           body: the bytes

Runner to worker:

    {"type": "loaded", "implementation", "version"} | {"type": "invalid", "line", "message"}
    {"type": "read", "key", "start", "end"}                       (a DataRef read; answered in turn)
    {"type": "result", "kind": "json" | "bytes" | "npy", "stdout"}  body: JSON text, bytes, .npy
    {"type": "failed", "code", "name", "message", "stack", "stdout"}

The process's own file descriptors 0 and 1 are moved aside at start: user code writing to fd 1
(a C extension, a subprocess) writes to stderr, which the worker keeps a tail of; print() and
sys.stderr go to a capture returned with the task.
"""

import builtins
import inspect
import io
import json
import linecache
import os
import platform
import resource
import struct
import sys
import time
import traceback

FRAME = struct.Struct(">IQ")
MAX_HEADER_BYTES = 1024 * 1024
# Kept of a traceback and of an exception's message; the task's exception travels inline.
MAX_STACK_CHARS = 16 * 1024
MAX_MESSAGE_CHARS = 16 * 1024
# The same marker as the JavaScript sandbox's capture (src/endpoint/worker/stdout-capture.ts).
TRUNCATION_MARKER = "\n[ferry: stdout truncated]\n"


class ProtocolError(Exception):
    pass


class Channel:
    def __init__(self, fd_in, fd_out, max_body_bytes):
        self.reader = os.fdopen(fd_in, "rb")
        self.writer = os.fdopen(fd_out, "wb")
        self.max_body_bytes = max_body_bytes

    def _read_exact(self, n):
        parts = []
        while n > 0:
            chunk = self.reader.read(n)
            if not chunk:
                raise EOFError("the worker closed the channel")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def receive(self):
        header_len, body_len = FRAME.unpack(self._read_exact(FRAME.size))
        if header_len > MAX_HEADER_BYTES:
            raise ProtocolError("a header of %d bytes is over the bound of %d" % (header_len, MAX_HEADER_BYTES))
        if body_len > self.max_body_bytes:
            raise ProtocolError("a body of %d bytes is over the bound of %d" % (body_len, self.max_body_bytes))
        header = json.loads(self._read_exact(header_len).decode("utf-8"))
        body = self._read_exact(body_len) if body_len else b""
        return header, body

    def send(self, header, body=b""):
        head = json.dumps(header).encode("utf-8")
        self.writer.write(FRAME.pack(len(head), len(body)))
        self.writer.write(head)
        if body:
            self.writer.write(body)
        self.writer.flush()


class Capture(io.TextIOBase):
    """print() and sys.stderr of one task, capped at max_bytes of UTF-8, the marker included."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.parts = []
        self.size = 0
        self.full = False

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if self.full:
            return len(s)
        data = s.encode("utf-8", "replace")
        room = self.max_bytes - len(TRUNCATION_MARKER) - self.size
        if len(data) <= room:
            self.parts.append(s)
            self.size += len(data)
        else:
            if room > 0:
                self.parts.append(data[:room].decode("utf-8", "ignore"))
            self.parts.append(TRUNCATION_MARKER)
            self.full = True
        return len(s)

    def text(self):
        return "".join(self.parts)


class DataNotFound(Exception):
    """A data reference names no object this endpoint may read."""


class DataPathRefused(Exception):
    """A file:// data reference is outside the endpoint's data_roots (or otherwise refused)."""


class DataReadError(Exception):
    """A data reference could not be read."""


class Runner:
    def __init__(self, channel):
        self.channel = channel
        self.fn = None
        self.data_errors = set()

    # DataRef reads go to the worker, which asks the agent's site cache (or reads a file under
    # data_roots) exactly as for the JavaScript sandbox's DataRef.
    def read(self, key, start, end):
        self.channel.send({"type": "read", "key": key, "start": start, "end": end})
        header, body = self.channel.receive()
        if header.get("type") != "read_result":
            raise ProtocolError("expected read_result, got %r" % header.get("type"))
        if header.get("ok"):
            return header, body
        code, message = header.get("code", ""), header.get("message", "")
        if code == "FERRY_DATA_NOT_FOUND":
            self.data_errors.add(code)
            raise DataNotFound(message)
        if code == "FERRY_DATA_PATH_REFUSED":
            self.data_errors.add(code)
            raise DataPathRefused(message)
        if code == "RANGE_NOT_SATISFIABLE":
            raise ValueError(message)
        raise DataReadError("%s: %s" % (code, message) if code else message)


RUNNER = None


class DataRef:
    """A `{"$ref": id}` argument: nothing is read until a method is called."""

    __slots__ = ("_id", "_locations", "_info")

    def __init__(self, ref_id, locations=None):
        self._id = ref_id
        self._locations = locations
        self._info = None

    @property
    def id(self):
        return self._id

    def _key(self, digest):
        if self._locations is None and not digest:
            return self._id
        k = {"$ref": self._id}
        if self._locations is not None:
            k["locations"] = list(self._locations)
        if digest:
            k["digest"] = True
        return json.dumps(k)

    def _meta(self):
        if self._info is None:
            header, _ = RUNNER.read(self._key(False), 0, 0)
            self._info = {"size": header["size"], "sha256": header.get("sha256")}
        return self._info

    def size(self):
        """The size in bytes."""
        return self._meta()["size"]

    def sha256(self):
        """The sha256 of the bytes, in hex."""
        info = self._meta()
        if not info.get("sha256"):
            header, _ = RUNNER.read(self._key(True), 0, 0)
            info["sha256"] = header.get("sha256")
        return info["sha256"]

    def slice(self, start, end=None):
        """Bytes start..end (end exclusive; None: to the end), reading only that range."""
        if self._info is None and isinstance(start, int) and isinstance(end, int) and 0 <= start < end:
            try:
                header, body = RUNNER.read(self._key(False), start, end)
                self._info = {"size": header["size"], "sha256": header.get("sha256")}
                if end <= header["size"] and len(body) == end - start:
                    return body
            except ValueError:
                pass
        size = self.size()
        if end is None:
            end = size
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            raise TypeError("slice() takes integer offsets")
        if start < 0 or end < start or end > size:
            raise ValueError("slice(%r, %r) is outside the object (%d bytes)" % (start, end, size))
        if start == end:
            return b""
        _, body = RUNNER.read(self._key(False), start, end)
        return body

    def bytes(self):
        """All the bytes."""
        return self.slice(0, self.size())

    def text(self):
        """The bytes decoded as UTF-8."""
        return self.bytes().decode("utf-8")

    def json(self):
        """The bytes parsed as JSON."""
        return json.loads(self.text())

    def __repr__(self):
        return "DataRef(%r)" % (self._id,)


def is_ref(v):
    if not isinstance(v, dict) or not isinstance(v.get("$ref"), str):
        return False
    if len(v) == 1:
        return True
    loc = v.get("locations")
    return len(v) == 2 and isinstance(loc, list) and len(loc) > 0 and all(isinstance(x, str) for x in loc)


def to_ref(v):
    return DataRef(v["$ref"], tuple(v["locations"]) if "locations" in v else None) if is_ref(v) else v


def describe(exc, skip_frames):
    """type, message and traceback of an exception, the runner's own frames left out."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    stack = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(stack) > MAX_STACK_CHARS:
        stack = "...\n" + stack[-MAX_STACK_CHARS:]
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a __str__ that raises still fails the task with its type
        message = "(the exception's message could not be read)"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "... [truncated]"
    return {"name": type(exc).__name__, "message": message, "stack": stack}


def failure(exc, skip_frames, data_errors=()):
    d = describe(exc, skip_frames)
    if isinstance(exc, MemoryError):
        d["code"] = "FERRY_MEMORY_LIMIT"
        d["message"] = "The function exceeded its memory limit (an address-space limit of task_memory_mb): MemoryError" + (": " + d["message"] if d["message"] else "")
    elif isinstance(exc, DataNotFound) and "FERRY_DATA_NOT_FOUND" in data_errors:
        d["code"] = "FERRY_DATA_NOT_FOUND"
    elif isinstance(exc, DataPathRefused) and "FERRY_DATA_PATH_REFUSED" in data_errors:
        d["code"] = "FERRY_DATA_PATH_REFUSED"
    else:
        d["code"] = "FERRY_FUNCTION_ERROR"
    return d


def json_default(o):
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    raise TypeError("a value of type %s cannot be encoded as JSON" % type(o).__name__)


def encode(value):
    """(kind, body) of a result, or raises ValueError/TypeError for one that cannot travel."""
    if isinstance(value, (bytes, bytearray)):
        return "bytes", bytes(value)
    if isinstance(value, memoryview):
        return "bytes", value.tobytes()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return "npy", buf.getvalue()
    try:
        text = json.dumps(value, allow_nan=False, default=json_default, separators=(",", ":"))
    except ValueError as e:
        if "Out of range float" in str(e):
            raise ValueError("the result contains NaN or an infinity, which JSON cannot carry: return None, a string, or an array (which travels as .npy)") from None
        raise
    return "json", text.encode("utf-8")


def load(header, source):
    """Compiles and runs the function's source; answers loaded, invalid or failed."""
    name = header["name"]
    filename = "<ferry function %s>" % name
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        line = e.lineno or 0
        text = (e.text or "").rstrip("\n")
        message = "line %d: %s%s" % (line, e.msg, (" (%s)" % text.strip()) if text.strip() else "")
        return {"type": "invalid", "line": line, "message": message}
    except ValueError as e:
        return {"type": "invalid", "line": 0, "message": str(e)}
    namespace = {"__name__": "__ferry_function__", "__builtins__": builtins}
    try:
        exec(code, namespace)
    except BaseException as e:  # noqa: B036 - SystemExit from module code fails the task too
        d = failure(e, 1)
        d["type"] = "failed"
        d["message"] = "defining the function failed: " + d["message"]
        return d
    fn = namespace.get(name)
    if fn is None or not callable(fn):
        defined = sorted(k for k, v in namespace.items() if callable(v) and not k.startswith("__") and getattr(v, "__module__", None) == "__ferry_function__")
        return {"type": "invalid", "line": 0, "message": "the source defines no function named %r%s" % (name, " (it defines %s)" % ", ".join(defined) if defined else "")}
    return fn


def main():
    global RUNNER
    # The protocol's own descriptors, moved aside so nothing the function does can write into them.
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, "r")
    channel = Channel(fd_in, fd_out, 64 * 1024 * 1024)
    header, body = channel.receive()
    if header.get("type") != "init":
        raise ProtocolError("expected init, got %r" % header.get("type"))
    channel.max_body_bytes = int(header["max_body_bytes"])
    max_stdout = int(header["max_stdout_bytes"])
    # The address-space limit, before any user code: numpy reserves ~100 MB plus ~40 MB per BLAS
    # thread, so OPENBLAS_NUM_THREADS and friends are set by the worker (python.threads).
    memory_mb = header.get("memory_mb")
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    RUNNER = Runner(channel)
    capture = Capture(max_stdout)
    sys.stdout = sys.stderr = capture
    try:
        loaded = load(header, body.decode("utf-8", "surrogateescape"))
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    if isinstance(loaded, dict):
        # The source does not compile, define the function, or run: the worker ends this process.
        loaded["stdout"] = capture.text()
        channel.send(loaded)
        return
    fn = loaded
    channel.send({"type": "loaded", "implementation": platform.python_implementation(), "version": platform.python_version(), "stdout": capture.text()})
    while True:
        try:
            header, body = channel.receive()
        except EOFError:
            return
        if header.get("type") != "run":
            raise ProtocolError("expected run, got %r" % header.get("type"))
        capture = Capture(max_stdout)
        RUNNER.data_errors = set()
        cpu = time.process_time()
        sys.stdout = sys.stderr = capture
        try:
            answer, data = run_one(fn, body, channel.max_body_bytes)
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        answer["stdout"] = capture.text()
        # For the task's telemetry: the worker's own getrusage cannot see this process.
        answer["cpu_time_s"] = time.process_time() - cpu
        answer["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        channel.send(answer, data)


def run_one(fn, body, max_body_bytes):
    """Calls the function on one payload: (answer header, body)."""
    payload = json.loads(body.decode("utf-8"))
    args = [to_ref(a) for a in payload.get("args") or []]
    kwargs = {k: to_ref(v) for k, v in (payload.get("kwargs") or {}).items()}
    try:
        value = fn(*args, **kwargs)
        if inspect.iscoroutine(value):
            # An `async def` function: run to completion on a fresh event loop.
            import asyncio

            value = asyncio.run(value)
    except BaseException as e:  # noqa: B036 - SystemExit and KeyboardInterrupt fail the task, not the runner
        d = failure(e, 1, RUNNER.data_errors)
        d["type"] = "failed"
        return d, b""
    try:
        kind, data = encode(value)
    except MemoryError as e:
        d = failure(e, 0)
        d["type"] = "failed"
        return d, b""
    except (ValueError, TypeError, RecursionError) as e:
        return {"type": "failed", "code": "FERRY_RESULT_NOT_SERIALIZABLE", "name": "ResultNotSerializable", "message": "The result cannot be encoded: %s" % e}, b""
    if len(data) > max_body_bytes:
        return {"type": "failed", "code": "FERRY_RESULT_TOO_LARGE", "name": "ResultTooLarge", "message": "The result is %d bytes, more than the %d this endpoint takes from a task (task_memory_mb)" % (len(data), max_body_bytes)}, b""
    return {"type": "result", "kind": kind}, data

if __name__ == "__main__":
    # Not on sys.path: the runner's own directory; the function imports from the environment.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    main()
