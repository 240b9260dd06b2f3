"""Personal data at rest: AES-GCM per value, and a keyed blind index to find phones.

A column typed ``Personal("table.column")`` holds ``v1:<key id>:<base64url(nonce |
ciphertext | tag)>``: it is encrypted when bound and decrypted when read, so repositories,
read queries and the domain see plain values and no statement is added. The column's name
is the associated data, so a value copied into another column does not decrypt. A column
typed ``BlindIndex()`` stores HMAC-SHA256 of the normalised phone bound to it (equality
lookups and the unique constraint on members work on it; the phone cannot be read back).

The keys belong to an engine (``attach``, called by ``db.engine.create_engine`` with the
settings' keys), so two engines with other keys in one process never mix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import weakref
from collections.abc import Sequence
from datetime import date
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators

FORMAT = "v1"
_NONCE_BYTES = 12
_NOT_DIGITS = re.compile(r"\D")


class PersonalDataError(RuntimeError):
    """A stored value that cannot be decrypted with the keys at hand (the message says why)."""


class PersonalCipher:
    """The data keys (the first encrypts, all decrypt) and the blind index key."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], index_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one data key")
        self.current = keys[0][0]
        self._aead = {kid: AESGCM(key) for kid, key in keys}
        self._index_key = index_key

    def encrypt(self, plain: str, column: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self.current].encrypt(nonce, plain.encode(), column.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
        return f"{FORMAT}:{self.current}:{body}"

    def decrypt(self, stored: str, column: str) -> str:
        kid = key_id(stored)
        aead = self._aead.get(kid)
        if aead is None:
            raise PersonalDataError(
                f"{column}: a value is under data key {kid!r}, which DINEGRAPH_DATA_KEYS "
                "does not hold (keep old keys listed until `dinegraph rotate-data-keys` ran)"
            )
        body = stored.split(":", 2)[2]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], column.encode())
        except (ValueError, InvalidTag):
            raise PersonalDataError(
                f"{column}: a value does not authenticate (altered, or not of this column)"
            ) from None
        return plain.decode()

    def is_current(self, stored: str) -> bool:
        return key_id(stored) == self.current

    def blind_index(self, phone: str) -> str:
        digest = hmac.new(self._index_key, normalise_phone(phone).encode(), hashlib.sha256)
        return digest.hexdigest()


def key_id(stored: str) -> str:
    """The id of the key a stored value is under."""
    version, _, rest = stored.partition(":")
    kid, sep, _ = rest.partition(":")
    if version != FORMAT or not sep:
        raise PersonalDataError("not an encrypted value (expected v1:<key id>:<data>)")
    return kid


def normalise_phone(phone: str) -> str:
    """Digits only, without China's country code: one number, one index."""
    digits = _NOT_DIGITS.sub("", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


_ciphers: weakref.WeakKeyDictionary[Dialect, PersonalCipher] = weakref.WeakKeyDictionary()


def attach(dialect: Dialect, cipher: PersonalCipher) -> None:
    """The keys of the engine this dialect belongs to."""
    _ciphers[dialect] = cipher


def cipher_of(dialect: Dialect) -> PersonalCipher:
    cipher = _ciphers.get(dialect)
    if cipher is None:
        raise PersonalDataError(
            "this engine has no data keys: make engines with dinegraph.db.engine.create_engine"
        )
    return cipher


class EventSealer:
    """Seals an event's personal fields for a broker (``events.codec.Sealer``) with the
    engine's data keys. A value that was not sealed (a process from before sealing, still
    publishing during a rolling upgrade) is opened as it is."""

    def __init__(self, cipher: PersonalCipher) -> None:
        self._cipher = cipher

    def seal(self, plain: str, field: str) -> str:
        return self._cipher.encrypt(plain, field)

    def open(self, sealed: str, field: str) -> str:
        if not sealed.startswith(f"{FORMAT}:"):
            return sealed
        return self._cipher.decrypt(sealed, field)


def event_sealer(engine: Any) -> EventSealer:
    """The sealer of an engine made by ``dinegraph.db.engine.create_engine``."""
    return EventSealer(cipher_of(engine.sync_engine.dialect))


T = TypeVar("T")


class Encrypted(sa.TypeDecorator[T], Generic[T]):
    """A value encrypted at rest under the engine's current data key, as text."""

    impl = sa.Text
    cache_ok = True

    class Comparator(sa.TypeDecorator.Comparator[Any]):
        """Only IS NULL: each encryption differs, so SQL cannot compare or sort these values
        (a phone is found through its blind index instead)."""

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op not in (operators.is_, operators.is_not):
                raise TypeError(f"an encrypted column cannot be used with {op.__name__} in SQL")
            return super().operate(op, *other, **kwargs)

    comparator_factory = Comparator

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column  # associated data: "table.column"

    def process_bind_param(self, value: T | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return cipher_of(dialect).encrypt(self.to_text(value), self.column)

    def process_result_value(self, value: Any, dialect: Dialect) -> T | None:
        if value is None:
            return None
        return self.from_text(cipher_of(dialect).decrypt(value, self.column))

    def to_text(self, value: T) -> str:
        raise NotImplementedError

    def from_text(self, text: str) -> T:
        raise NotImplementedError


class Personal(Encrypted[str]):
    """Text (a phone, a name, an address) encrypted at rest."""

    cache_ok = True  # SQLAlchemy asks each class

    def to_text(self, value: str) -> str:
        return value

    def from_text(self, text: str) -> str:
        return text


class PersonalFloat(Encrypted[float]):
    """A coordinate of someone's address, encrypted at rest."""

    cache_ok = True  # SQLAlchemy asks each class

    def to_text(self, value: float) -> str:
        return repr(float(value))

    def from_text(self, text: str) -> float:
        return float(text)


class PersonalJson(Encrypted[Any]):
    """A JSON document that may hold personal data (a call out's payload), encrypted."""

    cache_ok = True  # SQLAlchemy asks each class

    def to_text(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def from_text(self, text: str) -> Any:
        return json.loads(text)


class PersonalDate(Encrypted[date]):
    """A birthday, encrypted at rest."""

    cache_ok = True  # SQLAlchemy asks each class

    def to_text(self, value: date) -> str:
        return value.isoformat()

    def from_text(self, text: str) -> date:
        return date.fromisoformat(text)


class BlindIndex(sa.TypeDecorator[str]):
    """A phone's keyed HMAC: bind the phone itself (in values and in comparisons)."""

    impl = sa.String(64)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else cipher_of(dialect).blind_index(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)
