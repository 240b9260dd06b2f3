"""The console's product editor and coupon issue jobs in a real Chromium against a real
`dinegraph serve` (the fixtures of test_admin_console: a demo chain of its own): a product
made in the editor with two SKUs on one channel is on the mini-program's menu; products
found by part of a name across categories (`products(query:)`); a coupon issued to a segment
is followed live on the page until the job is DONE and the members hold it.

Screenshots go under test-output/admin/; every wait is on what the page shows.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from dinegraph.settings import Settings
from tests.e2e import test_admin_console as console
from tests.e2e.test_admin_console import (
    HQ,
    STORE_1,
    _gql,
    _hq_headers,
    _member,
    _screenshot,
    _sign_in,
)
from tests.integration.test_client_documents import operation_document

# The console tests' fixtures: a demo chain and a server of this module's own, a browser.
console_settings = console.console_settings
server = console.server
browser = console.browser
page = console.page

CATEGORIES = "query { categories { id name parent { id } } }"
WALLET = """query { viewer { member {
  coupons(status: AVAILABLE, first: 50) { edges { node { title } } } } } }"""
NEW_TEMPLATE = """mutation($input: CreateCouponTemplateInput!) {
  createCouponTemplate(input: $input) { template { id title } errors { code field } } }"""


def _menu(server: str, channel: str) -> list[dict[str, Any]]:
    """The products of store 1's menu on a channel, as the mini-program asks for it."""
    body = httpx.post(
        f"{server}/graphql",
        json={
            "query": operation_document("StoreMenu"),
            "operationName": "StoreMenu",
            "variables": {"storeId": STORE_1, "channel": channel},
        },
        timeout=30,
    ).json()
    assert "errors" not in body, body
    return [p for c in body["data"]["menu"]["categories"] for p in c["products"]]


def _input(page: Page, test_id: str) -> Any:
    return page.locator(f"[data-test={test_id}]").locator("xpath=descendant-or-self::input").first


def test_a_product_made_in_the_editor_is_on_the_mini_program_menu(page: Page, server: str) -> None:
    top = next(c for c in _gql(server, CATEGORIES, {})["categories"] if c["parent"] is None)
    name = f"藤椒鸡饭 {uuid.uuid4().hex[:6]}"
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-products]").click()
    page.locator(f'[data-test="category-{top["name"]}"]').first.click()
    page.locator("[data-test=new-product]").click()
    form = page.locator("[data-test=product-form]")
    expect(form).to_be_visible()

    _input(page, "product-name").fill(name)
    # One channel: pickup only.
    page.locator("[data-test=channel-DELIVERY]").click()
    page.locator("[data-test=channel-DINE_IN]").click()
    page.locator("[data-test=add-image]").click()
    _input(page, "image-0").fill("http://img.example.com/chicken.jpg")
    for n, (size, yuan) in enumerate([("小份", "18.00"), ("大份", "26.00")]):
        if n:
            page.locator("[data-test=add-sku]").click()
        _input(page, f"sku-name-{n}").fill(size)
        _input(page, f"sku-price-{n}").fill(yuan)
        page.locator(f"[data-test=add-spec-{n}]").click()
        _input(page, f"spec-name-{n}-0").fill("份量")
        _input(page, f"spec-value-{n}-0").fill(size)

    # An image address that is not https: the server's refusal shows on that address.
    page.locator("[data-test=product-submit]").click()
    image_error = form.locator(".el-form-item:has(input[data-test=image-0]) .el-form-item__error")
    expect(image_error).to_be_visible()
    expect(image_error).to_contain_text("https://")
    _screenshot(page, "product-editor")
    assert name not in [p["name"] for p in _menu(server, "PICKUP")]

    _input(page, "image-0").fill("https://img.example.com/chicken.jpg")
    page.locator("[data-test=product-submit]").click()
    expect(page.locator(f'[data-test="product-{name}"]')).to_be_visible()
    expect(form).to_be_hidden()
    _screenshot(page, "products")

    (made,) = [p for p in _menu(server, "PICKUP") if p["name"] == name]
    assert made["imageUrls"] == ["https://img.example.com/chicken.jpg"]
    assert [(s["name"], s["price"]["fen"], s["specs"]) for s in made["skus"]] == [
        ("小份", 1800, [{"name": "份量", "value": "小份"}]),
        ("大份", 2600, [{"name": "份量", "value": "大份"}]),
    ]
    assert name not in [p["name"] for p in _menu(server, "DELIVERY")]

    # Edited: the large one costs more, and the menu says so at once.
    page.locator(f'[data-test="edit-product-{name}"]').click()
    expect(_input(page, "sku-name-1")).to_have_value("大份")
    _input(page, "sku-price-1").fill("28.00")
    page.locator("[data-test=product-submit]").click()
    expect(form).to_be_hidden()
    (edited,) = [p for p in _menu(server, "PICKUP") if p["name"] == name]
    assert [s["price"]["fen"] for s in edited["skus"]] == [1800, 2800]


