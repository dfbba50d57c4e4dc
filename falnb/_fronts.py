"""How a front (blocking, or awaited) is made whose parameters are defined once, elsewhere.

``falnb.client``'s two clients and ``falnb.sweep``/``sweep_async`` each declare their
parameters in one private function and decorate the functions that carry a call out with it;
this module builds those decorated functions, so ``help()``, IDEs and ``inspect`` see the one
signature, and both kinds of front are made the same way.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["front"]


def front(
    run: Callable[..., Any], invoke: Callable[..., Any], parameters: Callable[..., Any]
) -> Any:
    """A function named and documented as ``run`` whose call is ``invoke(*args, **kwargs)``,
    awaited when ``run`` is a coroutine function, and whose signature is ``parameters``' with
    ``run``'s return annotation."""
    if inspect.iscoroutinefunction(run):

        async def front_async(*args: Any, **kwargs: Any) -> Any:
            return await invoke(*args, **kwargs)

        wrapper: Any = front_async
    else:

        def front_sync(*args: Any, **kwargs: Any) -> Any:
            return invoke(*args, **kwargs)

        wrapper = front_sync
    functools.update_wrapper(wrapper, run)
    returns = run.__annotations__.get("return", inspect.Signature.empty)
    wrapper.__signature__ = inspect.signature(parameters).replace(return_annotation=returns)
    return wrapper
