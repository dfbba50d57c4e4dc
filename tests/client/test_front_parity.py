"""The sync and async fronts stay in step: same methods, same parameters, same defaults.

A keyword added to one front only (a new queue option, a timeout) is a mistake a user meets
as a TypeError on the other; this test meets it first.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from falnb.client import (
    AsyncClient,
    AsyncRequestHandle,
    AsyncStream,
    RequestHandle,
    Stream,
    SyncClient,
)

#: Methods only one front has, by design: closing, wrapping, and the async handle's helpers
#: the client and the session use to build and settle handles on falnb's loop.
ONLY_ASYNC = {"aclose", "from_request_id", "cancel_if_pending"}
ONLY_SYNC = {"close", "wrapping", "async_client"}
#: Where the fronts' types differ by design: async names on one side, sync on the other.
_ASYNC_TYPES = re.compile(r"\b(?:Async|Loop)(RequestHandle|Stream|RealtimeConnection|Client)\b")
_AWAITABLE = re.compile(
    r"^(?:Awaitable|Coroutine|AbstractAsyncContextManager)\[(?:Any, Any, )?(.*)\]$"
)
_ITERATOR = re.compile(
    r"^(?:AsyncIterator|AsyncGenerator|Iterator|Generator)\[([^,\]]*)(?:, None)*\]$"
)


def public(cls: type[Any]) -> set[str]:
    """The public methods (attributes and properties are data, compared by use elsewhere)."""
    return {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)))
    }


def comparable(annotation: Any) -> str:
    """An annotation as text, with the async front's names mapped to the sync front's."""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    text = _ASYNC_TYPES.sub(r"\1", text)
    match = _AWAITABLE.match(text)
    text = match[1] if match else text
    # Iterating: ``async for`` on one front is ``for`` on the other.
    match = _ITERATOR.match(text)
    return f"Iterator[{match[1]}]" if match else text


def parameters(function: Any) -> list[tuple[str, Any, Any, str]]:
    signature = inspect.signature(function)
    return [
        (p.name, p.kind, p.default, comparable(p.annotation)) for p in signature.parameters.values()
    ]


PAIRS = [(AsyncClient, SyncClient), (AsyncRequestHandle, RequestHandle), (AsyncStream, Stream)]


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_both_fronts_have_the_same_methods(async_cls: type[Any], sync_cls: type[Any]) -> None:
    async_names = public(async_cls) - ONLY_ASYNC
    sync_names = public(sync_cls) - ONLY_SYNC
    assert async_names - sync_names == set(), f"only on {async_cls.__name__}"
    assert sync_names - async_names == set(), f"only on {sync_cls.__name__}"


def _methods() -> list[tuple[type[Any], type[Any], str]]:
    return [
        (a, s, name)
        for a, s in PAIRS
        for name in sorted((public(a) - ONLY_ASYNC) & (public(s) - ONLY_SYNC))
        if callable(getattr(a, name))
    ]


@pytest.mark.parametrize(
    ("async_cls", "sync_cls", "name"), _methods(), ids=lambda v: getattr(v, "__name__", v)
)
def test_the_same_parameters_and_defaults(
    async_cls: type[Any], sync_cls: type[Any], name: str
) -> None:
    a, s = getattr(async_cls, name), getattr(sync_cls, name)
    assert parameters(a) == parameters(s), f"{name} differs between the fronts"
    assert comparable(inspect.signature(a).return_annotation) == comparable(
        inspect.signature(s).return_annotation
    ), f"{name} returns different things"


def test_the_clients_are_built_with_the_same_options() -> None:
    assert parameters(AsyncClient.__init__) == parameters(SyncClient.__init__)


def test_the_comparison_can_tell_a_difference() -> None:
    def one(endpoint: str, *, timeout: float | None = None) -> None: ...
    def two(endpoint: str, *, timeout: float | None = 5.0) -> None: ...

    assert comparable("AsyncRequestHandle") == comparable("RequestHandle")
    assert parameters(one) != parameters(two)
