"""What an audit entry keeps of a write's input, who it names, and whose address it believes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from starlette.datastructures import Headers

from dinegraph.context import forwarded_client
from dinegraph.domain.audit import (
    SUMMARY_MAX,
    ActorKind,
    AuditFilter,
    actor,
    check_filter,
    require_audit_reader,
    summarise,
)
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import (
    ANONYMOUS,
    MemberViewer,
    PartnerViewer,
    StaffRole,
    StaffViewer,
    Viewer,
)

HQ = StaffViewer(staff_id=7, username="hq", role=StaffRole.HQ_ADMIN, store_ids=frozenset())
MANAGER = StaffViewer(
    staff_id=8, username="m", role=StaffRole.STORE_MANAGER, store_ids=frozenset({1})
)
POS = PartnerViewer(api_key_id=3, name="POS", scopes=frozenset({"stock:write"}), store_ids=None)


def test_secrets_and_personal_data_are_starred_and_the_rest_kept() -> None:
    text = summarise(
        {
            "input": {
                "orderId": "T3JkZXI6MQ==",
                "phone": "13800138000",
                "address": {"detail": "科技园1栋"},
                "note": "不要辣",
                "courier": {"name": "李四", "phone": "13900000000"},
                "refreshToken": "abc",
                "shareCode": "xyz",
                "reason": "破损",
            }
        }
    )
    kept = json.loads(text)["input"]
    assert kept["orderId"] == "T3JkZXI6MQ==" and kept["reason"] == "破损"
    for hidden in ("phone", "address", "note", "courier", "refreshToken", "shareCode"):
        assert kept[hidden] == "***"
    for leaked in ("13800138000", "科技园", "不要辣", "李四", "abc", "xyz"):
        assert leaked not in text


def test_a_person_named_next_to_a_phone_is_hidden_a_dish_name_is_not() -> None:
    rider = json.loads(summarise({"input": {"name": "王师傅", "phone": "139"}}))["input"]
    assert rider == {"name": "***", "phone": "***"}
    dish = json.loads(summarise({"input": {"name": "酸菜鱼"}}))["input"]
    assert dish == {"name": "酸菜鱼"}


def test_long_texts_and_lists_are_cut_and_the_summary_is_bounded() -> None:
    kept = json.loads(summarise({"lines": list(range(25)), "title": "字" * 200}))
    assert kept["lines"] == [*range(10), "+15"]
    assert len(kept["title"]) == 60 and kept["title"].endswith("…")
    assert len(summarise({f"k{n}": "v" * 50 for n in range(40)})) == SUMMARY_MAX


def test_staff_and_partners_are_actors_members_and_visitors_are_not() -> None:
    staff = actor(MANAGER)
    assert staff is not None
    assert (staff.kind, staff.credential, staff.staff_id) == (ActorKind.STAFF, "staff:8", 8)
    partner = actor(POS)
    assert partner is not None
    assert (partner.kind, partner.credential, partner.api_key_id) == (
        ActorKind.PARTNER,
        "api_key:3",
        3,
    )
    assert actor(MemberViewer(1)) is None and actor(ANONYMOUS) is None


def test_only_head_office_admins_read_the_log() -> None:
    assert require_audit_reader(HQ) is HQ
    refusals: list[tuple[Viewer, ErrorCode]] = [
        (MANAGER, ErrorCode.FORBIDDEN),
        (POS, ErrorCode.FORBIDDEN),
        (MemberViewer(1), ErrorCode.FORBIDDEN),
        (ANONYMOUS, ErrorCode.UNAUTHENTICATED),
    ]
    for viewer, code in refusals:
        with pytest.raises(DomainError) as refused:
            require_audit_reader(viewer)
        assert refused.value.code is code


def test_filter_times_need_an_offset_and_become_utc() -> None:
    shanghai = datetime(2026, 12, 2, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    checked = check_filter(AuditFilter(since=shanghai))
    assert checked.since == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    with pytest.raises(DomainError) as refused:
        check_filter(AuditFilter(until=datetime(2026, 12, 2)))
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID_WINDOW, ["filter", "to"])
    early = datetime.min.replace(tzinfo=timezone(timedelta(hours=8)))
    with pytest.raises(DomainError):
        check_filter(AuditFilter(since=early))


def test_x_forwarded_for_is_believed_from_trusted_proxies_only() -> None:
    forwarded = Headers({"x-forwarded-for": "10.0.0.5, 198.51.100.9, 203.0.113.7"})
    assert forwarded_client("192.0.2.1", forwarded, "") == "192.0.2.1"
    assert forwarded_client("192.0.2.1", forwarded, "10.0.0.1") == "192.0.2.1"
    assert forwarded_client("10.0.0.1", forwarded, "10.0.0.1") == "203.0.113.7"
    # A chain of trusted proxies: the nearest address that is none of them.
    assert forwarded_client("10.0.0.1", forwarded, "10.0.0.1, 203.0.113.7") == "198.51.100.9"
    assert forwarded_client("10.0.0.1", Headers({}), "10.0.0.1") == "10.0.0.1"


def test_a_summary_is_storable_text_whatever_the_input() -> None:
    text = summarise({"title": "a\ud800b\x00c"})
    text.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in text
