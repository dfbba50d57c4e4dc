"""Fault injection for the local server: the failures fal's gateway and runners produce.

Fault injection is off unless the server is started for tests with ``LocalServer(faults=True)``
(``falnb serve --faults``); otherwise the header is ignored and adding a rule is an error. The
header applies only to requests that passed auth, so a caller without the key can never hold,
reset or forge an answer; rules (set by the test, not the caller) also apply to public paths
such as ``/_cdn`` file downloads.

A fault is a :class:`FaultRule`. Tests add rules from Python::

    server.faults.add("status=429;retry_after=1", role="queue", method="POST", times=1)
    server.faults.add("status=503;ingress", path_contains="/status", rate=0.5)

or ask for one on a single request with the header ``x-falnb-fault: <spec>``.

A spec is ``;``-separated ``key=value`` items and flags:

``status=N``         answer N instead of running the route (app-style JSON + ``x-fal-request-id``)
``ingress``          with ``status``: nginx HTML body and no ``x-fal-request-id`` (fal's gateway)
``retry_after=S``    with ``status=429``: ``Retry-After`` header and ``retry_after`` in the body
``detail=TEXT``      / ``error_type=T``: the JSON body's fields
``user_timeout``     with ``status=504``: ``X-Fal-Request-Timeout-Type: user``
``delay=S``          wait S seconds before handling (combines with the others)
``drop``             SSE routes: close the stream after its first event (no COMPLETED);
                     other routes: same as ``reset``
``reset``            abort the connection without any response
``cut``              SSE routes: abort the connection after the first event (a broken stream);
                     other routes: same as ``reset``
``times=N`` / ``rate=P``  fire at most N times / with probability P (seeded, reproducible)
``duration=S``       fire only during the S seconds after the rule is added, then heal (a blip)

Faults live in front of the app: a faulted request never reaches it, so a faulted submit is
not queued and not journaled as accepted.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from falnb.local.errors import FaultInjectionDisabledError

__all__ = ["FaultInjectionDisabledError", "FaultRule", "Faults", "parse_fault"]

_FLAGS = ("ingress", "drop", "reset", "cut", "user_timeout")
_DEFAULT_ERROR_TYPES = {
    500: "internal_error",
    502: "runner_incomplete_response",
    503: "runner_scheduling_failure",
    504: "request_timeout",
}


@dataclass
class FaultRule:
    """One failure to inject, and which requests it applies to."""

    status: int | None = None
    ingress: bool = False
    retry_after: float | None = None
    detail: str | None = None
    error_type: str | None = None
    user_timeout: bool = False
    delay: float = 0.0
    drop: bool = False
    reset: bool = False
    cut: bool = False
    role: str | None = None
    method: str | None = None
    path_contains: str | None = None
    times: int | None = None
    rate: float | None = None
    duration: float | None = None
    fired: int = 0
    spec: str = ""
    added: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if not (self.status or self.delay or self.drop or self.reset or self.cut):
            raise ValueError("a fault needs status=, delay=, drop, reset or cut")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be 4xx or 5xx, not {self.status}")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be within 0..1")
        if not self.spec:
            self.spec = self._describe()

    def _describe(self) -> str:
        parts: list[str] = []
        if self.delay:
            parts.append(f"delay={self.delay:g}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}")
        parts.extend(flag for flag in _FLAGS if getattr(self, flag))
        return ";".join(parts)

    def healed(self) -> bool:
        """Whether its ``duration`` has passed (a blip that is over)."""
        return self.duration is not None and time.monotonic() - self.added > self.duration

    def matches(self, role: str, method: str, path: str) -> bool:
        return (
            (self.role is None or self.role == role)
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path_contains is None or self.path_contains in path)
        )

    def error_body(self) -> dict[str, Any]:
        """The JSON body of an app-style (non-ingress) status fault."""
        assert self.status is not None
        if self.status == 422:
            msg = self.detail or "injected validation error"
            return {"detail": [{"loc": ["body"], "msg": msg, "type": "value_error"}]}
        body: dict[str, Any] = {"detail": self.detail or HTTPStatus(self.status).phrase}
        error_type = self.error_type or _DEFAULT_ERROR_TYPES.get(self.status)
        if error_type:
            body["error_type"] = error_type
        if self.status == 429:
            body["retry_after"] = self.retry_after if self.retry_after is not None else 1
        return body

    def ingress_body(self) -> str:
        """The nginx error page fal's gateway answers with."""
        assert self.status is not None
        title = f"{self.status} {HTTPStatus(self.status).phrase}"
        return (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )


