"""The console's 搜索 page in a real Chromium against a real `dinegraph serve` (the fixtures
of test_admin_console: a demo chain of its own). Customers search the mini-program for a
word the menu does not use and find nothing; head office reads the miss on the page, most
frequent first and a page at a time, makes it a synonym of 小龙虾 from its row, and the same
search then finds the crayfish by the synonym. A store manager has no such page, and the API
refuses them.

Screenshots go under test-output/admin/; every wait is on what the page shows.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from dinegraph.resolvers.ids import encode_id
from tests.e2e import test_admin_console as console
from tests.e2e.test_admin_console import (
    HQ,
    MANAGER_1,
    _gql,
    _hq_headers,
    _screenshot,
    _sign_in,
)
from tests.integration.test_client_documents import operation_document

# The console tests' fixtures: a demo chain and a server of this module's own, a browser.
console_settings = console.console_settings
server = console.server
browser = console.browser
page = console.page

CRAYFISH = "香辣小龙虾"
MISSED = "蝲蛄"  # what some call crayfish; no product, tag or synonym says it
SYNONYMS = "query { searchSynonyms { term synonyms } }"
MISSES = "query { searchMisses(first: 50) { edges { node { query count } } } }"
SET_SYNONYMS = """mutation($input: SetSearchSynonymsInput!) {
  setSearchSynonyms(input: $input) { synonym { term } errors { code field } } }"""
STORE = "query($id: ID!) { store(id: $id) { name } }"
MENU = """query($s: ID!) { menu(storeId: $s, channel: PICKUP) {
  categories { products { name skus { stock { soldOut } } } } } }"""


def _search(server: str, store_id: str, query: str) -> dict[str, Any]:
    """The mini-program's SearchProducts document, sent as it sends it."""
    body = httpx.post(
        f"{server}/graphql",
        json={
            "query": operation_document("SearchProducts"),
            "operationName": "SearchProducts",
            "variables": {"query": query, "storeId": store_id, "channel": "PICKUP"},
        },
        timeout=30,
    ).json()
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["searchProducts"]
    return found


def _store_selling_crayfish(server: str) -> str:
    """A demo store whose pickup menu has the crayfish on sale now (noon); read from the
    menu, not searched for, so that no store's search misses it before the test's own."""
    for number in range(1, 21):
        store_id = encode_id("Store", number)
        menu = _gql(server, MENU, {"s": store_id})["menu"]
        if any(
            p["name"] == CRAYFISH and any(not s["stock"]["soldOut"] for s in p["skus"])
            for c in menu["categories"]
            for p in c["products"]
        ):
            return store_id
    raise AssertionError(f"no demo store sells {CRAYFISH} for pickup")


