"""The client's transport: http.client on kept-alive connections (one per thread), bounded decoding
of every answer (size, and nesting depth for JSON), retries of 429 and 503 after Retry-After, and
one more send of a request whose kept-alive connection closed before any answer when sending it
again cannot store anything twice (the rule of src/sdk/resend.ts)."""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import re
import socket
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

from .errors import FerryError

#: How deeply JSON answers may nest: a task doc (a few levels) around a value of at most 512 levels.
MAX_JSON_DEPTH = 512 + 16
#: The largest JSON answer read (a batch_status of 1,000 docs with large inline results stays under it).
MAX_JSON_BYTES = 256 * 1024 * 1024
#: The largest error body read (the rest is dropped).
MAX_ERROR_BYTES = 64 * 1024

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Sends after a closed kept-alive connection (another one may be stale too).
MAX_RESENDS = 2
#: Longest single wait a Retry-After may ask for.
MAX_RETRY_AFTER_S = 60.0

Body = Union[bytes, bytearray, memoryview, None]

_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether arrays and objects in the JSON ``text`` nest more than ``limit`` levels (one scan, no parse)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return True
        elif c == "]" or c == "}":
            depth -= 1
    return False


def decode_json(raw: Union[bytes, bytearray, memoryview], what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """JSON from bytes, refused over ``max_bytes`` or nested deeper than MAX_JSON_DEPTH."""
    if len(raw) > max_bytes:
        raise FerryError("PAYLOAD_TOO_LARGE", f"{what}: {len(raw)} bytes of JSON, over the client's limit of {max_bytes}")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as err:
        raise FerryError("INVALID_JSON", f"{what}: not UTF-8 ({err})") from None
    if nests_deeper_than(text, MAX_JSON_DEPTH):
        raise FerryError("INVALID_JSON", f"{what}: nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise FerryError("INVALID_JSON", f"{what}: not valid JSON ({err})") from None


def retry_after_seconds(header: Optional[str]) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date), capped, with a little jitter."""
    seconds = 1.0
    if header is not None:
        try:
            seconds = float(header)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
                seconds = when.timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S) + random.random() * 0.05


def error_from_body(status: int, raw: bytes) -> FerryError:
    """The FerryError of a non-OK answer: a Ferry error body ``{code, message, details?}``, or a proxy's page."""
    code = f"HTTP_{status}"
    message = raw[:500].decode("utf-8", "replace")
    details: Any = None
    try:
        body = decode_json(raw, "error body", MAX_ERROR_BYTES)
        if isinstance(body, dict):
            code = str(body.get("code") or code)
            message = str(body.get("message") or message)
            details = body.get("details")
    except FerryError:
        pass
    return FerryError(code, message, status, details)


def _closed_before_answer(err: BaseException) -> bool:
    return isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.BadStatusLine))


