"""The rules a new password must pass, each refusal naming every rule it broke."""

from __future__ import annotations

from appliance.errors import InvalidInput

#: The default of ``security.password_min_length``.
DEFAULT_MIN_LENGTH = 12
#: Longer passwords are refused: hashing megabytes per login attempt would be a denial of service.
MAX_LENGTH = 256
#: From this length a password is taken as a passphrase, and the character-class rule no longer applies
#: (NIST SP 800-63B: length beats composition; "correct horse battery staple" is strong).
PASSPHRASE_LENGTH = 20
#: Fewest distinct characters: refuses "aaaaaaaaaaaa" and "abababababab" whatever their length.
MIN_DISTINCT = 5
#: The email's local part is only looked for when at least this long ("al" would forbid too much).
MIN_LOCAL_PART = 3

#: The most common passwords of public breach corpora. Compared lowercased, and also with trailing digits
#: and symbols removed ("Password123!" is "password"), so the short ones still catch their longer variants.
COMMON_PASSWORDS = frozenset(
    """
    123456 123456789 12345678 1234567890 12345 1234567 password qwerty abc123 111111 123123 000000
    1q2w3e4r qwerty123 1qaz2wsx 1q2w3e4r5t qwertyuiop 654321 555555 666666 777777 888888 987654321
    123321 121212 112233 123qwe 1234qwer zaq12wsx qazwsx qwe123 asdfgh asdfghjkl zxcvbnm zxcvbn
    password1 password12 password123 passw0rd p@ssw0rd p@ssword pass1234 letmein welcome welcome1
    iloveyou princess sunshine football baseball basketball soccer hockey dragon monkey master
    shadow superman batman trustno1 michael jennifer jordan23 hunter2 freedom whatever starwars
    charlie donald admin administrator root toor changeme default secret login access qwerty1
    ninja mustang hello hello123 flower computer internet summer winter spring autumn
    lovely loveme killer cheese pokemon naruto chocolate butterfly liverpool chelsea arsenal
    aa123456 abcd1234 abcdef abcdefg abcdefgh 1234abcd a1b2c3d4 qweasdzxc 147258369 159753
    123654 789456123 11111111 00000000 12341234 87654321 88888888 99999999 iloveyou1 forever
    letmein1 welcome123 changeme123 password1234 qwerty12345 correcthorsebatterystaple
    """.split()  # noqa: SIM905  (a word list reads better as text than as 130 quoted strings)
)


def _stripped(word: str) -> str:
    """The word without the digits and symbols people tack on at its end."""
    return word.rstrip("0123456789!@#$%^&*()-_=+.?,;:~")


def _classes(password: str) -> int:
    lower = any(c.islower() for c in password)
    upper = any(c.isupper() for c in password)
    digit = any(c.isdigit() for c in password)
    other = any(not (c.islower() or c.isupper() or c.isdigit()) for c in password)
    return lower + upper + digit + other


def password_problems(
    password: str, email: str | None = None, *, min_length: int = DEFAULT_MIN_LENGTH
) -> list[tuple[str, str]]:
    """Every rule ``password`` breaks, as (code, reason for a person); empty when it is acceptable."""
    problems: list[tuple[str, str]] = []
    if len(password) < min_length:
        problems.append(("TOO_SHORT", f"use at least {min_length} characters (this one has {len(password)})"))
    if len(password) > MAX_LENGTH:
        problems.append(("TOO_LONG", f"use at most {MAX_LENGTH} characters"))
        return problems  # the other rules are not worth running on a huge input
    if len(password) < PASSPHRASE_LENGTH and _classes(password) < 2:
        problems.append(
            (
                "ONE_CHARACTER_CLASS",
                "mix at least two kinds of characters (lowercase, uppercase, digits, symbols), "
                f"or use a passphrase of {PASSPHRASE_LENGTH} characters or more",
            )
        )
    if len(set(password)) < MIN_DISTINCT:
        problems.append(("TOO_REPETITIVE", f"use at least {MIN_DISTINCT} different characters"))
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or _stripped(lowered) in COMMON_PASSWORDS:
        problems.append(("COMMON_PASSWORD", "this password is among the most commonly used ones"))
    if email:
        local = email.split("@", 1)[0].split("+", 1)[0].strip().lower()
        if len(local) >= MIN_LOCAL_PART and local in lowered:
            problems.append(("CONTAINS_EMAIL", "do not use your email address or its name in the password"))
    return problems


def check_password(password: str, email: str | None = None, *, min_length: int = DEFAULT_MIN_LENGTH) -> None:
    """Refuse a weak password with `InvalidInput` (code WEAK_PASSWORD) naming every reason.

    ``details`` has ``reasons`` (sentences for a person) and ``rules`` (stable codes, in the same order).
    The password itself never appears in the error.
    """
    problems = password_problems(password, email, min_length=min_length)
    if problems:
        reasons = [reason for _, reason in problems]
        raise InvalidInput(
            "the password is too weak: " + "; ".join(reasons),
            code="WEAK_PASSWORD",
            details={"reasons": reasons, "rules": [code for code, _ in problems]},
        )
