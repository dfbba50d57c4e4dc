"""IPython's display hook, written once for every falnb value a cell shows as output.

A Result, a SweepResults and a SeedCheck each say what they look like in :meth:`_bundle`;
IPython asks through ``_repr_mimebundle_``, whose signature (and its unused arguments) lives
here only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Bundle", "Displayed"]

#: A MIME bundle as IPython takes it: data by MIME type, and metadata.
Bundle = tuple[dict[str, Any], dict[str, Any]]


class Displayed:
    """A value that IPython shows through the one bundle its :meth:`_bundle` builds."""

    def _bundle(self) -> Bundle:
        raise NotImplementedError

    def _repr_mimebundle_(
        self,
        include: Any = None,  # noqa: ARG002 - IPython passes them; one bundle fits all
        exclude: Any = None,  # noqa: ARG002 - hook/protocol signature
    ) -> Bundle:
        return self._bundle()
