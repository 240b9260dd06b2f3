"""The console's 员工与密钥 page in a real Chromium against a real `dinegraph serve` (the
fixtures of test_admin_console: a demo chain of its own): a partner key made in the console
is shown once, works, and stops working when revoked from its row; head office changes an
account's stores and disables and enables it; anyone signed in changes their own password
from the header, and turns on two-step sign-in there.

Screenshots go under test-output/admin/; every wait is on what the page or the API shows.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
from playwright.sync_api import Browser, Page, expect

from dinegraph.settings import Settings
from tests.e2e import test_admin_console as console
from tests.e2e.conftest import PATIENCE_SECONDS, ServerClock
from tests.e2e.test_admin_console import (
    HQ,
    RECORD_SALE,
    STORE_1,
    STORE_2,
    _gql,
    _hq_headers,
    _member,
    _paid_order,
    _screenshot,
    _sign_in,
    _skus,
)

# The console tests' fixtures: a demo chain and a server of this module's own, a browser.
console_settings = console.console_settings
server = console.server
browser = console.browser
page = console.page

STORE_NAMES = "query($a: ID!, $b: ID!) { a: store(id: $a) { name } b: store(id: $b) { name } }"
LOGIN = """mutation($input: StaffLoginInput!) {
  staffLogin(input: $input) { accessToken expiresAt errors { code } } }"""
CHANGE = """mutation($input: ChangeMyPasswordInput!) {
  changeMyPassword(input: $input) { errors { code } } }"""


def _until(answered: Callable[[], bool]) -> None:
    """Ask again until the server answers as expected (a change reaching its caches)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not answered():
        assert time.monotonic() < deadline, "the server did not answer as expected in time"
        time.sleep(0.2)


def _login(server: str, username: str, password: str) -> dict[str, Any]:
    signed = _gql(server, LOGIN, {"input": {"username": username, "password": password}})
    answer: dict[str, Any] = signed["staffLogin"]
    return answer


def _manager(server: str) -> tuple[str, str]:
    """A store manager of store 1 that has chosen its own password (it must change none)."""
    username = f"mgr{uuid.uuid4().hex[:6]}"
    first, own = "first-password-2026", "own-password-2026"
    made = _gql(
        server,
        """mutation($input: CreateStaffAccountInput!) {
            createStaffAccount(input: $input) { errors { code message } } }""",
        {
            "input": {
                "username": username,
                "displayName": "店长",
                "role": "STORE_MANAGER",
                "storeIds": [STORE_1],
                "password": first,
            }
        },
        _hq_headers(server),
    )
    assert made["createStaffAccount"]["errors"] == []
    token = _login(server, username, first)["accessToken"]
    changed = _gql(
        server,
        CHANGE,
        {"input": {"currentPassword": first, "newPassword": own}},
        {"Authorization": f"Bearer {token}"},
    )
    assert changed["changeMyPassword"]["errors"] == []
    return username, own


def _sale(server: str, key: str) -> httpx.Response:
    sku = next(s for s in _skus(server, "RETAIL") if (s["stock"]["available"] or 0) >= 1)
    return httpx.post(
        f"{server}/graphql",
        json={
            "query": RECORD_SALE,
            "variables": {
                "input": {
                    "storeId": STORE_1,
                    "source": "POS",
                    "externalOrderId": f"pos-{uuid.uuid4().hex}",
                    "lines": [{"skuId": sku["id"], "quantity": 1}],
                }
            },
        },
        headers={"X-Api-Key": key},
        timeout=30,
    )


def test_a_partner_key_made_in_the_console_is_shown_once_and_revoked(
    page: Page, server: str
) -> None:
    name = f"收银 {uuid.uuid4().hex[:6]}"
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-staff]").click()
    page.get_by_role("tab", name="合作方密钥").click()
    page.locator("[data-test=new-key]").click()
    page.locator("input[data-test=key-name]").fill(name)
    page.locator("[data-test=key-submit]").click()
    shown = page.locator("input[data-test=shown-key]")
    expect(shown).to_have_value(re.compile(r"^\S{20,}$"))
    key = shown.input_value()
    _screenshot(page, "api-key")
    page.locator("[data-test=key-done]").click()
    expect(shown).to_have_count(0)  # shown once: the dialog forgets it
    expect(page.locator(f'[data-test="key-{name}"]')).to_be_visible()
    row = page.locator("[data-test=key-table] .el-table__row", has_text=name)
    expect(row).to_contain_text("stock:write")
    expect(row).to_contain_text("全部门店")

    sold = _sale(server, key).json()
    assert sold["data"]["recordSale"]["errors"] == [], sold

    page.locator(f'[data-test="revoke-{name}"]').click()
    page.locator(".el-message-box").get_by_role("button", name="确定").click()
    expect(page.locator(f'[data-test="revoked-{name}"]')).to_be_visible()
    _until(lambda: _sale(server, key).status_code == 401)


