"""Settings from Python: a file, YAML text, a dict or a Settings, then overrides.

Overrides are keyword arguments whose values may be nested dicts
(``env={"window": 32}``) or dotted keys (``**{"env.window": 32}``); each
becomes a ``key.path=value`` override, exactly as ``tradelab --set`` takes
it, and the whole is validated as ``settings.yaml`` is.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Union

from . import _native

SettingsLike = Union[None, str, "os.PathLike[str]", Dict[str, Any], _native.Settings]


def _flatten(prefix: str, value: Any, out: List[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        # JSON is YAML: numbers, booleans, strings and lists read back as given.
        out.append(f"{prefix}={json.dumps(value, default=str)}")


def make_settings(settings: SettingsLike = None, **overrides: Any) -> _native.Settings:
    """Validated settings: the compiled-in defaults, or ``settings`` (a YAML
    file's path, a nested dict, or a ``Settings``), with ``overrides`` on top."""
    flat: List[str] = []
    for key, value in overrides.items():
        _flatten(key, value, flat)
    if isinstance(settings, _native.Settings):
        if not flat:
            return settings
        return _native.Settings(yaml=settings.to_json(), overrides=flat)
    if settings is None:
        return _native.Settings(overrides=flat)
    if isinstance(settings, dict):
        return _native.Settings(yaml=json.dumps(settings), overrides=flat)
    if isinstance(settings, (str, os.PathLike)):
        return _native.Settings(path=os.fspath(settings), overrides=flat)
    raise TypeError(
        f"settings must be a path to a YAML file, a dict or a tradelab Settings, not {type(settings).__name__}"
    )


def settings_dict(settings: _native.Settings) -> Dict[str, Any]:
    """Every section of ``settings`` as a nested dict."""
    return json.loads(settings.to_json())


__all__ = ["make_settings", "settings_dict", "SettingsLike"]
