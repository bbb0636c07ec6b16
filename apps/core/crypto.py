"""Encryption at rest for secrets kept in the database (endpoint API keys, connector tokens)."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken:
        # Raised when the key was rotated away; never echo the ciphertext.
        raise ValueError("stored secret cannot be decrypted with the configured keys") from None


class EncryptedSecret:
    """What an EncryptedTextField holds in Python: the plaintext is only read on purpose.

    str() and repr() are masked so a secret cannot leak through a template, a log line or
    an error page by accident; call `.reveal()` where it is really needed (the HTTP client).
    """

    __slots__ = ("_ciphertext",)

    def __init__(self, ciphertext: str):
        self._ciphertext = ciphertext

    @classmethod
    def from_plaintext(cls, plaintext: str) -> "EncryptedSecret":
        return cls(encrypt(plaintext))

    def reveal(self) -> str:
        return decrypt(self._ciphertext)

    @property
    def ciphertext(self) -> str:
        return self._ciphertext

    def __str__(self) -> str:
        return "********"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return bool(self._ciphertext)

    def __eq__(self, other) -> bool:
        return isinstance(other, EncryptedSecret) and other._ciphertext == self._ciphertext

    def __hash__(self) -> int:
        return hash(self._ciphertext)


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext. Assign a plain str or an EncryptedSecret; reads give EncryptedSecret."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return None
        return EncryptedSecret(value)

    def to_python(self, value):
        if value in (None, "") or isinstance(value, EncryptedSecret):
            return value or None
        return EncryptedSecret.from_plaintext(value)

    def get_prep_value(self, value):
        if value in (None, ""):
            return ""
        if isinstance(value, EncryptedSecret):
            return value.ciphertext
        return encrypt(str(value))