def parse_fault(spec: str, **match: Any) -> FaultRule:
    """A :class:`FaultRule` from a spec string such as ``"status=429;retry_after=1"``."""
    fields: dict[str, Any] = dict(match)
    for raw in spec.split(";"):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if not sep:
            if name not in _FLAGS:
                raise ValueError(f"unknown fault flag {name!r} in {spec!r}")
            fields[name] = True
        elif name in ("status", "times"):
            fields[name] = int(value)
        elif name in ("delay", "retry_after", "rate", "duration"):
            fields[name] = float(value)
        elif name in ("detail", "error_type", "role", "method", "path_contains"):
            fields[name] = value
        elif name in _FLAGS:
            fields[name] = value.lower() in ("1", "true", "yes")
        else:
            raise ValueError(f"unknown fault setting {name!r} in {spec!r}")
    return FaultRule(**fields)


@dataclass
class Faults:
    """The server's fault rules (thread-safe), checked in order for every request.

    With ``enabled=False`` (a server not started for tests) nothing is ever injected.
    """

    seed: int = 0
    enabled: bool = False
    _rules: list[FaultRule] = field(default_factory=list, repr=False)
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _header_fired: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - reproducible, not secret

    def add(
        self,
        spec: str | FaultRule = "",
        *,
        role: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        duration: float | None = None,
        **settings: Any,
    ) -> FaultRule:
        """Add a rule from a spec string (or keyword settings) and return it.

        ``server.faults.add("status=503;ingress", role="queue", times=2)``
        """
        if not self.enabled:
            raise FaultInjectionDisabledError(
                "fault injection is off on this server; start it with "
                "LocalServer(faults=True) or `falnb serve --faults` (for tests)"
            )
        if isinstance(spec, FaultRule):
            rule = spec
        else:
            match = {
                k: v
                for k, v in {
                    "role": role,
                    "method": method,
                    "path_contains": path_contains,
                    "times": times,
                    "rate": rate,
                    "duration": duration,
                }.items()
                if v is not None
            }
            rule = parse_fault(spec, **match, **settings)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule, reset counters and reseed (so each test is reproducible)."""
        with self._lock:
            self._rules.clear()
            self._header_fired = 0
            self._random = random.Random(self.seed)  # noqa: S311 - reproducible, not secret

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def counts(self) -> dict[str, int]:
        """How often each rule fired, by spec (header faults under ``"header"``)."""
        with self._lock:
            out: dict[str, int] = {}
            for rule in self._rules:
                out[rule.spec] = out.get(rule.spec, 0) + rule.fired
            if self._header_fired:
                out["header"] = self._header_fired
            return out

    @property
    def fired(self) -> int:
        """Total number of faults injected since the last :meth:`clear`."""
        with self._lock:
            return self._header_fired + sum(rule.fired for rule in self._rules)

    def select(
        self, role: str, method: str, path: str, header_spec: str | None = None
    ) -> FaultRule | None:
        """The fault to apply to this request, if any, counted as fired (the header is given
        for authenticated requests only)."""
        if not self.enabled:
            return None
        with self._lock:
            if header_spec:
                rule = parse_fault(header_spec)
                if rule.rate is None or self._random.random() < rule.rate:
                    self._header_fired += 1
                    return rule
                return None
            for rule in self._rules:
                if not rule.matches(role, method, path):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.healed():
                    continue
                if rule.rate is not None and self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                return rule
        return None
