"""QRM's reports API and the simulated upload (SPEC.md section 3 and its "Details" 1, 2 and 12)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.test_errors import qrm_error

Client = TestClient[Any, Any]
Server = Callable[..., Awaitable[Client]]

FIRST_ID = 12301
SEEDED = 12


@pytest.fixture
async def qrm(server: Server) -> Client:
    """More seeded reports than the default page, so paging shows."""
    return await server(seed_reports=SEEDED)


async def page(api: Client, **params: Any) -> dict[str, Any]:
    response = await api.get("/api/v1/reports", params={k: str(v) for k, v in params.items()})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) == {"data", "limit", "offset", "total"}
    return body


async def everything(api: Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await page(api, limit=200, order="created_date:asc"))["data"]
    return items


async def detail(api: Client, report_id: int | str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/reports/{report_id}")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert set(body) == {"data"}
    document: dict[str, Any] = body["data"]
    return document


async def upload(api: Client, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await api.post("/_mock/reports", json=body if body is not None else {})
    assert response.status == 201, await response.text()
    uploaded: dict[str, Any] = (await response.json())["data"]
    return uploaded


async def advance(api: Client, seconds: float) -> None:
    response = await api.post("/_mock/clock/advance", json={"seconds": seconds})
    assert response.status == 200, await response.text()


def created(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["createdDate"])


def query_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- seeded reports


async def test_seeded_ids_start_at_12301(qrm: Client) -> None:
    ids = [item["id"] for item in await everything(qrm)]
    assert ids == list(range(FIRST_ID, FIRST_ID + SEEDED))


async def test_every_report_has_an_inspection_id_uuid(qrm: Client) -> None:
    items = await everything(qrm)
    inspection_ids = [item["inspectionId"] for item in items]
    for value in inspection_ids:
        assert str(uuid.UUID(value)) == value
    assert len(set(inspection_ids)) == len(items)


async def test_numeric_id_is_served_in_inspection_general(qrm: Client) -> None:
    general = (await detail(qrm, FIRST_ID))["inspectionGeneral"]
    assert general["id"] == FIRST_ID
    assert str(uuid.UUID(general["inspectionId"])) == general["inspectionId"]


# -- the list: limit, offset, total, order, filters


async def test_list_limit_defaults_to_10(qrm: Client) -> None:
    body = await page(qrm)
    assert body["limit"] == 10
    assert body["offset"] == 0
    assert body["total"] == SEEDED
    assert len(body["data"]) == 10


@pytest.mark.parametrize("limit", [1, 7, 200])
async def test_list_limit_may_be_1_to_200(qrm: Client, limit: int) -> None:
    body = await page(qrm, limit=limit)
    assert body["limit"] == limit
    assert len(body["data"]) == min(limit, SEEDED)
    assert body["total"] == SEEDED


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
async def test_list_limit_outside_1_to_200_is_422(qrm: Client, limit: str) -> None:
    response = await qrm.get("/api/v1/reports", params={"limit": limit})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"limit"}


async def test_list_offset_skips_reports_and_total_counts_them_all(qrm: Client) -> None:
    ids = [item["id"] for item in await everything(qrm)]
    body = await page(qrm, limit=3, offset=4, order="created_date:asc")
    assert [item["id"] for item in body["data"]] == ids[4:7]
    assert (body["limit"], body["offset"], body["total"]) == (3, 4, SEEDED)


async def test_list_offset_past_the_end_is_an_empty_page(qrm: Client) -> None:
    body = await page(qrm, offset=SEEDED + 5)
    assert body["data"] == []
    assert body["total"] == SEEDED


async def test_list_is_newest_first_by_default(qrm: Client) -> None:
    dates = [created(item) for item in (await page(qrm, limit=200))["data"]]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    ("order", "newest_first"), [("created_date:asc", False), ("created_date:desc", True)]
)
async def test_list_order_by_created_date(qrm: Client, order: str, newest_first: bool) -> None:
    items = (await page(qrm, limit=200, order=order))["data"]
    dates = [created(item) for item in items]
    assert dates == sorted(dates, reverse=newest_first)
    assert len(set(dates)) == SEEDED


@pytest.mark.parametrize("status", ["completed", "pending", "in-progress"])
async def test_list_status_filter(qrm: Client, status: str) -> None:
    expected = [item["id"] for item in await everything(qrm) if item["status"] == status]
    body = await page(qrm, limit=200, order="created_date:asc", status=status)
    assert [item["id"] for item in body["data"]] == expected
    assert body["total"] == len(expected)


async def test_the_seeded_reports_have_more_than_one_status(qrm: Client) -> None:
    """Otherwise the status filter test above would prove nothing."""
    assert len({item["status"] for item in await everything(qrm)}) > 1


async def test_list_created_from_filter_is_inclusive(qrm: Client) -> None:
    items = await everything(qrm)
    start = created(items[4])
    body = await page(qrm, limit=200, order="created_date:asc", created_from=query_time(start))
    assert [item["id"] for item in body["data"]] == [item["id"] for item in items[4:]]
    assert body["total"] == len(items) - 4


async def test_list_created_to_filter_is_inclusive(qrm: Client) -> None:
    items = await everything(qrm)
    end = created(items[6])
    body = await page(qrm, limit=200, order="created_date:asc", created_to=query_time(end))
    assert [item["id"] for item in body["data"]] == [item["id"] for item in items[:7]]
    assert body["total"] == 7


async def test_list_created_range_combines_both_ends(qrm: Client) -> None:
    items = await everything(qrm)
    body = await page(
        qrm,
        limit=200,
        order="created_date:asc",
        created_from=query_time(created(items[2])),
        created_to=query_time(created(items[5])),
    )
    assert [item["id"] for item in body["data"]] == [item["id"] for item in items[2:6]]
    assert body["total"] == 4


@pytest.fixture
def server_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's local time zone is not UTC (as on many developers' machines)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_in_new_york")
async def test_list_time_without_an_offset_is_utc_not_the_servers_local_time(
    qrm: Client,
) -> None:
    items = await everything(qrm)
    naive = created(items[4]).replace(tzinfo=None).isoformat(timespec="milliseconds")
    body = await page(qrm, limit=200, order="created_date:asc", created_from=naive)
    assert [item["id"] for item in body["data"]] == [item["id"] for item in items[4:]]


# -- one report


async def test_detail_by_numeric_id_and_by_uuid_is_the_same_report(qrm: Client) -> None:
    by_id = await detail(qrm, FIRST_ID + 2)
    inspection_id = by_id["inspectionGeneral"]["inspectionId"]
    assert await detail(qrm, inspection_id) == by_id
    assert by_id["inspectionGeneral"]["id"] == FIRST_ID + 2


async def test_detail_carries_qrm_sections(qrm: Client) -> None:
    document = await detail(qrm, FIRST_ID)
    assert isinstance(document["inspectionGeneral"], dict)
    assert isinstance(document["inspectionDefectList"], list)


@pytest.mark.parametrize("report_id", ["99999", "12300", str(uuid.UUID(int=7)), "not-a-report"])
async def test_unknown_report_is_404(qrm: Client, report_id: str) -> None:
    response = await qrm.get(f"/api/v1/reports/{report_id}")
    await qrm_error(response, 404)


# -- upload, pdfUrl and the file


async def test_upload_answers_201_with_the_path_of_the_report(qrm: Client) -> None:
    uploaded = await upload(qrm)
    assert uploaded["resourceId"] == FIRST_ID + SEEDED
    assert uploaded["path"] == f"/reports/{uploaded['resourceId']}"
    general = (await detail(qrm, uploaded["path"].removeprefix("/reports/")))["inspectionGeneral"]
    assert general["id"] == uploaded["resourceId"]
    assert general["inspectionId"] == uploaded["inspectionId"]
    assert (await page(qrm))["total"] == SEEDED + 1


async def test_upload_without_a_body_is_a_plain_upload(qrm: Client) -> None:
    response = await qrm.post("/_mock/reports")
    assert response.status == 201
    assert (await response.json())["data"]["resourceId"] == FIRST_ID + SEEDED


async def test_pdf_url_is_absent_until_the_file_is_ready(server: Server) -> None:
    api = await server(file_ready_delay=3.0)
    report_id = (await upload(api))["resourceId"]
    pdf_url = str(api.make_url(f"/files/reports/{report_id}.pdf"))

    general = (await detail(api, report_id))["inspectionGeneral"]
    assert general.get("pdfUrl") is None
    listed = next(i for i in (await page(api, limit=200))["data"] if i["id"] == report_id)
    assert listed.get("pdfUrl") is None
    await qrm_error(await api.get(f"/files/reports/{report_id}.pdf"), 404)

    await advance(api, 2.9)
    assert (await detail(api, report_id))["inspectionGeneral"].get("pdfUrl") is None

    await advance(api, 0.1)
    assert (await detail(api, report_id))["inspectionGeneral"]["pdfUrl"] == pdf_url
    listed = next(i for i in (await page(api, limit=200))["data"] if i["id"] == report_id)
    assert listed["pdfUrl"] == pdf_url


async def test_pdf_url_points_at_this_servers_file_route(qrm: Client) -> None:
    general = (await detail(qrm, FIRST_ID))["inspectionGeneral"]
    assert general["pdfUrl"] == str(qrm.make_url(f"/files/reports/{FIRST_ID}.pdf"))


async def test_the_pdf_route_answers_a_pdf(qrm: Client) -> None:
    general = (await detail(qrm, FIRST_ID))["inspectionGeneral"]
    response = await qrm.get(general["pdfUrl"].removeprefix(str(qrm.make_url(""))))
    assert response.status == 200
    assert response.content_type == "application/pdf"
    assert (await response.read()).startswith(b"%PDF")


async def test_overrides_on_upload_show_in_the_report(qrm: Client) -> None:
    uploaded = await upload(qrm, {"overrides": {"status": "in-progress"}})
    assert (await detail(qrm, uploaded["resourceId"]))["inspectionGeneral"]["status"] == (
        "in-progress"
    )
    other = await upload(qrm, {"overrides": {"status": "completed"}})
    assert (await detail(qrm, other["resourceId"]))["inspectionGeneral"]["status"] == "completed"
    listed = await page(qrm, status="in-progress", limit=200)
    assert uploaded["resourceId"] in [item["id"] for item in listed["data"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"nope": 1}, "overrides.nope"),
        ({"status": "lost"}, "overrides.status"),
        ({"status": 3}, "overrides.status"),
        ({"inspectionId": str(uuid.UUID(int=9))}, "overrides.inspectionId"),
    ],
    ids=["unknown-field", "unknown-status", "wrong-type", "server-assigned"],
)
async def test_a_bad_override_is_422_keyed_by_its_field(
    qrm: Client, overrides: dict[str, Any], field: str
) -> None:
    response = await qrm.post("/_mock/reports", json={"overrides": overrides})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {field}
    assert (await page(qrm))["total"] == SEEDED
