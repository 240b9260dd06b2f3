"""The staff console in a real Chromium (Playwright, Debian's Chromium) against a real
`dinegraph serve`: sign-in, the stock board following a partner's sale, the order board
taking a member's order to READY, the delivery map following the courier, a campaign made
through the form reaching the mini-program, and a store manager kept to their store.

Each page is saved as a screenshot under test-output/admin/. Every wait is on what the
page shows (Playwright's expect), never on a fixed time.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dinegraph.admin_console import DEFAULT_DIST
from dinegraph.db.engine import create_engine
from dinegraph.db.seed import seed_demo
from dinegraph.db.staff_accounts import ensure_demo_staff
from dinegraph.passwords import Argon2Passwords
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import make_settings
from tests.databases import fresh_database
from tests.e2e.conftest import PATIENCE_SECONDS, ServerClock, run_cli, running_server
from tests.integration.test_client_documents import operation_document
from tests.shop import next_noon
from tests.tools import ROOT, chromium, missing

SCREENSHOTS = ROOT / "test-output" / "admin"
WAIT_MS = PATIENCE_SECONDS * 1000 / 2  # a loaded CI machine is slow; a quick one is not slowed
pytestmark = pytest.mark.timeout(4 * PATIENCE_SECONDS)
STORE_1 = encode_id("Store", 1)
STORE_2 = encode_id("Store", 2)
# The demo accounts `seed --demo` prints (development only).
HQ = ("hq", "hq-demo-2026")
MANAGER_1 = ("manager1", "manager-demo-2026")
# Near 味知堂·福田中心店 (demo store 1).
ADDRESS = {
    "lat": 22.5391,
    "lng": 114.0571,
    "detail": "福华三路 中心城 3 栋 1201",
    "contactName": "王先生",
    "contactPhone": "13800138000",
}

MENU = """query($s: ID!, $c: Channel!) { menu(storeId: $s, channel: $c) {
  categories { products { name skus {
    id name basePrice { fen } stock { available soldOut } } } } } }"""
RECORD_SALE = """mutation($input: RecordSaleInput!) {
  recordSale(input: $input) { sale { id } errors { code } } }"""
PLACE = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number placedAt } errors { code message } } }"""
PAY = """mutation($id: ID!) { payOrder(orderId: $id) { errors { code } } }"""
ORDER = """query($id: ID!) { order(id: $id) { status delivery { id status } } }"""
MOVE = """mutation($input: UpdateOrderStatusInput!) {
  updateOrderStatus(input: $input) { errors { code } } }"""
REPORT = """mutation($input: ReportCourierPositionInput!) {
  reportCourierPosition(input: $input) { accepted errors { code message } } }"""


@pytest.fixture(scope="module")
def console_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A demo chain of its own, with the demo staff accounts: the console's campaigns and
    orders stay out of the other tests' way."""
    if not (DEFAULT_DIST / "index.html").is_file():
        missing("admin/dist is missing: run `make test` (it builds the console with npm)")
    with fresh_database(tmp_path_factory.mktemp("console")) as url:
        settings = make_settings(url)

        async def load() -> None:
            engine = create_engine(settings)
            try:
                await seed_demo(engine)
                await ensure_demo_staff(engine, Argon2Passwords().hash_now)
            finally:
                await engine.dispose()

        asyncio.run(load())
        yield settings


@pytest.fixture(scope="module")
def server(console_settings: Settings) -> Iterator[str]:
    """At noon, when every demo store is open."""
    with running_server(console_settings, DINEGRAPH_CLOCK_START=next_noon().isoformat()) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Browser]:
    """Started after the server: Playwright's driver keeps an event loop running in this
    thread, where the database set-up's asyncio.run could not run."""
    executable = chromium()
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        # How each test left the page: what a failure looked like, for whoever reads it.
        _screenshot(opened, f"end/{request.node.name}")
        context.close()


def _screenshot(page: Page, name: str) -> None:
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))


def _sign_in(page: Page, server: str, account: tuple[str, str]) -> None:
    page.goto(f"{server}/admin/")
    expect(page).to_have_url(f"{server}/admin/login?next=/stock")
    page.locator("input[data-test=username]").fill(account[0])
    page.locator("input[data-test=password]").fill(account[1])
    page.locator("[data-test=sign-in]").click()
    expect(page.locator("[data-test=who]")).to_contain_text(account[0])


