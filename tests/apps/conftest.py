"""Handlers called directly with a Context backed by a FileStore in tmp_path (no server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from falnb.local.files import FileStore
from falnb.local.registry import Context

CDN = "http://127.0.0.1:9/_cdn"


@dataclass
class Harness:
    store: FileStore
    logs: list[tuple[str, str]] = field(default_factory=list)

    def context(self, endpoint_id: str = "local/test") -> Context:
        def store_sink(data: bytes, content_type: str, name: str | None) -> dict[str, Any]:
            return dict(self.store.put(data, content_type, name).as_file(CDN))

        return Context(
            request_id="req-1",
            endpoint_id=endpoint_id,
            log_sink=lambda message, level: self.logs.append((message, level)),
            store_sink=store_sink,
        )

    def read(self, file: dict[str, Any]) -> bytes:
        """The bytes behind a File dict the handler returned."""
        prefix = f"{CDN}/files/"
        assert file["url"].startswith(prefix), file["url"]
        file_id, name = file["url"][len(prefix) :].split("/", 1)
        stored = self.store.get(file_id, name)
        assert stored is not None
        return stored.path.read_bytes()

    def messages(self) -> list[str]:
        return [message for message, _ in self.logs]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(FileStore(tmp_path / "cdn"))
