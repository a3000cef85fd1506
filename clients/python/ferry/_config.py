"""Where the client finds the gateway and the token, as the CLI does (src/cli/user-config.ts): the
arguments, then FERRY_URL / FERRY_TOKEN, then $FERRY_HOME/user.json (written by `ferry login`),
then $FERRY_HOME/dev.json (written by `npm start`). Each setting resolves on its own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ._http import decode_json
from .errors import FerryError

MAX_CONFIG_BYTES = 1024 * 1024


def ferry_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("FERRY_HOME") or Path.home() / ".ferry").resolve()


def _read(path: Path) -> Optional[Dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    try:
        data = decode_json(raw, str(path), MAX_CONFIG_BYTES)
    except FerryError as err:
        raise FerryError("CONFIG_INVALID", f"{path}: {err.message}") from None
    if not isinstance(data, dict):
        raise FerryError("CONFIG_INVALID", f"{path}: not a JSON object")
    for key in ("gateway_url", "token"):
        if key in data and (not isinstance(data[key], str) or not data[key]):
            raise FerryError("CONFIG_INVALID", f"{path}: {key} must be a non-empty string")
    return data


def resolve_access(url: Optional[str], token: Optional[str], env: Optional[Mapping[str, str]] = None) -> Tuple[str, str]:
    """The gateway URL and the token, or FerryError CONFIG_INVALID naming the ways to give them."""
    env = os.environ if env is None else env
    url = url or env.get("FERRY_URL") or None
    token = token or env.get("FERRY_TOKEN") or None
    home = ferry_home(env)
    for path in (home / "user.json", home / "dev.json"):
        if url and token:
            break
        data = _read(path)
        if data is None:
            continue
        url = url or data.get("gateway_url")
        token = token or data.get("token")
    if not url or not token:
        missing: List[str] = []
        if not url:
            missing.append("the gateway URL")
        if not token:
            missing.append("a token")
        raise FerryError(
            "CONFIG_INVALID",
            f"no gateway configured: the client needs {' and '.join(missing)}. Give them as Client(url=..., token=...), "
            f"as FERRY_URL and FERRY_TOKEN, or with `ferry login --gateway URL --token T` (saves {home / 'user.json'})",
        )
    return url.rstrip("/"), token
