"""A Python function's source as the endpoint receives it: `inspect.getsource`, dedented, decorators
stripped, checked to parse. Closures, lambdas and functions without source are refused: the
endpoint runs the source alone, in a fresh interpreter, so nothing but the function's text goes."""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
import types
import warnings
from typing import Any, Callable, List, Tuple

from .errors import FunctionRefused


def function_source(func: Callable[..., Any]) -> Tuple[str, str]:
    """``(name, source)`` of a plain ``def`` function, or FunctionRefused saying why it cannot go."""
    func = inspect.unwrap(func)
    if not isinstance(func, types.FunctionType):
        raise FunctionRefused(f"{func!r} is not a Python function defined with def (builtins, methods of C types and callables cannot be sent)")
    name = func.__name__
    if name == "<lambda>":
        raise FunctionRefused("a lambda cannot be registered: define the function with def")
    free = func.__code__.co_freevars
    if free:
        raise FunctionRefused(
            f"function {name} is a closure over {', '.join(free)}: only its source is sent, so the values of "
            f"variables of the enclosing function would be missing on the endpoint. Pass them as arguments"
        )
    try:
        raw = inspect.getsource(func)
    except (OSError, TypeError) as err:
        raise FunctionRefused(
            f"the source of function {name} is not available ({err}): define it in a file or a notebook cell, not at a bare interactive prompt"
        ) from None
    source = textwrap.dedent(raw)
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise FunctionRefused(f"the source of function {name} does not parse: line {err.lineno}: {err.msg}") from None
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(tree.body) != 1 or not defs or defs[0].name != name:
        raise FunctionRefused(f"the source of function {name} is not one def statement of that name")
    node = defs[0]
    # Decorators are the client's business (a registry, a cache): the endpoint gets the def alone.
    lines = source.splitlines(keepends=True)
    source = "".join(lines[node.lineno - 1 :])
    check_source(source, name)
    _warn_on_globals(func, node)
    return name, source


def check_source(source: str, name: str) -> None:
    """Refuses source that does not compile, naming the line."""
    try:
        compile(source, f"<ferry function {name}>", "exec", dont_inherit=True)
    except SyntaxError as err:
        raise FunctionRefused(f"the source of function {name} does not compile: line {err.lineno}: {err.msg}") from None


def _warn_on_globals(func: types.FunctionType, node: ast.AST) -> None:
    """Warns of module-level names the function uses (``np`` imported in another cell): the endpoint lacks them."""
    node.decorator_list = []  # type: ignore[attr-defined]
    assigned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assigned.update(n.arg for n in ast.walk(node) if isinstance(n, ast.arg))
    for n in ast.walk(node):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            assigned.update((a.asname or a.name).split(".")[0] for a in n.names)
    used: List[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in assigned and n.id != func.__name__:
            if n.id in func.__globals__ and not hasattr(builtins, n.id) and n.id not in used:
                used.append(n.id)
    if used:
        warnings.warn(
            f"function {func.__name__} uses {', '.join(used)} from its module; only its source is sent, so import "
            f"or define them inside the function",
            stacklevel=4,
        )
