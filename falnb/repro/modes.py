"""Record modes, named as vcrpy names them, and how one is chosen for a call.

``once`` (default)
    Use the lock entry when there is one; otherwise call the endpoint and record the result.
``refresh``
    Call again, sending the pinned seed, and overwrite the entry.
``none``
    Never touch the network: a call with no completed entry is an error (for CI).
``off``
    Neither read nor write the lock.

Precedence: the call's own ``record`` option, then the notebook's (``%fal config
record=...``), then the ``FALNB_RECORD`` environment variable, then ``once``. One exception:
``FALNB_RECORD=none`` wins over everything, so a CI run (``falnb lock verify``) cannot be
talked into a network call by a cell that asks for ``--record refresh``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, get_args

__all__ = ["DEFAULT_MODE", "ENV_VAR", "MODES", "RecordMode", "parse_mode", "resolve_mode"]

RecordMode = Literal["once", "refresh", "none", "off"]
MODES: tuple[RecordMode, ...] = get_args(RecordMode)
DEFAULT_MODE: RecordMode = "once"
ENV_VAR = "FALNB_RECORD"


def parse_mode(value: str, *, source: str = "record") -> RecordMode:
    """``value`` as a :data:`RecordMode`; a ValueError naming the choices otherwise."""
    mode = value.strip().lower()
    if mode not in MODES:
        raise ValueError(f"{source} must be one of {', '.join(MODES)}, not {value!r}")
    return mode


def resolve_mode(
    call: str | None = None,
    notebook: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RecordMode:
    """The mode for one call, from its option, the notebook's setting and the environment."""
    env = os.environ if environ is None else environ
    env_value = env.get(ENV_VAR, "").strip()
    env_mode = parse_mode(env_value, source=ENV_VAR) if env_value else None
    if env_mode == "none":
        return "none"
    for value, source in ((call, "--record"), (notebook, "record")):
        if value:
            return parse_mode(value, source=source)
    return env_mode or DEFAULT_MODE
