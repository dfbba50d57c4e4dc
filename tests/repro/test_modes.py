"""Record modes: parsing and precedence (call, notebook, env; env none wins)."""

from __future__ import annotations

import pytest

from falnb.repro import parse_mode, resolve_mode


def test_default_is_once() -> None:
    assert resolve_mode(environ={}) == "once"


def test_call_beats_notebook_beats_env() -> None:
    env = {"FALNB_RECORD": "off"}
    assert resolve_mode(environ=env) == "off"
    assert resolve_mode(notebook="refresh", environ=env) == "refresh"
    assert resolve_mode(call="once", notebook="refresh", environ=env) == "once"


def test_env_none_is_absolute() -> None:
    env = {"FALNB_RECORD": "NONE"}
    assert resolve_mode(call="refresh", notebook="once", environ=env) == "none"


def test_bad_values_name_the_choices() -> None:
    with pytest.raises(ValueError, match="once, refresh, none, off"):
        parse_mode("always", source="--record")
    with pytest.raises(ValueError, match="FALNB_RECORD"):
        resolve_mode(environ={"FALNB_RECORD": "sometimes"})