def _gql(
    server: str, query: str, variables: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = httpx.post(
        f"{server}/graphql",
        json={"query": query, "variables": variables},
        headers=headers or {},
        timeout=30,
    ).json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _cli_secret(settings: Settings, *args: str) -> str:
    made = run_cli(settings, *args)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def _skus(server: str, channel: str) -> list[dict[str, Any]]:
    data = _gql(server, MENU, {"s": STORE_1, "c": channel})
    return [
        {**sku, "product": product["name"]}
        for category in data["menu"]["categories"]
        for product in category["products"]
        for sku in product["skus"]
    ]


def _member(settings: Settings) -> dict[str, str]:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    return {"Authorization": f"Bearer {_cli_secret(settings, 'member-token', '--phone', phone)}"}


def _paid_order(server: str, member: dict[str, str], channel: str) -> dict[str, Any]:
    """A member's paid order of a made-to-order dish at store 1."""
    dish = next(
        s
        for s in _skus(server, channel)
        if s["stock"]["available"] is None and not s["stock"]["soldOut"]
    )
    order_input: dict[str, Any] = {
        "idempotencyKey": f"console-{uuid.uuid4().hex}",
        "channel": channel,
        "storeId": STORE_1,
        "lines": [{"skuId": dish["id"], "quantity": 1}],
        "note": "少辣",
    }
    if channel == "DELIVERY":
        order_input["address"] = ADDRESS
    placed = _gql(server, PLACE, {"input": order_input}, member)["placeOrder"]
    assert placed["errors"] == [], placed
    assert _gql(server, PAY, {"id": placed["order"]["id"]}, member)["payOrder"]["errors"] == []
    order: dict[str, Any] = placed["order"]
    return order


def test_sign_in_refuses_a_wrong_password_then_signs_in_and_out(page: Page, server: str) -> None:
    page.goto(f"{server}/admin/")
    expect(page.locator("[data-test=sign-in]")).to_be_visible()
    _screenshot(page, "login")
    page.locator("input[data-test=username]").fill(HQ[0])
    page.locator("input[data-test=password]").fill("not-the-password")
    page.locator("[data-test=sign-in]").click()
    # Refused on the password field (or above the form when no field is named).
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(f"{server}/admin/login?next=/stock")

    page.locator("input[data-test=password]").fill(HQ[1])
    page.locator("[data-test=sign-in]").click()
    expect(page).to_have_url(f"{server}/admin/stock")
    expect(page.locator("[data-test=who]")).to_contain_text("hq")
    # A reload keeps the session (sessionStorage); signing out ends it.
    page.reload()
    expect(page.locator("[data-test=who]")).to_contain_text("hq")
    page.locator("[data-test=sign-out]").click()
    expect(page.locator("[data-test=sign-in]")).to_be_visible()
    page.goto(f"{server}/admin/orders")
    expect(page).to_have_url(f"{server}/admin/login?next=/orders")


def test_a_partner_sale_shows_on_the_stock_board_without_reload(
    page: Page, server: str, console_settings: Settings
) -> None:
    key = _cli_secret(
        console_settings,
        "create-api-key",
        *("--name", "POS", "--scopes", "stock:write", "--store", "1"),
    )
    sku = next(s for s in _skus(server, "RETAIL") if (s["stock"]["available"] or 0) >= 3)
    before = sku["stock"]["available"]
    _sign_in(page, server, MANAGER_1)
    level = page.locator(f'[data-test="available-{sku["id"]}"]')
    expect(level).to_have_text(str(before))

    sold = _gql(
        server,
        RECORD_SALE,
        {
            "input": {
                "storeId": STORE_1,
                "source": "POS",
                "externalOrderId": f"pos-{uuid.uuid4().hex}",
                "lines": [{"skuId": sku["id"], "quantity": 2}],
            }
        },
        {"X-Api-Key": key},
    )
    assert sold["recordSale"]["errors"] == []
    expect(level).to_have_text(str(before - 2))

    # A threshold above the level marks it low at once, and the ledger shows the sale.
    threshold = page.locator(f'[data-test="threshold-{sku["id"]}"] input')
    threshold.fill(str(before))
    threshold.press("Enter")
    expect(page.locator(f'[data-test="low-{sku["id"]}"]')).to_be_visible()
    page.locator(f'[data-test="ledger-{sku["id"]}"]').click()
    expect(page.locator("[data-test=ledger-table] .el-table__row").first).to_contain_text("-2")
    _screenshot(page, "stock")


def test_a_member_order_appears_live_and_moves_to_ready(
    page: Page, server: str, console_settings: Settings
) -> None:
    member = _member(console_settings)
    _sign_in(page, server, MANAGER_1)
    page.locator("[data-test=menu-orders]").click()
    expect(page.locator("[data-test=order-board][data-ready=true]")).to_be_visible()
    page.wait_for_function("() => window.__dinegraphBeeps !== undefined")
    chimes = page.evaluate("window.__dinegraphBeeps.count")

    order = _paid_order(server, member, "PICKUP")
    card = page.locator(f'[data-test="order-{order["number"]}"]')
    expect(page.locator("[data-test=column-PAID]").locator(card)).to_be_visible()
    page.wait_for_function(f"() => window.__dinegraphBeeps.count > {chimes}")
    _screenshot(page, "orders")

    for action, column in (
        ("ACCEPTED", "ACCEPTED"),
        ("PREPARING", "PREPARING"),
        ("READY", "READY"),
    ):
        card.locator(f"[data-test=move-{action}]").click()
        expect(page.locator(f"[data-test=column-{column}]").locator(card)).to_be_visible()
    assert _gql(server, ORDER, {"id": order["id"]}, member)["order"]["status"] == "READY"


def test_the_delivery_map_follows_the_courier(
    page: Page, server: str, console_settings: Settings
) -> None:
    dada = {
        "X-Api-Key": _cli_secret(
            console_settings,
            "create-api-key",
            *("--name", "Dada", "--scopes", "delivery:write", "--partner", "DADA"),
        )
    }
    member = _member(console_settings)
    order = _paid_order(server, member, "DELIVERY")
    clock = ServerClock(order["placedAt"])
    _sign_in(page, server, MANAGER_1)
    page.locator("[data-test=menu-deliveries]").click()
    expect(page.locator("[data-test=delivery-map]")).to_be_visible()

    hq = _hq_headers(server)
    for status in ("ACCEPTED", "PREPARING", "READY"):
        moved = _gql(server, MOVE, {"input": {"orderId": order["id"], "status": status}}, hq)
        assert moved["updateOrderStatus"]["errors"] == []
    delivery = _gql(server, ORDER, {"id": order["id"]}, member)["order"]["delivery"]
    card = page.locator(f'[data-test="delivery-{delivery["id"]}"]')
    expect(card.locator("[data-test=delivery-status]")).to_have_text("已接单")

    reported = _gql(
        server,
        REPORT,
        {
            "input": {
                "deliveryId": delivery["id"],
                "lat": 22.5372,
                "lng": 114.0556,
                "recordedAt": clock.now().isoformat(),
            }
        },
        dada,
    )
    assert reported["reportCourierPosition"] == {"accepted": True, "errors": []}
    # The courier is drawn on the map where the platform said.
    courier = page.locator(f'[data-test="trip-{delivery["id"]}"] .courier')
    expect(courier).to_be_visible()
    expect(card.locator("[data-test=delivery-eta]")).to_contain_text("分钟")
    _screenshot(page, "deliveries")


def _hq_headers(server: str) -> dict[str, str]:
    signed = httpx.post(
        f"{server}/graphql",
        json={
            "query": """mutation($input: StaffLoginInput!) {
                staffLogin(input: $input) { accessToken errors { code } } }""",
            "variables": {"input": {"username": HQ[0], "password": HQ[1]}},
        },
        timeout=30,
    ).json()["data"]["staffLogin"]
    assert signed["errors"] == []
    return {"Authorization": f"Bearer {signed['accessToken']}"}


BUY_FLASH = """mutation($c: ID!, $order: CampaignOrderInput) {
  buyFlashSale(campaignId: $c, order: $order) { order { id } errors { code } } }"""


def test_a_campaign_made_in_the_form_reaches_the_mini_program_and_its_quota_moves_live(
    page: Page, server: str, console_settings: Settings
) -> None:
    dish = next(
        s
        for s in _skus(server, "PICKUP")
        if s["stock"]["available"] is None and s["basePrice"]["fen"] > 200
    )
    named = dish["name"] not in ("", dish["product"])  # as the console labels a SKU
    label = f"{dish['product']} · {dish['name']}" if named else dish["product"]
    name = f"午市秒杀 {uuid.uuid4().hex[:6]}"
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-campaigns]").click()
    page.locator("[data-test=new-campaign]").click()
    form = page.locator("[data-test=campaign-form]")
    expect(form).to_be_visible()
    page.locator("[data-test=campaign-sku-0]").click()
    page.keyboard.type(dish["product"])
    page.locator(".el-select-dropdown__item:visible", has_text=label).first.click()
    price = page.locator("[data-test=campaign-price-0]").locator("xpath=descendant-or-self::input")
    price.first.fill(f"{(dish['basePrice']['fen'] - 100) / 100:.2f}")

    # Left without a name, the server's refusal shows on the name field.
    page.locator("[data-test=campaign-submit]").click()
    name_error = form.locator(
        ".el-form-item:has(input[data-test=campaign-name]) .el-form-item__error"
    )
    expect(name_error).to_be_visible()
    expect(name_error).not_to_be_empty()
    _screenshot(page, "campaign-form")

    page.locator("input[data-test=campaign-name]").fill(name)
    page.locator("[data-test=campaign-submit]").click()
    expect(page.locator(f'[data-test="campaign-{name}"]')).to_be_visible()
    quota = page.locator(f'tr:has([data-test="campaign-{name}"]) .el-progress')
    expect(quota).to_contain_text("20 / 20")
    _screenshot(page, "campaigns")

    # A member buys it through the API: the quota left moves on the page, which is not
    # read again (the marker set on this very document survives).
    page.evaluate("window.__sameDocument = true")
    running = _gql(server, "query($s: ID!) { campaigns(storeId: $s) { id name } }", {"s": STORE_1})[
        "campaigns"
    ]
    (campaign_id,) = [c["id"] for c in running if c["name"] == name]
    bought = _gql(
        server,
        BUY_FLASH,
        {"c": campaign_id, "order": {"storeId": STORE_1}},
        _member(console_settings),
    )["buyFlashSale"]
    assert bought["errors"] == [], bought
    expect(quota).to_contain_text("19 / 20")
    assert page.evaluate("window.__sameDocument === true")
    _screenshot(page, "campaigns-live-quota")

    listed = httpx.post(
        f"{server}/graphql",
        json={
            "query": operation_document("StoreCampaigns"),
            "operationName": "StoreCampaigns",
            "variables": {"storeId": STORE_1, "kind": "FLASH_SALE"},
        },
        timeout=30,
    ).json()
    assert name in [c["name"] for c in listed["data"]["campaigns"]]


