"""Text the databases can store: the one rule every text value from outside passes before it is kept.

PostgreSQL's text cannot hold the NUL character (U+0000: "invalid byte sequence for encoding UTF8: 0x00"),
and neither database can be given a lone surrogate (U+D800 to U+DFFF outside a pair: a JSON body may carry
one as an escape, and it has no UTF-8 encoding). Both are refused at the edge, on SQLite as on PostgreSQL,
so that the same request gets the same answer whichever database is behind the appliance.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """What in ``value`` no database can store (a sentence naming the character), or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "the NUL character (U+0000) cannot be stored"
    return f"a lone surrogate (U+{ord(char):04X}) is not a character and cannot be stored"