class Response:
    """An answer whose body has not been read: read it with a bound, then ``release`` (or ``close``)."""

    def __init__(self, transport: "Transport", conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._transport = transport
        self._conn = conn
        self.raw = resp
        self.status = resp.status
        self.headers = resp.headers

    def read(self, max_bytes: int, what: str) -> bytes:
        """The whole body, refused when over ``max_bytes``."""
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            self.close()
            raise FerryError("PAYLOAD_TOO_LARGE", f"{what}: the answer has {length} bytes, over the client's limit of {max_bytes}", self.status)
        data = self.raw.read(max_bytes + 1)
        if len(data) > max_bytes:
            self.close()
            raise FerryError("PAYLOAD_TOO_LARGE", f"{what}: the answer is over the client's limit of {max_bytes} bytes", self.status)
        self.release()
        return data

    def read_some(self, max_bytes: int) -> bytes:
        """At most ``max_bytes`` of the body (an error page): the connection is dropped when more remain."""
        data = self.raw.read(max_bytes)
        if self.raw.isclosed():
            self.release()
        else:
            self.close()
        return data

    def release(self) -> None:
        """Hands the connection back for the next request (the body must have been read to its end)."""
        if self.raw.isclosed() and self._conn is not None:
            self._transport._give_back(self._conn)
        else:
            self.close()
        self._conn = None  # type: ignore[assignment]

    def close(self) -> None:
        """Drops the connection (a body not read to its end cannot be followed by another request)."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None  # type: ignore[assignment]
        self.raw.close()


class Transport:
    """HTTP to one gateway with a bearer token."""

    def __init__(self, url: str, token: str, *, max_retries: int = 20, timeout: float = 120.0, user_agent: str = "ferry-python") -> None:
        parts = urllib.parse.urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FerryError("CONFIG_INVALID", f"the gateway URL must be http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._token = token
        self._max_retries = max_retries
        self._timeout = timeout
        self._user_agent = user_agent
        #: Each thread's kept-alive connection, between its requests.
        self._idle: Dict[int, http.client.HTTPConnection] = {}
        self._idle_lock = threading.Lock()
        #: Requests retried after a 429 or a 503 since this transport was made.
        self.retries = 0
        self.on_retry: Optional[Callable[[Dict[str, Any]], None]] = None

    # ── connections ──

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _take(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        with self._idle_lock:
            idle = self._idle.pop(threading.get_ident(), None)
        if idle is not None:
            idle.timeout = timeout
            if idle.sock is not None:
                idle.sock.settimeout(timeout)
            return idle, True
        return self._new_connection(timeout), False

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._idle_lock:
            old = self._idle.get(threading.get_ident())
            self._idle[threading.get_ident()] = conn
        if old is not None and old is not conn:
            old.close()

    def close(self) -> None:
        """Closes every kept-alive connection (of every thread)."""
        with self._idle_lock:
            idle = list(self._idle.values())
            self._idle.clear()
        for conn in idle:
            conn.close()

    # ── requests ──

    def headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        h = {"Authorization": f"Bearer {self._token}", "User-Agent": self._user_agent}
        if extra:
            h.update(extra)
        return h

    def open(
        self,
        method: str,
        path: str,
        body: Body = None,
        headers: Optional[Mapping[str, str]] = None,
        *,
        repeatable: bool = False,
        timeout: Optional[float] = None,
        fresh: bool = False,
    ) -> Response:
        """Sends a request and answers its response, body unread: 429s (and 503s with Retry-After) are retried."""
        all_headers = self.headers(headers)
        resendable = repeatable or method.upper() in IDEMPOTENT_METHODS or any(k.lower() == "idempotency-key" for k in all_headers)
        t = self._timeout if timeout is None else timeout
        attempt = 0
        while True:
            res = self._send(method, path, body, all_headers, resendable, t, fresh)
            retry = res.status == 429 or (res.status == 503 and res.headers.get("retry-after") is not None)
            if not retry or attempt >= self._max_retries:
                return res
            attempt += 1
            wait = retry_after_seconds(res.headers.get("retry-after"))
            res.read_some(MAX_ERROR_BYTES)
            self.retries += 1
            if self.on_retry is not None:
                self.on_retry({"method": method, "path": path, "status": res.status, "attempt": attempt, "wait_s": wait})
            time.sleep(wait)

    def _send(self, method: str, path: str, body: Body, headers: Dict[str, str], resendable: bool, timeout: float, fresh: bool) -> Response:
        resends = 0
        while True:
            conn, reused = (self._new_connection(timeout), False) if fresh else self._take(timeout)
            try:
                conn.request(method, self._base + path, body=body, headers=headers)
                resp = conn.getresponse()
                return Response(self, conn, resp)
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                if _closed_before_answer(err) and resendable and resends < MAX_RESENDS:
                    resends += 1
                    continue
                if isinstance(err, socket.timeout):
                    raise FerryError("UNAVAILABLE", f"{method} {path}: no answer from the gateway at {self.url} within {timeout:g} s") from None
                raise FerryError("UNAVAILABLE", f"{method} {path}: cannot reach the gateway at {self.url} ({err.__class__.__name__}: {err})") from None

    def call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        ok: Iterable[int] = (200,),
        idempotency_key: Optional[str] = None,
        repeatable: bool = False,
        timeout: Optional[float] = None,
    ) -> Any:
        """One JSON API call: the decoded answer, or FerryError with the gateway's code."""
        headers: Dict[str, str] = {"Accept": "application/json"}
        body: Optional[bytes] = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode("utf-8")
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        res = self.open(method, path, body, headers, repeatable=repeatable, timeout=timeout)
        return self.json_of(res, f"{method} {path}", ok)

    def json_of(self, res: Response, what: str, ok: Iterable[int] = (200,)) -> Any:
        if res.status not in tuple(ok):
            raise error_from_body(res.status, res.read_some(MAX_ERROR_BYTES))
        raw = res.read(MAX_JSON_BYTES, what)
        return decode_json(raw, what) if raw else None
