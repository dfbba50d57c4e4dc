"""`%fal config` shows the settings as they apply, including where the lock and media live."""

from __future__ import annotations

from pathlib import Path

import pytest

from falnb.magics import _describe_config
from falnb.session import Session


def test_config_says_what_unset_settings_fall_back_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALNB_LOCK", str(tmp_path / "notebook.lock"))
    monkeypatch.setenv("FALNB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FALNB_RECORD", raising=False)
    session = Session()

    text = _describe_config(session)
    assert "record = once\n" in text
    assert "target = default" in text
    assert f"lock file = {tmp_path / 'notebook.lock'}" in text  # outside the cwd and ~: as is
    # Saved text names the cache by its variable and shows no server port.
    assert "media cache = $FALNB_CACHE_DIR/media" in text
    assert f"media folder = {tmp_path / 'falnb-media'}/ (files up to 2MB" in text
    assert "media_cap = 2MB (default)" in text
    assert "127.0.0.1" not in text

    monkeypatch.setenv("FALNB_RECORD", "none")
    assert "record = once (default; FALNB_RECORD=none applies)" in _describe_config(session)
    session.config.record = "refresh"
    assert "record = 'refresh'" in _describe_config(session)