def test_a_combo_opens_in_the_editor_with_its_parts(page: Page, server: str) -> None:
    hq = _hq_headers(server)
    found = _gql(server, "query { categories { id name products { name kind } } }", {}, hq)
    category, combo = next(
        (c["name"], p["name"])
        for c in found["categories"]
        for p in c["products"]
        if p["kind"] == "COMBO"
    )
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-products]").click()
    page.locator(f'[data-test="category-{category}"]').first.click()
    page.locator(f'[data-test="edit-product-{combo}"]').click()
    expect(_input(page, "product-name")).to_have_value(combo)
    part = page.locator("[data-test=part-0-0]")
    expect(part).to_be_visible()
    # The part is named as the menu names it, not by its id.
    expect(part.locator(".el-select__selected-item:not(.is-hidden)").first).not_to_have_text(
        re.compile(r"^U2t1")
    )
    _screenshot(page, "product-editor-combo")


def test_products_are_found_by_part_of_a_name_across_categories(page: Page, server: str) -> None:
    hq = _hq_headers(server)
    every = _gql(server, "query { categories { products { name } } }", {}, hq)
    expected = {
        p["name"] for c in every["categories"] for p in c["products"] if "糖醋" in p["name"]
    }
    assert len(expected) >= 2  # in more than one category on the demo chain
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-products]").click()
    lookup = _input(page, "product-lookup")
    lookup.fill("糖醋")
    lookup.press("Enter")
    expect(page.locator("[data-test=found-by]")).to_contain_text("糖醋")
    rows = page.locator("b[data-test^=product-]")
    expect(rows).to_have_count(len(expected))
    assert set(rows.all_inner_texts()) == expected
    _screenshot(page, "products-found")
    # A product found opens in the editor with its own category.
    ribs = sorted(expected)[0]
    page.locator(f'[data-test="edit-product-{ribs}"]').click()
    expect(_input(page, "product-name")).to_have_value(ribs)


def test_a_coupon_issued_to_a_segment_is_followed_until_done(
    page: Page, server: str, console_settings: Settings
) -> None:
    members = [_member(console_settings) for _ in range(3)]
    title = f"回馈券 {uuid.uuid4().hex[:6]}"
    made = _gql(
        server,
        NEW_TEMPLATE,
        {
            "input": {
                "title": title,
                "kind": "NO_THRESHOLD",
                "amountOffFen": 500,
                "validDays": 7,
                "totalQuantity": 100_000,
            }
        },
        _hq_headers(server),
    )["createCouponTemplate"]
    assert made["errors"] == [], made

    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-coupons]").click()
    page.locator(f'[data-test="issue-{title}"]').click()
    dialog = page.locator(".el-dialog:has([data-test=issue-submit])")
    expect(dialog).to_be_visible()
    # No segment chosen: the server's refusal shows on the form.
    page.locator("[data-test=issue-submit]").click()
    tier_error = dialog.locator(".el-form-item:has([data-test=issue-tier]) .el-form-item__error")
    expect(tier_error).to_be_visible()
    expect(tier_error).not_to_be_empty()

    page.locator("[data-test=issue-tier]").click()
    page.locator(".el-select-dropdown__item:visible", has_text="普通").first.click()
    # The job is followed on its feed (couponIssueJobUpdates), not asked for again and again.
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.post_data or "") if r.method == "POST" else None)
    page.locator("[data-test=issue-submit]").click()
    expect(page.locator("[data-test=job-status-0]")).to_have_attribute("data-status", "DONE")
    issued = int(page.locator("[data-test=job-issued-0]").inner_text())
    assert issued >= len(members)
    assert not [body for body in asked if "CouponIssueJobs" in body]
    _screenshot(page, "coupon-issue")
    # The page remembers the jobs it started when it is opened again.
    page.reload()
    expect(page.locator("[data-test=job-status-0]")).to_have_attribute("data-status", "DONE")
    expect(page.locator("[data-test=job-issued-0]")).to_have_text(str(issued))

    for member in members:
        wallet = _gql(server, WALLET, {}, member)["viewer"]["member"]["coupons"]["edges"]
        assert [e["node"]["title"] for e in wallet].count(title) == 1


def test_a_percent_coupon_reads_as_the_share_it_takes_off(page: Page, server: str) -> None:
    """percentOff 12 is 8.8折 in Chinese and 12% off in English, never a bare "12%"."""
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-coupons]").click()
    demo = page.locator(".el-table__row", has_text="预制菜88折")
    expect(demo).to_contain_text("8.8折")
    page.locator("[data-test=new-coupon]").click()
    page.locator("[data-test=coupon-kind]").click()
    page.locator(".el-select-dropdown__item:visible", has_text="折扣券").first.click()
    means = page.locator("[data-test=coupon-percent-means]")
    expect(means).to_have_text("= 9折")  # the form starts at 10% off, not 90
    percent = _input(page, "coupon-percent")
    percent.fill("12")
    percent.press("Tab")
    expect(means).to_have_text("= 8.8折")
    _screenshot(page, "coupon-form")
    page.locator(".el-drawer").get_by_role("button", name="取消").click()
    expect(means).to_be_hidden()
    page.locator("[data-test=language] label", has_text="EN").click()
    expect(demo).to_contain_text("12% off")
    page.locator("[data-test=new-coupon]").click()
    page.locator("[data-test=coupon-kind]").click()
    page.locator(".el-select-dropdown__item:visible", has_text="Percent off").first.click()
    expect(means).to_have_text("= 10% off")
