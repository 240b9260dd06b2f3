"""The stock board's own writes in a real Chromium against a real `dinegraph serve` (the
fixtures of test_admin_console: a demo chain of its own): restock, adjust with a reason and
沽清 from the board, each shown at once and seen by the mini-program's menu. The page is
opened as over plain http on a store's LAN address, where browsers have no
crypto.randomUUID: its idempotency keys come from crypto.getRandomValues.

Every wait is on what the page shows.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e import test_admin_console as console
from tests.e2e.test_admin_console import MANAGER_1, _screenshot, _sign_in, _skus

# The console tests' fixtures: a demo chain and a server of this module's own, a browser.
console_settings = console.console_settings
server = console.server
browser = console.browser
page = console.page


def test_restock_adjust_and_sold_out_from_the_board_without_secure_context_ids(
    page: Page, server: str
) -> None:
    page.add_init_script("delete Crypto.prototype.randomUUID")
    tracked = next(s for s in _skus(server, "RETAIL") if (s["stock"]["available"] or 0) >= 2)
    dish = next(
        s
        for s in _skus(server, "PICKUP")
        if s["stock"]["available"] is None and not s["stock"]["soldOut"]
    )
    before = tracked["stock"]["available"]
    _sign_in(page, server, MANAGER_1)
    assert page.evaluate("typeof crypto.randomUUID") == "undefined"
    level = page.locator(f'[data-test="available-{tracked["id"]}"]')
    expect(level).to_have_text(str(before))

    page.locator(f'[data-test="restock-{tracked["id"]}"]').click()
    quantity = page.locator("[data-test=restock-quantity] input")
    quantity.fill("5")
    quantity.press("Tab")
    page.locator("[data-test=stock-submit]").click()
    expect(level).to_have_text(str(before + 5))

    # An adjustment needs its reason: refused on the field, then made with one.
    page.locator(f'[data-test="adjust-{tracked["id"]}"]').click()
    delta = page.locator("[data-test=adjust-delta] input")
    delta.fill("-2")
    delta.press("Tab")
    page.locator("[data-test=stock-submit]").click()
    dialog = page.locator(".el-dialog:has([data-test=stock-submit])")
    expect(dialog.locator(".el-form-item.is-error")).to_contain_text("原因")
    expect(level).to_have_text(str(before + 5))
    page.locator("input[data-test=stock-reason]").fill("报损:包装破损")
    page.locator("[data-test=stock-submit]").click()
    expect(level).to_have_text(str(before + 3))

    # 沽清 a dish made to order: marked on the board and sold out on the menu.
    page.locator("input[data-test=stock-search]").fill(dish["product"])
    page.locator(f'[data-test="soldout-switch-{dish["id"]}"]').click()
    expect(page.locator(f'[data-test="soldout-{dish["id"]}"]')).to_be_visible()
    _screenshot(page, "stock-writes")
    (menu,) = [s for s in _skus(server, "PICKUP") if s["id"] == dish["id"]]
    assert menu["stock"]["soldOut"] is True
    (shelf,) = [s for s in _skus(server, "RETAIL") if s["id"] == tracked["id"]]
    assert shelf["stock"]["available"] == before + 3
