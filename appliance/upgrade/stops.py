"""Required stops: versions an upgrade must pass through, never jump over, and how versions compare.

A version becomes a required stop when what it does on the way cannot be done later by a newer one: a
migration that later versions squash away, data rewritten in the background before a contracting
migration may drop the old form. An upgrade from below a stop to above it is refused, naming the stop:
install the stop first, let it finish, then go on.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Versions an upgrade must not jump over, oldest first. None yet: 0.2.0 knows every migration since 0.1.0.
REQUIRED_STOPS: tuple[str, ...] = ()


def version_key(version: str) -> tuple[int, ...]:
    """`0.10.2` -> (0, 10, 2); a suffix (`0.3.0rc1`, `0.3.0.dev0`) keeps the numbers before it."""
    parts = []
    for piece in version.split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        parts.append(int(digits) if digits else 0)
        if len(digits) != len(piece):
            break
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def skipped_stops(old: str, new: str, stops: Sequence[str] = REQUIRED_STOPS) -> list[str]:
    """The required stops strictly between `old` and `new` (an upgrade may end on a stop)."""
    low, high = version_key(old), version_key(new)
    return [stop for stop in stops if low < version_key(stop) < high]


def problem(old: str, new: str, stops: Sequence[str] = REQUIRED_STOPS) -> str | None:
    """Why going from `old` to `new` is refused, or None."""
    if version_key(new) < version_key(old):
        return f"{new} is older than {old}, the version installed: a downgrade is a restore of a backup"
    skipped = skipped_stops(old, new, stops)
    if skipped:
        return f"{old} -> {new} would skip the required stop {skipped[0]}: upgrade to {skipped[0]} first" + (
            f" (then {', '.join(skipped[1:])})" if len(skipped) > 1 else ""
        )
    return None
