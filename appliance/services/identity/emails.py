"""Account addresses: the one rule that turns an e-mail address someone typed into the login it names."""

from __future__ import annotations

import re

from appliance.errors import InvalidInput

# Deliberately permissive: one @, no spaces, a dot in the domain. Full validation is the mail server's.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    """``email`` trimmed and lower-cased, as accounts are stored and looked up; InvalidInput naming it if it
    is no address."""
    value = email.strip().lower()
    if not EMAIL.match(value) or len(value) > 320:
        raise InvalidInput(f"{email!r} is not a valid email address", details={"email": email})
    return value
