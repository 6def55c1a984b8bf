"""Staff passwords: bcrypt hashes and the password policy.

The policy (NIST SP 800-63B's spirit): a length, no composition rules, and a refusal of what is easy to guess —
common passwords, words, names, keyboard walks, repeats, dates and the username in any of them, as estimated by
zxcvbn (its frequency lists and pattern matchers) at fewer than 10^8 guesses (`MIN_SCORE`), and of the
product's name or the username with only digits and symbols added, whatever zxcvbn makes of it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import bcrypt

BCRYPT_ROUNDS = 12  # ~0.3 s per hash/check on the reference machine
MIN_LENGTH = 12
MAX_BYTES = 72  # bcrypt ignores (bcrypt 5 refuses) anything longer
MIN_SCORE = 3  # zxcvbn: 3 = "safely unguessable", ≥ 10^8 guesses (a throttled online attack never gets there)
PRODUCT_WORDS = ("pitboss", "backoffice", "casino")  # guessed first by whoever targets this deployment


def password_problem(plain: str, username: str | None = None) -> str | None:
    """Why `plain` is not an acceptable staff password, or None when it is fine."""
    if not isinstance(plain, str) or not plain:
        return "the password is empty"
    if plain != plain.strip():
        return "the password must not start or end with spaces"
    if len(plain) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(plain.encode()) > MAX_BYTES:
        return f"the password must be at most {MAX_BYTES} bytes long"
    if username and plain.lower() == username.lower():
        return "the password must differ from the username"
    if len(set(plain)) < 5:
        return "the password has too few different characters"
    if _only_known_words(plain, username):
        return "the password is too easy to guess (the product's name or the username with digits or symbols)"
    return _guessable(plain, username)


def _only_known_words(plain: str, username: str | None) -> bool:
    """Whether the letters of `plain` are nothing but product words and the username's words: `Pitboss2026!!`
    (zxcvbn puts it just past 10^8 guesses, yet it is what whoever targets this deployment tries first)."""
    letters = re.sub(r"[^a-z]", "", plain.lower())
    words = [*PRODUCT_WORDS, *re.findall(r"[a-z]{3,}", (username or "").lower())]
    return bool(letters) and re.fullmatch("(?:" + "|".join(map(re.escape, words)) + ")+", letters) is not None


def _guessable(plain: str, username: str | None) -> str | None:
    from zxcvbn import zxcvbn  # its frequency lists take ~0.1 s to load: only when a password is set

    found = zxcvbn(plain, user_inputs=[*PRODUCT_WORDS, *([username] if username else [])])
    if found["score"] >= MIN_SCORE:
        return None
    why = found["feedback"]["warning"].rstrip(".")
    return "the password is too easy to guess" + (f" ({why[0].lower()}{why[1:]})" if why else "")


def hash_password(plain: str, rounds: int | None = None) -> str:
    """A bcrypt hash of `plain` (the `$2b$` form streamlit-authenticator recognises); cost BCRYPT_ROUNDS."""
    return bcrypt.hashpw(plain.encode(), bcrypt.gensalt(rounds or BCRYPT_ROUNDS)).decode()


def verify_password(plain: str, hashed: str | None) -> bool:
    """True when `plain` matches the bcrypt `hashed`; False for malformed input (never raises)."""
    if not plain or not hashed:
        return False
    try:
        return bcrypt.checkpw(plain.encode(), hashed.encode())
    except (ValueError, TypeError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("pitboss-timing-equaliser")


def burn_check(plain: str) -> None:
    """Spend the time of one password check (for unknown users, so timing does not reveal them)."""
    verify_password(plain or "x", _dummy_hash())
