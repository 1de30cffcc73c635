"""When the console's garbage collector may run.

At start, everything loaded so far (the modules, Textual's and Rich's tables: about 200k objects) is moved
out of the collector's reach, so that its full passes walk only what the console made since. While a big
table's rows stream in (thousands of objects a page), it does not run at all: a pass in the middle of a
10,000-row load held it up by 0.1 s. It runs again once the rows are in, when the operator is reading them."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_holds = 0


def freeze_start_up() -> None:
    """Leave what exists now (the console as loaded) out of every later collection. Called once, before
    the app starts."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """No automatic collection inside the block (loads may overlap: the last one out turns it back on)."""
    global _holds  # noqa: PLW0603 - one count for the whole process, as the collector is
    _holds += 1
    if _holds == 1:
        gc.disable()
    try:
        yield
    finally:
        _holds -= 1
        if _holds == 0:
            gc.enable()
