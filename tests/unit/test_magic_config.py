"""`%fal config` shows the settings as they apply: the target really in use, the lock, the media."""

from __future__ import annotations

from pathlib import Path

import pytest

from falnb.magics import _describe_config
from falnb.session import Session

KEY = "0123456789abcdef-local-test-key"


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("FALNB_LOCK", str(tmp_path / "notebook.lock"))
    monkeypatch.setenv("FALNB_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("FALNB_RECORD", "FALNB_TARGET", "FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for part in ("RUN", "QUEUE", "REST", "CDN", "REALTIME"):
        monkeypatch.delenv(f"FALNB_{part}_URL", raising=False)
    return Session()


def test_config_says_what_unset_settings_fall_back_to(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _describe_config(session)
    assert "record = once\n" in text
    assert "target = local (no fal key is set): the embedded local server" in text
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


def test_config_shows_the_fal_target_and_its_urls_never_the_key(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = "http://127.0.0.1:8765"
    monkeypatch.setenv("FALNB_TARGET", "fal")
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setenv("FALNB_RUN_URL", base)
    monkeypatch.setenv("FALNB_QUEUE_URL", f"{base}/_queue")
    text = _describe_config(session)
    assert "target = fal (FALNB_TARGET=fal): the URLs FALNB_*_URL give" in text
    assert f"  run_url = {base}\n" in text
    assert f"  queue_url = {base}/_queue\n" in text
    assert "  rest_url = https://rest.fal.ai\n" in text  # not overridden: fal's own
    assert "key = from FAL_KEY" in text
    assert KEY not in text

    monkeypatch.delenv("FALNB_RUN_URL")
    monkeypatch.delenv("FALNB_QUEUE_URL")
    monkeypatch.delenv("FALNB_TARGET")
    monkeypatch.delenv("FAL_KEY")
    monkeypatch.setenv("FAL_KEY_ID", "key-id-0123456789")
    monkeypatch.setenv("FAL_KEY_SECRET", "secret-0123456789")
    text = _describe_config(session)
    assert "target = fal (a fal key is set): fal's cloud" in text
    assert "key = from FAL_KEY_ID + FAL_KEY_SECRET" in text
    assert "0123456789" not in text

    session.config.target = "local"
    assert "target = local (%fal config target=local)" in _describe_config(session)