def test_head_office_changes_an_accounts_stores_then_disables_and_enables_it(
    page: Page, browser: Browser, server: str
) -> None:
    username, password = _manager(server)
    names = _gql(server, STORE_NAMES, {"a": STORE_1, "b": STORE_2})
    first, second = names["a"]["name"], names["b"]["name"]
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-staff]").click()
    row = page.locator("[data-test=staff-table] .el-table__row", has_text=username)
    expect(row).to_contain_text(first)

    page.locator(f'[data-test="edit-{username}"]').click()
    editor = page.locator(".el-dialog:has([data-test=account-save])")
    expect(editor).to_be_visible()
    page.locator("input[data-test=account-name]").fill("两店店长")
    page.locator("[data-test=account-stores]").click()
    page.locator(".el-select-dropdown__item:visible", has_text=second).first.click()
    editor.locator(".el-dialog__title").click()  # closes the store list, not the dialog
    page.locator("[data-test=account-save]").click()
    expect(editor).to_be_hidden()
    expect(row).to_contain_text(second)
    expect(row).to_contain_text("两店店长")
    _screenshot(page, "staff-edited")

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        manager = context.new_page()
        _sign_in(manager, server, (username, password))
        manager.locator("[data-test=store-switcher]").click()
        expect(manager.locator(".el-select-dropdown__item:visible")).to_have_count(2)
        token = manager.evaluate(
            "JSON.parse(sessionStorage.getItem('dinegraph.session')).accessToken"
        )
        mine = {"Authorization": f"Bearer {token}"}
        stock = "query($s: ID!) { storeStock(storeId: $s) { version } }"
        assert "storeStock" in _gql(server, stock, {"s": STORE_2}, mine)

        # Disabled: its token stops working and it cannot sign in.
        page.locator(f'[data-test="disable-{username}"]').click()
        page.locator(".el-message-box").get_by_role("button", name="确定").click()
        expect(page.locator(f'[data-test="disabled-{username}"]')).to_be_visible()
        _until(
            lambda: (
                httpx.post(
                    f"{server}/graphql",
                    json={"query": stock, "variables": {"s": STORE_1}},
                    headers=mine,
                    timeout=30,
                ).status_code
                == 401
            )
        )
        assert _login(server, username, password)["errors"] == [{"code": "ACCOUNT_DISABLED"}]

        # Enabled again: it signs in.
        page.locator(f'[data-test="enable-{username}"]').click()
        expect(page.locator(f'[data-test="disabled-{username}"]')).to_have_count(0)
        assert _login(server, username, password)["errors"] == []
    finally:
        context.close()


def test_a_signed_in_account_changes_its_own_password_from_the_header(
    page: Page, server: str
) -> None:
    username, password = _manager(server)
    _sign_in(page, server, (username, password))
    page.locator("[data-test=menu-orders]").click()
    expect(page).to_have_url(f"{server}/admin/orders")
    page.locator("[data-test=own-password]").click()
    expect(page).to_have_url(re.compile(r"/admin/change-password\?"))
    expect(page.locator("[data-test=must-change]")).to_have_count(0)
    # Going back changes nothing.
    page.locator("[data-test=back]").click()
    expect(page).to_have_url(f"{server}/admin/orders")

    page.locator("[data-test=own-password]").click()
    page.locator("input[data-test=current-password]").fill("not-my-password")
    page.locator("input[data-test=new-password]").fill("newer-password-2026")
    page.locator("input[data-test=repeat-password]").fill("newer-password-2026")
    page.locator("[data-test=change-password]").click()
    expect(page.locator(".el-form-item.is-error")).to_contain_text("当前密码")
    _screenshot(page, "own-password")
    page.locator("input[data-test=current-password]").fill(password)
    page.locator("[data-test=change-password]").click()
    expect(page).to_have_url(f"{server}/admin/orders")
    assert _login(server, username, "newer-password-2026")["errors"] == []
    assert _login(server, username, password)["errors"] == [{"code": "INVALID_CREDENTIALS"}]


def test_an_account_turns_on_two_step_sign_in_from_its_own_page(
    page: Page, server: str, console_settings: Settings
) -> None:
    username, password = _manager(server)
    _sign_in(page, server, (username, password))
    page.locator("[data-test=own-password]").click()
    page.locator("[data-test=totp-begin]").click()
    shown = page.locator("input[data-test=totp-secret]")
    expect(shown).to_have_value(re.compile(r"^[A-Z2-7]{16,}$"))
    secret = shown.input_value()
    # The server checks the code at its own clock (a demo clock here, started at noon), which
    # an order it places writes down.
    clock = ServerClock(_paid_order(server, _member(console_settings), "PICKUP")["placedAt"])
    page.locator("input[data-test=totp-confirm-code]").fill(pyotp.TOTP(secret).at(clock.now()))
    page.locator("[data-test=totp-confirm]").click()
    expect(page.locator("[data-test=totp-on]")).to_be_visible()
    expect(shown).to_have_count(0)  # the secret is shown while enrolling only
    _screenshot(page, "two-step")
    assert _login(server, username, password)["errors"] == [{"code": "TOTP_REQUIRED"}]

    # Signing in again asks for the authenticator's code.
    page.locator("[data-test=back]").click()
    page.locator("[data-test=sign-out]").click()
    page.locator("input[data-test=username]").fill(username)
    page.locator("input[data-test=password]").fill(password)
    page.locator("[data-test=sign-in]").click()
    expect(page.locator("input[data-test=totp]")).to_be_visible()