def test_a_store_manager_sees_only_their_store(page: Page, server: str) -> None:
    _sign_in(page, server, MANAGER_1)
    names = _gql(
        server,
        "query($a: ID!, $b: ID!) { a: store(id: $a) { name } b: store(id: $b) { name } }",
        {"a": STORE_1, "b": STORE_2},
    )
    page.locator("[data-test=store-switcher]").click()
    options = page.locator(".el-select-dropdown__item:visible")
    expect(options).to_have_text([names["a"]["name"]])
    token = page.evaluate("JSON.parse(sessionStorage.getItem('dinegraph.session')).accessToken")
    mine = {"Authorization": f"Bearer {token}"}
    for document in (
        "query($s: ID!) { storeStock(storeId: $s) { version } }",
        "query($s: ID!) { storeOrders(storeId: $s) { edges { node { id } } } }",
    ):
        refused = httpx.post(
            f"{server}/graphql",
            json={"query": document, "variables": {"s": STORE_2}},
            headers=mine,
            timeout=30,
        ).json()
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
        allowed = httpx.post(
            f"{server}/graphql",
            json={"query": document, "variables": {"s": STORE_1}},
            headers=mine,
            timeout=30,
        ).json()
        assert "errors" not in allowed, allowed


@pytest.mark.parametrize("name", ["coupons", "products", "members", "staff"])
def test_every_other_page_renders(page: Page, server: str, name: str) -> None:
    _sign_in(page, server, HQ)
    page.locator(f"[data-test=menu-{name}]").click()
    expect(page).to_have_url(f"{server}/admin/{name}")
    expect(page.locator(".page-title")).to_be_visible()
    expect(page.locator(".el-loading-mask:visible")).to_have_count(0)
    # And in English on the switch.
    english = page.locator("[data-test=language] label", has_text="EN")
    english.click()
    expect(page.locator("[data-test=sign-out]")).to_have_text("Sign out")
    expect(english).to_have_class(re.compile(r"\bis-active\b"))
    _screenshot(page, name)


