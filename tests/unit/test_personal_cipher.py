"""The cipher of personal data: round trips, key ids, tampering, columns, rotation; the keys'
settings."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from dinegraph.db.personal import PersonalCipher, PersonalDataError, key_id, normalise_phone
from dinegraph.db.tables import members, orders
from dinegraph.integrations.development import masked_phone
from dinegraph.settings import ConfigurationError, Mode, Settings

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
INDEX = b"i" * 32


def cipher(*keys: tuple[str, bytes]) -> PersonalCipher:
    return PersonalCipher(keys or (("k1", K1),), INDEX)


def test_a_value_round_trips_and_is_stored_under_its_key_id() -> None:
    stored = cipher().encrypt("深圳市福田区福华三路88号", "orders.address_detail")
    assert stored.startswith("v1:k1:") and "福华" not in stored
    assert cipher().decrypt(stored, "orders.address_detail") == "深圳市福田区福华三路88号"
    assert key_id(stored) == "k1"


def test_the_same_value_encrypts_differently_each_time() -> None:
    assert cipher().encrypt("13800138000", "members.phone") != cipher().encrypt(
        "13800138000", "members.phone"
    )


def test_a_key_id_the_keys_do_not_hold_is_named_in_the_error() -> None:
    stored = cipher(("k9", K1)).encrypt("13800138000", "members.phone")
    with pytest.raises(PersonalDataError, match="'k9'"):
        cipher().decrypt(stored, "members.phone")


def test_a_tampered_value_does_not_decrypt() -> None:
    stored = cipher().encrypt("13800138000", "members.phone")
    prefix, body = stored.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1
    altered = f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    with pytest.raises(PersonalDataError, match="does not authenticate"):
        cipher().decrypt(altered, "members.phone")
    with pytest.raises(PersonalDataError, match="does not authenticate"):
        cipher().decrypt(stored[:-4], "members.phone")  # cut short
    with pytest.raises(PersonalDataError, match="not an encrypted value"):
        cipher().decrypt("13800138000", "members.phone")  # never encrypted


def test_a_value_copied_to_another_column_does_not_decrypt() -> None:
    stored = cipher().encrypt("13800138000", "members.phone")
    with pytest.raises(PersonalDataError, match=r"riders\.phone"):
        cipher().decrypt(stored, "riders.phone")


def test_after_rotation_the_new_key_encrypts_and_both_decrypt() -> None:
    old = cipher().encrypt("张三", "orders.contact_name")
    rotated = cipher(("k2", K2), ("k1", K1))
    assert rotated.decrypt(old, "orders.contact_name") == "张三"
    assert not rotated.is_current(old)
    new = rotated.encrypt("张三", "orders.contact_name")
    assert key_id(new) == "k2" and rotated.is_current(new)
    with pytest.raises(PersonalDataError):
        cipher().decrypt(new, "orders.contact_name")


def test_the_blind_index_is_keyed_and_normalises_the_number() -> None:
    index = cipher().blind_index("13800138000")
    assert len(index) == 64 and "13800138000" not in index
    assert cipher().blind_index("+86 138 0013 8000") == index
    assert normalise_phone("+86-138-0013-8000") == "13800138000"
    assert PersonalCipher((("k1", K1),), b"j" * 32).blind_index("13800138000") != index


def test_logs_show_only_the_last_four_digits() -> None:
    assert masked_phone("13812345678") == "*******5678"


KEY = base64.b64encode(K1).decode()


def test_production_refuses_to_start_without_the_personal_data_keys() -> None:
    production = Settings(mode=Mode.PRODUCTION, secret_key=SecretStr("s" * 40))
    with pytest.raises(ConfigurationError, match="DINEGRAPH_DATA_KEYS and DINEGRAPH_BLIND"):
        production.check_servable()
    only_data = production.model_copy(update={"data_keys": SecretStr(f"k1:{KEY}")})
    with pytest.raises(ConfigurationError, match="DINEGRAPH_BLIND_INDEX_KEY"):
        only_data.check_servable()
    both = only_data.model_copy(update={"blind_index_key": SecretStr(KEY)})
    both.check_servable()
    assert both.personal_data_keys == (("k1", K1),)


def test_development_derives_its_keys_from_the_secret_key() -> None:
    one = Settings(secret_key=SecretStr("a" * 40))
    other = Settings(secret_key=SecretStr("b" * 40))
    assert one.personal_data_keys != other.personal_data_keys
    assert one.personal_data_keys[0][0].startswith("dev")
    assert len(one.personal_index_key) == 32 and one.personal_index_key != other.personal_index_key


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        (" , ", "empty"),
        (f"k1:{KEY},k1:{KEY}", "not a new key id"),
        (f"bad id:{KEY}", "not a new key id"),
        ("k1:c2hvcnQ=", "32 bytes"),
        ("k1:not base64!", "32 bytes"),
    ],
)
def test_malformed_data_keys_are_refused_with_the_fix(keys: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        _ = Settings(data_keys=SecretStr(keys)).personal_data_keys


def test_the_first_data_key_encrypts() -> None:
    two = Settings(data_keys=SecretStr(f"new:{base64.b64encode(K2).decode()}, old:{KEY}"))
    assert [kid for kid, _ in two.personal_data_keys] == ["new", "old"]


def test_sql_cannot_compare_or_sort_encrypted_columns_only_ask_if_null() -> None:
    assert str(members.c.phone.is_(None)) == "members.phone IS NULL"
    with pytest.raises(TypeError, match="encrypted column"):
        _ = members.c.phone == "13800138000"  # never equal: find it by members.phone_index
    with pytest.raises(TypeError, match="encrypted column"):
        _ = orders.c.contact_name.desc()
    assert "phone_index =" in str(members.c.phone_index == "13800138000")