def test_a_search_that_found_nothing_becomes_a_synonym_from_its_row(
    page: Page, server: str
) -> None:
    store_id = _store_selling_crayfish(server)
    store_name = _gql(server, STORE, {"id": store_id})["store"]["name"]
    # Three customers look for 蝲蛄 in vain, and twenty others for a word each: the misses
    # fill more than a page, 蝲蛄 first.
    for _ in range(3):
        assert _search(server, store_id, MISSED)["totalCount"] == 0
    others = [f"zq{uuid.uuid4().hex[:8]}" for _ in range(20)]
    for other in others:
        assert _search(server, store_id, other)["totalCount"] == 0, other

    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-search]").click()
    expect(page).to_have_url(f"{server}/admin/search")
    expect(page.locator("[data-test=synonym-table]")).to_contain_text("麻小")
    page.get_by_role("tab", name="无结果搜索").click()
    rows = page.locator("[data-test=miss-table] .el-table__row")
    expect(rows).to_have_count(20)
    first = rows.first
    expect(first.locator("[data-test=miss-query]")).to_have_text(MISSED)
    expect(first.locator("[data-test=miss-count]")).to_have_text("3")
    expect(first).to_contain_text(store_name)
    # The twenty-first miss is on the next page, and the way back returns to the first.
    page.locator("[data-test=miss-next]").click()
    expect(page.locator("[data-test=miss-page]")).to_have_text("2")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-test=miss-count]")).to_have_text("1")
    expect(page.locator("[data-test=miss-next]")).to_be_disabled()
    page.locator("[data-test=miss-previous]").click()
    expect(first.locator("[data-test=miss-query]")).to_have_text(MISSED)

    # From the row: the query is among the synonyms; without a term the refusal shows on
    # the term's field and nothing is saved.
    first.locator("[data-test=miss-to-synonym]").click()
    form = page.locator("[data-test=synonym-form]")
    words = form.locator("[data-test=synonym-words]")
    expect(words).to_contain_text(MISSED)
    form.locator("[data-test=synonym-submit]").click()
    term_error = form.locator(".el-form-item:has([data-test=synonym-term]) .el-form-item__error")
    expect(term_error).to_be_visible()
    expect(term_error).not_to_be_empty()
    hq = _hq_headers(server)
    assert MISSED not in str(_gql(server, SYNONYMS, {}, hq))

    # 小龙虾 exists: choosing it keeps its synonyms and adds the miss.
    form.locator("[data-test=synonym-term]").click()
    page.keyboard.type("小龙虾")
    page.keyboard.press("Enter")
    for word in ("麻小", "龙虾", "crayfish", MISSED):
        expect(words).to_contain_text(word)
    form.locator("[data-test=synonym-submit]").click()
    expect(form).to_be_hidden()
    expect(first.locator("[data-test=miss-covered]")).to_contain_text("小龙虾")
    _screenshot(page, "search")

    kept = {s["term"]: s["synonyms"] for s in _gql(server, SYNONYMS, {}, hq)["searchSynonyms"]}
    assert set(kept["小龙虾"]) == {"麻小", "龙虾", "crayfish", MISSED}
    found = _search(server, store_id, MISSED)
    assert found["totalCount"] >= 1
    by_name = {e["node"]["name"]: e["matchedBy"] for e in found["edges"]}
    assert by_name[CRAYFISH] == "SYNONYM", by_name

    # The synonyms tab finds the term by its new word, and removing a term forgets it.
    page.get_by_role("tab", name="同义词").click()
    page.locator("input[data-test=synonym-filter]").fill(MISSED)
    expect(page.locator("[data-test=synonym-table] .el-table__row")).to_have_count(1)
    expect(page.locator("[data-test=synonym-table]")).to_contain_text("小龙虾")
    page.locator("input[data-test=synonym-filter]").fill("")
    page.locator("[data-test=remove-肠粉]").click()
    page.locator(".el-message-box").get_by_role("button", name="确定").click()
    expect(page.locator("[data-test=term-肠粉]")).to_have_count(0)
    terms = [s["term"] for s in _gql(server, SYNONYMS, {}, hq)["searchSynonyms"]]
    assert "肠粉" not in terms and "小龙虾" in terms

    # And in English on the switch.
    page.locator("[data-test=language] label", has_text="EN").click()
    expect(page.locator(".page-title")).to_have_text("Search")
    expect(page.get_by_role("tab", name="Searches that found nothing")).to_be_visible()


def test_a_store_manager_has_no_search_page_and_the_api_refuses_them(
    page: Page, server: str
) -> None:
    _sign_in(page, server, MANAGER_1)
    expect(page.locator("[data-test=menu-staff]")).to_be_visible()
    expect(page.locator("[data-test=menu-search]")).to_have_count(0)
    page.goto(f"{server}/admin/search")
    expect(page).to_have_url(re.compile(r"/admin/stock$"))
    expect(page.locator("[data-test=who]")).to_contain_text(MANAGER_1[0])

    token = page.evaluate("JSON.parse(sessionStorage.getItem('dinegraph.session')).accessToken")
    mine = {"Authorization": f"Bearer {token}"}
    for document in (SYNONYMS, MISSES):
        refused = httpx.post(
            f"{server}/graphql", json={"query": document}, headers=mine, timeout=30
        ).json()
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
    before = _gql(server, SYNONYMS, {}, _hq_headers(server))["searchSynonyms"]
    answer = _gql(server, SET_SYNONYMS, {"input": {"term": "排骨", "synonyms": []}}, mine)
    assert answer["setSearchSynonyms"]["synonym"] is None
    assert [e["code"] for e in answer["setSearchSynonyms"]["errors"]] == ["FORBIDDEN"]
    assert _gql(server, SYNONYMS, {}, _hq_headers(server))["searchSynonyms"] == before
