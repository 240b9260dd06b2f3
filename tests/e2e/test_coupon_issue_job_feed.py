"""couponIssueJobUpdates on a real server: head office follows a coupon issued to a segment
from its state when asked to its end, and the feed completes; a store manager is refused,
and an unknown job is NOT_FOUND."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from dinegraph.resolvers.ids import encode_id
from tests.conftest import Credentials
from tests.wsclient import session

JOB_FEED = """subscription($jobId: ID!) {
  couponIssueJobUpdates(jobId: $jobId) { id status issued skipped total finishedAt } }"""
NEW_TEMPLATE = """mutation($input: CreateCouponTemplateInput!) {
  createCouponTemplate(input: $input) { template { id } errors { code } } }"""
ISSUE = """mutation($input: IssueCouponToSegmentInput!) {
  issueCouponToSegment(input: $input) { job { id status } errors { code field } } }"""
JOB = """query($id: ID!) { node(id: $id) { ... on CouponIssueJob { status issued skipped } } }"""
ORDER = ["QUEUED", "RUNNING", "DONE"]


async def _post(server: str, query: str, variables: dict[str, Any], headers: Any) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        body = (
            await client.post(
                f"{server}/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        ).json()
    assert "errors" not in body, body
    return body["data"]


def _init(headers: dict[str, str]) -> dict[str, str]:
    return {"authorization": headers["Authorization"]}


async def test_head_office_follows_an_issue_job_to_its_end(
    live_server: str, credentials: Credentials
) -> None:
    hq = credentials.hq_admin
    made = await _post(
        live_server,
        NEW_TEMPLATE,
        {
            "input": {
                "title": f"回访券 {uuid.uuid4().hex[:6]}",
                "kind": "NO_THRESHOLD",
                "amountOffFen": 300,
                "validDays": 7,
                "totalQuantity": 1_000_000,
            }
        },
        hq,
    )
    template = made["createCouponTemplate"]["template"]["id"]
    started = await _post(
        live_server, ISSUE, {"input": {"templateId": template, "tier": "NORMAL"}}, hq
    )
    assert started["issueCouponToSegment"]["errors"] == []
    job_id = started["issueCouponToSegment"]["job"]["id"]

    seen: list[dict[str, Any]] = []
    async with session(live_server, _init(hq)) as ws:
        op = await ws.subscribe(JOB_FEED, {"jobId": job_id})
        while (message := await ws.receive())["type"] == "next":
            assert "errors" not in message["payload"], message
            seen.append(message["payload"]["data"]["couponIssueJobUpdates"])
        # Its last value is the end: then the server completes the subscription.
        assert message == {"id": op, "type": "complete"}, message

    assert seen, "the job's state is sent first"
    last = seen[-1]
    assert last["status"] == "DONE" and last["finishedAt"] is not None
    assert last["issued"] > 0 and last["issued"] + last["skipped"] == last["total"]
    # Each value moves forward, never back, and none is sent twice.
    assert [ORDER.index(s["status"]) for s in seen] == sorted(
        ORDER.index(s["status"]) for s in seen
    )
    assert [s["issued"] for s in seen] == sorted(s["issued"] for s in seen)
    assert len({(s["status"], s["issued"], s["skipped"]) for s in seen}) == len(seen)
    node = (await _post(live_server, JOB, {"id": job_id}, hq))["node"]
    assert node == {"status": "DONE", "issued": last["issued"], "skipped": last["skipped"]}


async def test_a_store_manager_is_refused_and_an_unknown_job_is_not_found(
    live_server: str, credentials: Credentials
) -> None:
    cases = [
        (credentials.manager_store_1, encode_id("CouponIssueJob", 1), "FORBIDDEN"),
        (credentials.hq_admin, encode_id("CouponIssueJob", 10**9), "NOT_FOUND"),
    ]
    for headers, job_id, code in cases:
        async with session(live_server, _init(headers)) as ws:
            await ws.subscribe(JOB_FEED, {"jobId": job_id})
            refused = await ws.receive()
        # As every refusal before a feed's first value: a result with the error and its code.
        assert refused["type"] == "next" and refused["payload"]["data"] is None, refused
        assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == [code]
