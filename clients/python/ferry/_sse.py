"""GET /v3/events as Server-Sent Events: a bounded line reader of the stream (Ferry ends lines with
LF), reconnecting with Last-Event-ID after a backoff until stopped."""

from __future__ import annotations

import random
import socket
import threading
import urllib.parse
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ._http import MAX_ERROR_BYTES, Response, Transport, decode_json, error_from_body
from .errors import FerryError

#: The longest `data:` line a reader accepts (src/protocol/event-limits.ts: maxEventBytes) plus its field name.
MAX_LINE_BYTES = 2 * 1024 * 1024 + 64
#: Longer than the gateway's keepalive (a comment at least every 15 s): a silent stream is a dead one.
READ_TIMEOUT_S = 45.0


def _final(err: FerryError) -> bool:
    """A refusal reconnecting cannot outlast: the caller's mistake (4xx but 408 and 429)."""
    return 400 <= err.status < 500 and err.status not in (408, 429)


class EventStream:
    """Events of one selector (``{"task_group_id": …}``, ``{"endpoint_id": …}``, ``{"task_id": [...]}``).

    Iterate it for ``(type, data, id)`` tuples, ``data`` decoded from JSON; ``stop()`` from any
    thread ends the iteration. A dropped stream is opened again where it stopped; a 4xx refusal
    raises FerryError.
    """

    def __init__(self, transport: Transport, selector: Mapping[str, Any], last_event_id: Optional[str] = None) -> None:
        pairs: List[Tuple[str, str]] = []
        for key, value in selector.items():
            for v in value if isinstance(value, (list, tuple)) else [value]:
                pairs.append((key, str(v)))
        self._path = "/v3/events?" + urllib.parse.urlencode(pairs)
        self._http = transport
        self.last_event_id = last_event_id
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._res: Optional[Response] = None
        #: Reconnects so far (for tests and logs).
        self.reconnects = 0

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            res = self._res
        if res is not None:
            # Unblocks a read in another thread; the connection is not reused.
            sock = getattr(getattr(res.raw, "fp", None), "raw", None)
            try:
                s = getattr(sock, "_sock", None)
                if s is not None:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __iter__(self) -> Iterator[Tuple[str, Any, Optional[str]]]:
        attempt = 0
        while not self._stopped.is_set():
            try:
                for event in self._read_once():
                    attempt = 0
                    yield event
            except FerryError as err:
                if self._stopped.is_set():
                    return
                if _final(err) or err.code == "SSE_LIMIT":
                    raise
            except (OSError, ValueError):
                if self._stopped.is_set():
                    return
            attempt += 1
            self.reconnects += 1
            wait = min(10.0, 0.25 * 2 ** min(attempt - 1, 6)) * (0.75 + random.random() * 0.5)
            self._stopped.wait(wait)

    def _read_once(self) -> Iterator[Tuple[str, Any, Optional[str]]]:
        headers: Dict[str, str] = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        res = self._http.open("GET", self._path, None, headers, timeout=READ_TIMEOUT_S, fresh=True)
        if res.status != 200:
            raise error_from_body(res.status, res.read_some(MAX_ERROR_BYTES))
        with self._lock:
            self._res = res
        try:
            if self._stopped.is_set():
                return
            data: List[bytes] = []
            data_bytes = 0
            kind = ""
            while not self._stopped.is_set():
                line = res.raw.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return  # the stream ended: reconnect
                if len(line) > MAX_LINE_BYTES:
                    raise FerryError("SSE_LIMIT", f"an event stream line is over {MAX_LINE_BYTES} bytes")
                line = line.rstrip(b"\n").rstrip(b"\r")
                if not line:
                    if data:
                        text = b"\n".join(data)
                        value = decode_json(text, f"{kind or 'message'} event") if kind in ("task", "endpoint") else text.decode("utf-8", "replace")
                        yield (kind or "message", value, self.last_event_id)
                    data, data_bytes, kind = [], 0, ""
                    continue
                if line.startswith(b":"):
                    continue  # a keepalive comment
                name, _, value = line.partition(b":")
                if value.startswith(b" "):
                    value = value[1:]
                if name == b"data":
                    data_bytes += len(value) + 1
                    if data_bytes > MAX_LINE_BYTES:
                        raise FerryError("SSE_LIMIT", f"an event is over {MAX_LINE_BYTES} bytes")
                    data.append(value)
                elif name == b"event":
                    kind = value.decode("utf-8", "replace")
                elif name == b"id" and b"\0" not in value:
                    self.last_event_id = value.decode("utf-8", "replace")
        finally:
            with self._lock:
                self._res = None
            res.close()
