"""How a path appears in text that is saved (a notebook's outputs, error messages).

Relative to the working directory, which Jupyter and nbclient set to the notebook's directory,
when the path is inside it; else with ``~`` for the home directory; else as it is. So a
notebook run in another checkout or by another user saves the same text.

Example::

    shown(Path.cwd() / "falnb.lock")  # 'falnb.lock'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shown"]


def shown(path: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None) -> str:
    """``path`` relative to ``base`` (default: the working directory), else under ``~``."""
    target = Path(path).expanduser().absolute()
    with_slash = str(path).endswith("/")
    start = Path(base if base is not None else Path.cwd()).absolute()
    text = str(target)
    if target.is_relative_to(start):
        text = str(target.relative_to(start))
    else:
        home = Path.home().absolute()
        if home != Path(home.anchor) and target.is_relative_to(home):
            text = str(Path("~") / target.relative_to(home))
    return text + "/" if with_slash and not text.endswith("/") else text
