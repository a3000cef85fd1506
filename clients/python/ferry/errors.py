"""Errors the client raises: each carries Ferry's stable ``code``, so callers branch on it."""

from __future__ import annotations

from typing import Any, Dict, List, Optional


class FerryError(Exception):
    """A refusal or failure with Ferry's stable code (``VALIDATION_ERROR``, ``FERRY_FUNCTION_ERROR``, …).

    ``status`` is the HTTP status of the gateway's answer, or 0 when nothing was sent or answered
    (a refusal by the client itself, an unreachable gateway).
    """

    def __init__(self, code: str, message: str, status: int = 0, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details

    def __reduce__(self) -> Any:
        return (self.__class__, (self.code, self.message, self.status, self.details))


class FunctionRefused(FerryError, ValueError):
    """``register`` refused a function before sending it: no source, a closure, a lambda, a syntax error."""

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_FUNCTION_CODE", message, 0)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.message,))


class TaskFailed(FerryError):
    """The task ended ``failed``; ``exception`` is what the endpoint reported (code, name, message, stack)."""

    def __init__(self, task_id: str, exception: Dict[str, Any]) -> None:
        code = str(exception.get("code") or "UNKNOWN")
        name = str(exception.get("name") or "Error")
        text = str(exception.get("message") or "")
        super().__init__(code, f"task {task_id} failed: {name}: {text}", 0, exception)
        self.task_id = task_id
        self.exception = exception
        self.name = name
        self.remote_message = text
        #: The remote traceback (Python) or stack (JavaScript), when the endpoint sent one.
        self.traceback: Optional[str] = exception.get("stack") or exception.get("traceback")

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n{self.traceback}" if self.traceback else base

    def __reduce__(self) -> Any:
        return (self.__class__, (self.task_id, self.exception))


class TaskCancelled(FerryError):
    """The task was cancelled (``DELETE /v2/tasks/{id}``) before it ended."""

    def __init__(self, task_id: str) -> None:
        super().__init__("TASK_CANCELLED", f"task {task_id} was cancelled", 0)
        self.task_id = task_id

    def __reduce__(self) -> Any:
        return (self.__class__, (self.task_id,))


class WaitTimeout(FerryError, TimeoutError):
    """The tasks had not ended when the wait ran out (they go on running)."""

    def __init__(self, task_ids: List[str], seconds: float) -> None:
        super().__init__("WAIT_TIMEOUT", f"{len(task_ids)} task(s) not finished after {seconds:g} s", 0)
        self.task_ids = task_ids
        self.seconds = seconds

    def __reduce__(self) -> Any:
        return (self.__class__, (self.task_ids, self.seconds))
