"""Cursors, global ids and languages: the API's small conventions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.i18n import Locale, locale_from_header, message_for
from dinegraph.resolvers.ids import decode_id, encode_id
from dinegraph.resolvers.pagination import decode_cursor, encode_cursor, page_of


@given(st.integers(min_value=0, max_value=10**9))
def test_cursors_round_trip(offset: int) -> None:
    assert decode_cursor(encode_cursor(offset)) == offset


@pytest.mark.parametrize("cursor", ["", "!!!", "b2Zmc2V0Oi0x", "aGVsbG8="])
def test_bad_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(DomainError) as err:
        decode_cursor(cursor)
    assert err.value.code is ErrorCode.INVALID_CURSOR


@given(st.lists(st.integers(), max_size=60), st.integers(0, 100))
def test_pages_walk_every_item_once(items: list[int], size: int) -> None:
    seen: list[int] = []
    after = None
    for _ in range(len(items) + 2):
        page = page_of(items, first=size, after=after, max_page_size=100)
        seen += [item for _, item in page.items]
        if not page.has_next_page or not page.items:
            break
        after = page.items[-1][0]
    assert seen == (items if size else [])


def test_page_size_over_the_cap_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        page_of([1, 2, 3], first=101, after=None, max_page_size=100)
    assert err.value.code is ErrorCode.PAGE_SIZE_TOO_LARGE


def test_ids_must_name_the_expected_type() -> None:
    assert decode_id(encode_id("Store", 12), "Store", ["id"]) == 12
    for bad in (encode_id("Product", 12), "not base64!", encode_id("Store", "x")):  # type: ignore[arg-type]
        with pytest.raises(DomainError) as err:
            decode_id(bad, "Store", ["storeId"])
        assert (err.value.code, err.value.field) == (ErrorCode.INVALID_ID, ["storeId"])


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, Locale.ZH),
        ("en", Locale.EN),
        ("en-US,en;q=0.9", Locale.EN),
        ("zh-CN,en;q=0.8", Locale.ZH),
        ("fr", Locale.ZH),
    ],
)
def test_language_comes_from_accept_language(header: str | None, locale: Locale) -> None:
    assert locale_from_header(header) is locale


def test_every_error_code_has_a_message_in_both_languages() -> None:
    for code in ErrorCode:
        zh = message_for(DomainError(code, max=1, min=0), Locale.ZH)
        en = message_for(DomainError(code, max=1, min=0), Locale.EN)
        assert zh != "请求无法完成" and en != "The request cannot be completed", code