def test_a_refund_request_is_approved_from_the_board(
    page: Page, server: str, console_settings: Settings
) -> None:
    member = _member(console_settings)
    order = _paid_order(server, member, "PICKUP")
    asked = _gql(
        server,
        """mutation($input: RequestRefundInput!) {
            requestRefund(input: $input) { errors { code message } } }""",
        {
            "input": {
                "orderId": order["id"],
                "reason": "等太久了",
                "idempotencyKey": f"ask-{uuid.uuid4().hex}",
            }
        },
        member,
    )
    assert asked["requestRefund"]["errors"] == []
    _sign_in(page, server, MANAGER_1)
    page.locator("[data-test=menu-orders]").click()
    page.get_by_role("tab", name="退款申请").click()
    row = page.locator(".el-table__row", has_text=order["number"])
    expect(row).to_contain_text("等太久了")
    row.get_by_role("button", name="同意").click()
    expect(row).to_have_count(0)
    refunds = _gql(
        server,
        "query($id: ID!) { order(id: $id) { refunds { status } } }",
        {"id": order["id"]},
        member,
    )
    (refund,) = refunds["order"]["refunds"]
    assert refund["status"] in {"APPROVED", "SUBMITTED", "REFUNDED"}


def _member_with_phone(settings: Settings) -> tuple[str, dict[str, str]]:
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    token = _cli_secret(settings, "member-token", "--phone", phone)
    return phone, {"Authorization": f"Bearer {token}"}


