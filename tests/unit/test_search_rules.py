"""Search's rules without I/O: reading Chinese text, matching, ranking, suggestions, input,
and the process's index following the stamps committed changes move."""

from __future__ import annotations

import pytest

from dinegraph.domain.catalog import Channel
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.search import (
    POPULARITY_POINTS,
    Hit,
    MatchKind,
    SearchDocument,
    SynonymSet,
    clean_query,
    clean_synonym_set,
    popularity_points,
    rank,
)
from dinegraph.domain.search_matching import build_index
from dinegraph.domain.search_text import initials, is_latin, normalise, pinyin, words
from dinegraph.domain.stamps import CATALOG, SEARCH, ReadsChanged, stock_stamp
from dinegraph.search_index import Catalogue, SearchIndexes

ALL = frozenset(Channel)


def _doc(
    product_id: int,
    name: str,
    *,
    tags: tuple[str, ...] = (),
    categories: tuple[str, ...] = ("粤式小炒",),
    description: str = "",
    channels: frozenset[Channel] = ALL,
) -> SearchDocument:
    return SearchDocument(product_id, name, description, tags, categories, ("大份",), channels)


CATALOGUE = [
    _doc(1, "糖醋排骨", tags=("预制菜",)),
    _doc(2, "鲜做糖醋排骨", tags=("招牌", "酸甜")),
    _doc(3, "香辣小龙虾", tags=("夜宵",)),
    _doc(4, "秘制糖醋汁", description="蘸排骨、炸物都合适"),
    _doc(5, "火焰醉鹅", channels=frozenset({Channel.DINE_IN})),
    _doc(6, "XO酱炒芥兰", categories=("时令素菜",)),
]
INDEX = build_index(CATALOGUE, [SynonymSet("小龙虾", ("麻小",))])


def _found(query: str, channel: Channel = Channel.DELIVERY) -> list[tuple[int, MatchKind]]:
    return [(h.product_id, h.matched_by) for h in INDEX.search(clean_query(query), channel)]


def test_text_is_read_in_one_normal_form() -> None:
    assert normalise("  ＴＡＮＧ　cu! ") == "tang cu"
    assert normalise("佛跳墙(位上)") == "佛跳墙 位上"
    assert pinyin("糖醋排骨") == "tangcupaigu"
    assert initials("糖醋排骨") == "tcpg"
    assert initials("XO酱炒芥兰") == "xojcjl"
    assert {"糖醋", "排骨"} <= words("糖醋排骨")
    assert is_latin("tang cu") and not is_latin("糖cu")


@pytest.mark.parametrize(
    ("query", "first", "kind"),
    [
        ("糖醋排骨", 1, MatchKind.NAME),
        ("鲜做", 2, MatchKind.NAME_PREFIX),
        ("tcpg", 1, MatchKind.INITIALS),
        ("tangcu", 1, MatchKind.PINYIN),
        ("tangcupaigo", 1, MatchKind.TYPO),
        ("糖醋拍骨", 1, MatchKind.PINYIN),
        ("麻小", 3, MatchKind.SYNONYM),
        ("夜宵", 3, MatchKind.TAG),
        ("时令", 6, MatchKind.CATEGORY),
        ("xo", 6, MatchKind.NAME_PREFIX),
    ],
)
def test_a_query_finds_its_product_first_and_says_how(
    query: str, first: int, kind: MatchKind
) -> None:
    assert _found(query)[0] == (first, kind)


def test_matches_rank_by_quality_a_description_last() -> None:
    assert [p for p, _ in _found("排骨")] == [1, 2, 4]
    assert _found("排骨")[-1] == (4, MatchKind.DESCRIPTION)


def test_a_product_not_on_the_channel_is_never_found() -> None:
    assert _found("醉鹅", Channel.DINE_IN) == [(5, MatchKind.NAME)]
    assert _found("醉鹅", Channel.DELIVERY) == []


def test_nonsense_and_short_latin_find_nothing_by_accident() -> None:
    assert _found("火星陨石") == []
    assert _found("qq") == []
    assert INDEX.search("", Channel.DELIVERY) == []


def test_typos_are_looked_for_only_when_nothing_matched_as_typed() -> None:
    kinds = {kind for _, kind in _found("tangcu")}
    assert MatchKind.TYPO not in kinds


def test_popularity_moves_equal_matches_never_a_worse_kind_above_a_better() -> None:
    hits = [
        Hit(1, 85.0, MatchKind.NAME),
        Hit(2, 85.0, MatchKind.NAME),
        Hit(4, 18.0, MatchKind.DESCRIPTION),
    ]
    assert [h.product_id for h in rank(hits, {})] == [1, 2, 4]
    assert [h.product_id for h in rank(hits, {2: 40, 1: 3})] == [2, 1, 4]
    assert [h.product_id for h in rank(hits, {4: 10_000})] == [1, 2, 4]
    assert popularity_points(10_000, 10_000) == POPULARITY_POINTS
    assert popularity_points(0, 10) == 0.0


def test_suggestions_begin_with_the_prefix_in_hanzi_pinyin_or_initials() -> None:
    assert INDEX.suggest("糖醋", 5)[0] == "糖醋排骨"
    assert "糖醋排骨" in INDEX.suggest("tang", 5)
    assert "糖醋排骨" in INDEX.suggest("tcp", 5)
    assert INDEX.suggest("ma", 5) == ["麻小"]
    assert INDEX.suggest("x", 5) == ["XO酱炒芥兰", "香辣小龙虾", "鲜做糖醋排骨", "小龙虾"]
    assert INDEX.suggest("x", 2) == ["XO酱炒芥兰", "香辣小龙虾"]
    assert INDEX.suggest("", 5) == []


def test_queries_are_cleaned_and_long_ones_refused() -> None:
    assert clean_query("  糖醋　排骨 ") == "糖醋 排骨"
    assert clean_query(" ,。 ") == ""
    for long in ("a" * 51, "糖" * 10_240):
        with pytest.raises(DomainError) as refused:
            clean_query(long)
        assert refused.value.code is ErrorCode.TOO_LONG and refused.value.field == ["query"]


def test_synonym_sets_are_normalised_without_repeats() -> None:
    entry = clean_synonym_set(" 小龙虾 ", ["麻小", "麻小", "小龙虾", "CrayFish "])
    assert entry == SynonymSet("小龙虾", ("麻小", "crayfish"))
    with pytest.raises(DomainError) as refused:
        clean_synonym_set("小龙虾", ["", "麻小"])
    assert refused.value.code is ErrorCode.REQUIRED and refused.value.field == ["synonyms", "0"]


async def test_the_index_is_built_again_only_when_its_stamps_move() -> None:
    loads = 0

    async def load() -> Catalogue:
        nonlocal loads
        loads += 1
        return CATALOGUE[: 6 - loads], []

    indexes = SearchIndexes()
    await indexes.current(load)
    await indexes.current(load)
    assert loads == 2  # not following the stamps yet: always afresh
    indexes.following = True
    first = await indexes.current(load)
    assert await indexes.current(load) is first
    indexes.heard(ReadsChanged((stock_stamp(1),)))  # stock moves no index
    assert await indexes.current(load) is first
    for stamp in (CATALOG, SEARCH):
        indexes.heard(ReadsChanged((stamp,)))
        rebuilt = await indexes.current(load)
        assert rebuilt is not first and len(rebuilt) == len(first) - 1
        first = rebuilt
    indexes.forget()
    assert await indexes.current(load) is not first
