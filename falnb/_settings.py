"""Credentials and targets: where requests go and with which key.

A *target* is the set of base URLs fal's protocol uses (run, queue, rest, cdn, realtime),
scheme included, plus the key. fal's cloud is the default when a key is configured; with no
key, falnb targets its embedded local server (see ``falnb._embedded``).

Environment variables (all optional):

``FAL_KEY`` or ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``
    The key, as fal's own clients read it. In Colab, a ``FAL_KEY`` secret
    (``google.colab.userdata``) is read when neither is set, as fal-client does.
``FAL_RUN_HOST``, ``FAL_QUEUE_RUN_HOST``
    fal-client's host overrides: run and realtime go to ``FAL_RUN_HOST``, the queue to
    ``FAL_QUEUE_RUN_HOST`` (default ``queue.`` + ``FAL_RUN_HOST``).
``FALNB_TARGET``
    ``auto`` (default), ``fal`` or ``local``.
``FALNB_RUN_URL``, ``FALNB_QUEUE_URL``, ``FALNB_REST_URL``, ``FALNB_CDN_URL``,
``FALNB_REALTIME_URL``
    Override one base URL of the ``fal`` target (e.g. to reach a ``falnb serve`` elsewhere).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from falnb._environment import in_colab
from falnb._errors import MissingCredentialsError
from falnb._protocol import local_urls

__all__ = [
    "FAL_URLS",
    "Key",
    "Target",
    "TargetName",
    "colab_key",
    "in_colab",
    "key_from_env",
    "key_source",
    "login_token_present",
    "target_from_env",
]

TargetName = Literal["fal", "local"]

#: fal's public hosts, as the official clients use them (fal-protocol.md section 2.1).
FAL_URLS: Mapping[str, str] = {
    "run_url": "https://fal.run",
    "queue_url": "https://queue.fal.run",
    "rest_url": "https://rest.fal.ai",
    "cdn_url": "https://v3.fal.media",
    "realtime_url": "wss://fal.run",
}

#: fal's Platform API (pricing, storage ACLs and signed URLs); another server (the local one)
#: serves it under its REST root, ``{rest_url}/v1``.
PLATFORM_API_URL = "https://api.fal.ai/v1"

_URL_ENV = {name: f"FALNB_{name.upper()}" for name in FAL_URLS}


class Key:
    """A fal key. Its value is only reachable through :meth:`reveal`, never through repr/str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ValueError("a fal key cannot be empty")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def header(self) -> str:
        """The ``Authorization`` header value fal expects."""
        return f"Key {self._value}"

    def __repr__(self) -> str:
        return "Key('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def key_from_env(environ: Mapping[str, str] | None = None) -> Key | None:
    """The key fal's clients would find: ``FAL_KEY``, else ``FAL_KEY_ID:FAL_KEY_SECRET``,
    else (in Colab) the notebook's ``FAL_KEY`` secret."""
    source = key_source(environ)
    if source is None:
        return None
    return source[1]


def key_source(environ: Mapping[str, str] | None = None) -> tuple[str, Key] | None:
    """The key and where it comes from (``FAL_KEY``, ``FAL_KEY_ID + FAL_KEY_SECRET`` or
    ``the FAL_KEY Colab secret``), or None."""
    env = os.environ if environ is None else environ
    if env.get("FAL_KEY", "").strip():
        return "FAL_KEY", Key(env["FAL_KEY"])
    key_id, secret = env.get("FAL_KEY_ID", "").strip(), env.get("FAL_KEY_SECRET", "").strip()
    if key_id and secret:
        return "FAL_KEY_ID + FAL_KEY_SECRET", Key(f"{key_id}:{secret}")
    colab = colab_key()
    if colab is not None:
        return "the FAL_KEY Colab secret", colab
    return None


class _ColabSecret:
    """The Colab secret, asked for once per process: Colab shows an access prompt each time."""

    lock = threading.Lock()
    checked = False
    value: Key | None = None


def colab_key() -> Key | None:
    """The ``FAL_KEY`` Colab secret, when running in Colab and the notebook may read it.

    A missing secret, a refused access or no Colab at all is None, not an error (fal-client
    reads it the same way, ``google.colab.userdata.get("FAL_KEY")``).
    """
    if not in_colab():
        return None
    with _ColabSecret.lock:
        if not _ColabSecret.checked:
            _ColabSecret.checked = True
            _ColabSecret.value = _read_colab_secret()
        return _ColabSecret.value