def test_the_members_page_finds_a_member_and_adjusts_points_with_a_reason(
    page: Page, server: str, console_settings: Settings
) -> None:
    phone, member = _member_with_phone(console_settings)
    order = _paid_order(server, member, "PICKUP")
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-members]").click()
    expect(page).to_have_url(f"{server}/admin/members")

    # A phone that is no phone is refused on the search box.
    page.locator("input[data-test=member-phone]").fill("12345")
    page.locator("[data-test=member-find]").click()
    expect(page.locator(".el-form-item__error")).to_have_text("请输入 11 位手机号")

    page.locator("input[data-test=member-phone]").fill(phone)
    page.locator("[data-test=member-find]").click()
    card = page.locator("[data-test=member-card]")
    expect(card).to_contain_text(f"{phone[:3]}****{phone[-4:]}")
    expect(page.locator("[data-test=member-orders]")).to_contain_text(order["number"])
    points = page.locator("[data-test=member-points]")
    expect(points).to_contain_text("0")

    # The dialog shows each refusal on its field, and saves nothing until both are right.
    page.locator("[data-test=adjust-points]").click()
    dialog = page.get_by_role("dialog", name="调整积分")
    delta = page.locator("[data-test=points-delta] input")
    page.locator("[data-test=points-submit]").click()
    expect(dialog.locator(".el-form-item__error")).to_have_count(1)  # a zero change
    delta.fill("30")
    delta.press("Tab")
    page.locator("[data-test=points-submit]").click()
    expect(dialog.locator(".el-form-item.is-error")).to_contain_text("原因")
    balance = """query { viewer { member { points } } }"""
    assert _gql(server, balance, {}, member)["viewer"]["member"]["points"] == 0
    page.locator("textarea[data-test=points-reason]").fill("客诉补偿")
    page.locator("[data-test=points-submit]").click()
    expect(dialog).to_be_hidden()
    expect(points).to_contain_text("30")
    expect(page.locator("[data-test=member-ledger] .el-table__row").first).to_contain_text(
        "人工调整"
    )
    _screenshot(page, "members")
    assert _gql(server, balance, {}, member)["viewer"]["member"]["points"] == 30