def _read_colab_secret() -> Key | None:
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        value = userdata.get("FAL_KEY")
    except Exception:  # noqa: BLE001 - SecretNotFoundError, NotebookAccessError, timeouts: no key
        return None
    if not isinstance(value, str) or not value.strip():
        return None
    return Key(value)


def login_token_present(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``fal auth login`` left a token file (``$FAL_HOME_DIR``, default ``~/.fal``).

    falnb does not use it (it is a user token for fal's CLI, refreshed through Auth0); its
    presence only says a cloud key was plausibly intended.
    """
    env = os.environ if environ is None else environ
    home = Path(env.get("FAL_HOME_DIR") or Path.home() / ".fal").expanduser()
    try:
        return (home / "auth0_token").is_file()
    except OSError:
        return False


@dataclass(frozen=True)
class Target:
    """Where fal requests go. URLs carry their scheme and no trailing slash."""

    name: TargetName
    run_url: str
    queue_url: str
    rest_url: str
    cdn_url: str
    realtime_url: str
    key: Key | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in FAL_URLS:
            object.__setattr__(self, name, getattr(self, name).rstrip("/"))

    @classmethod
    def fal(cls, key: Key | str | None = None, **urls: str) -> Target:
        """fal's cloud (or any server at explicit URLs), with ``key`` or the key from env."""
        resolved = Key(key) if isinstance(key, str) else key
        return cls(name="fal", key=resolved, **{**FAL_URLS, **urls})

    @classmethod
    def local(cls, base_url: str, key: Key | str) -> Target:
        """A falnb local server (embedded or ``falnb serve``) at ``base_url``."""
        return cls(
            name="local", key=Key(key) if isinstance(key, str) else key, **local_urls(base_url)
        )

    @property
    def platform_url(self) -> str:
        """Where this target serves fal's Platform API: ``api.fal.ai/v1`` beside fal's own
        hosts, else under the server's REST root (as the local server serves it)."""
        own = self.name == "fal" and self.rest_url == FAL_URLS["rest_url"]
        return PLATFORM_API_URL if own else f"{self.rest_url}/v1"

    def serves_media(self, url: str) -> bool:
        """Whether ``url`` is a file on this target's CDN (fal's: any ``fal.media`` host)."""
        if self.cdn_url == FAL_URLS["cdn_url"]:
            parts = urlsplit(url)
            host = parts.hostname or ""
            return parts.scheme == "https" and (host == "fal.media" or host.endswith(".fal.media"))
        return url.startswith(f"{self.cdn_url}/")

    def with_key(self, key: Key | str | None) -> Target:
        return replace(self, key=Key(key) if isinstance(key, str) else key)

    def require_key(self) -> Key:
        if self.key is None:
            colab = " or a FAL_KEY Colab secret this notebook may read" if in_colab() else ""
            raise MissingCredentialsError(
                "No fal key found: set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET"
                f"{colab}), pass key=..., or use the local server with FALNB_TARGET=local."
            )
        return self.key


def target_from_env(environ: Mapping[str, str] | None = None) -> Target | None:
    """The cloud target the environment asks for, or None when falnb should run locally.

    ``FALNB_TARGET=local`` (or ``auto`` with no key) returns None: the caller starts or reuses
    the embedded server.
    """
    env = os.environ if environ is None else environ
    choice = env.get("FALNB_TARGET", "auto").strip().lower() or "auto"
    if choice not in ("auto", "fal", "local"):
        raise ValueError(f"FALNB_TARGET must be auto, fal or local, not {choice!r}")
    key = key_from_env(env)
    if choice == "local" or (choice == "auto" and key is None):
        return None
    urls = {**_host_urls(env), **{name: env[var] for name, var in _URL_ENV.items() if env.get(var)}}
    return Target.fal(key, **urls)


def _host_urls(env: Mapping[str, str]) -> dict[str, str]:
    """fal-client's ``FAL_RUN_HOST`` / ``FAL_QUEUE_RUN_HOST`` as base URLs (FALNB_*_URL win)."""
    run_host = env.get("FAL_RUN_HOST", "").strip()
    queue_host = env.get("FAL_QUEUE_RUN_HOST", "").strip() or (
        f"queue.{run_host}" if run_host else ""
    )
    urls = {}
    if run_host:
        urls["run_url"] = f"https://{run_host}"
        urls["realtime_url"] = f"wss://{run_host}"
    if queue_host:
        urls["queue_url"] = f"https://{queue_host}"
    return urls