def test_selected_orders_print_as_one_batch_of_tickets(
    page: Page, server: str, console_settings: Settings
) -> None:
    member = _member(console_settings)
    first = _paid_order(server, member, "PICKUP")
    second = _paid_order(server, member, "PICKUP")
    _sign_in(page, server, MANAGER_1)
    page.locator("[data-test=menu-orders]").click()
    expect(page.locator("[data-test=order-board][data-ready=true]")).to_be_visible()
    for order in (first, second):
        card = page.locator(f'[data-test="order-{order["number"]}"]')
        card.locator("[data-test=move-ACCEPTED]").click()  # accepting makes the tickets
        expect(page.locator("[data-test=column-ACCEPTED]").locator(card)).to_be_visible()
        page.locator(f'[data-test="select-{order["number"]}"]').click()
    page.locator("[data-test=print-selected]").click()
    text = page.locator("[data-test=ticket-text]")
    expect(text).to_contain_text(first["number"])
    expect(text).to_contain_text(second["number"])
    wide = text.inner_text()
    page.locator("[data-test=paper] label", has_text="58 mm").click()
    expect(text).not_to_have_text(wide)
    narrow = max(len(line) for line in text.inner_text().splitlines())
    assert narrow < max(len(line) for line in wide.splitlines())
    _screenshot(page, "print")
    with page.expect_download() as download:
        page.locator("[data-test=download-escpos]").click()
    path = download.value.path()
    assert path is not None
    assert path.read_bytes().startswith(b"\x1b@")  # ESC @: the printer's reset


def test_a_reset_password_is_shown_once_and_changed_before_anything_else(
    page: Page, browser: Browser, server: str
) -> None:
    username = f"clerk{uuid.uuid4().hex[:6]}"
    made = _gql(
        server,
        """mutation($input: CreateStaffAccountInput!) {
            createStaffAccount(input: $input) { errors { code message } } }""",
        {
            "input": {
                "username": username,
                "displayName": "店员",
                "role": "STORE_MANAGER",
                "storeIds": [STORE_1],
                "password": "first-password-2026",
            }
        },
        _hq_headers(server),
    )
    assert made["createStaffAccount"]["errors"] == []
    _sign_in(page, server, HQ)
    page.locator("[data-test=menu-staff]").click()
    page.locator(f"[data-test=reset-{username}]").click()
    page.locator(".el-message-box").get_by_role("button", name="确定").click()
    shown = page.locator("input[data-test=temporary-password]")
    expect(shown).to_have_value(re.compile(r"^\S{16}$"))
    temporary = shown.input_value()
    _screenshot(page, "reset-password")
    page.locator("[data-test=reset-done]").click()
    expect(shown).to_be_hidden()
    expect(shown).to_have_value("")  # shown once: the page forgets it with the dialog

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        clerk = context.new_page()
        clerk.goto(f"{server}/admin/")
        clerk.locator("input[data-test=username]").fill(username)
        clerk.locator("input[data-test=password]").fill(temporary)
        clerk.locator("[data-test=sign-in]").click()
        expect(clerk).to_have_url(re.compile(r"/admin/change-password"))
        expect(clerk.locator("[data-test=must-change]")).to_be_visible()
        clerk.goto(f"{server}/admin/orders")  # nothing else until the password is changed
        expect(clerk).to_have_url(re.compile(r"/admin/change-password"))
        expect(clerk.locator("[data-test=must-change]")).to_be_visible()
        clerk.locator("input[data-test=current-password]").fill(temporary)
        clerk.locator("input[data-test=new-password]").fill("short")
        clerk.locator("input[data-test=repeat-password]").fill("short")
        clerk.locator("[data-test=change-password]").click()
        expect(clerk.locator(".el-form-item.is-error")).to_contain_text("新密码")
        clerk.locator("input[data-test=new-password]").fill("my-own-password-2026")
        clerk.locator("input[data-test=repeat-password]").fill("my-own-password-2026")
        clerk.locator("[data-test=change-password]").click()
        expect(clerk).to_have_url(re.compile(r"/admin/orders$"))
        expect(clerk.locator("[data-test=who]")).to_contain_text(username)
        _screenshot(clerk, "changed-password")
    finally:
        context.close()
