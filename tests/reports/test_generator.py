"""Generated reports: deterministic, realistic, and valid against Inspectorio's reference."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mock_qrm.server.reports import (
    FIRST_REPORT_ID,
    GeneratedReport,
    ReportGenerator,
    ReportOverrideError,
    list_item,
    render_pdf,
    with_pdf_url,
)
from tests.conformance.reference import validate_response, validate_schema

NOW = datetime(2026, 11, 28, 15, 4, 5, 123456, tzinfo=UTC)
CREATED = datetime(2026, 11, 20, 9, 30, 12, 345678, tzinfo=UTC)
PDF_URL = "http://127.0.0.1:8765/api/v1/reports/12301/file.pdf"

QRM_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}000\+00:00$")
QRM_DAY = re.compile(r"^\d{4}-\d{2}-\d{2} 00:00:00\+00:00$")
RFC3339_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}T00:00:00\+00:00$")
SEVERITIES = ("critical", "major", "minor")


@pytest.fixture(scope="module")
def seeded() -> list[GeneratedReport]:
    return ReportGenerator(seed=7).seed_reports(200, NOW)


def general(report: GeneratedReport) -> dict[str, Any]:
    section: dict[str, Any] = report.detail["inspectionGeneral"]
    return section


def found_by_severity(report: GeneratedReport) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for defect in report.detail["inspectionDefectList"]:
        counts[defect["clarification"]] += defect["totalDefects"]
    return counts


# -- determinism and seeding


def test_same_seed_gives_same_reports() -> None:
    first = ReportGenerator(seed=3).seed_reports(40, NOW)
    second = ReportGenerator(seed=3).seed_reports(40, NOW)
    assert first == second
    assert len({r.inspection_id for r in first}) == 40


def test_report_does_not_depend_on_call_order() -> None:
    generator = ReportGenerator(seed=3)
    forwards = [generator.generate(i, CREATED) for i in (12301, 12302, 12303)]
    backwards = [generator.generate(i, CREATED) for i in (12303, 12302, 12301)]
    assert forwards == backwards[::-1]
    seeded = ReportGenerator(seed=3).seed_reports(5, NOW)
    again = ReportGenerator(seed=3).generate(12303, seeded[2].created_at)
    assert again == seeded[2]


def test_different_seeds_give_different_reports() -> None:
    one = ReportGenerator(seed=1).generate(12301, CREATED)
    two = ReportGenerator(seed=2).generate(12301, CREATED)
    assert one.inspection_id != two.inspection_id
    assert one.case_number != two.case_number


def test_seeded_ids_start_at_12301_and_ascend_with_creation_time(
    seeded: list[GeneratedReport],
) -> None:
    assert [r.id for r in seeded] == list(range(FIRST_REPORT_ID, FIRST_REPORT_ID + 200))
    created = [r.created_at for r in seeded]
    assert created == sorted(created)
    assert len(set(created)) == len(created)
    assert NOW - timedelta(days=90) <= created[0] < created[-1] <= NOW
    assert created[-1] - created[0] > timedelta(days=85)


def test_ids_are_served_as_integer_id_and_uuid_inspection_id(
    seeded: list[GeneratedReport],
) -> None:
    for report in seeded[:20]:
        assert general(report)["id"] == report.id
        assert isinstance(general(report)["id"], int)
        assert str(uuid.UUID(report.inspection_id)) == report.inspection_id
        assert general(report)["inspectionId"] == report.inspection_id
        assert list_item(report.detail)["id"] == report.id


def test_seeded_reports_cover_every_status_result_and_common_type(
    seeded: list[GeneratedReport],
) -> None:
    assert set(Counter(r.status for r in seeded)) == {"completed", "in-progress", "pending"}
    assert set(Counter(r.result for r in seeded)) == {"pass", "fail", "pending"}
    assert {"DUPRO", "FRI", "PPI", "INLINE"} <= {r.inspection_type for r in seeded}
    assert len({general(r)["factory"]["name"] for r in seeded}) >= 10


def test_naive_created_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        ReportGenerator().generate(12301, datetime(2026, 1, 1, 12, 0))


# -- conformance to the reference


def test_detail_validates_against_reference_report_response(
    seeded: list[GeneratedReport],
) -> None:
    for report in seeded[:50]:
        validate_response("/api/v1/reports/{report_id}", "GET", 200, {"data": report.detail})
        ready = with_pdf_url(report.detail, PDF_URL)
        validate_response(f"/api/v1/reports/{report.id}", "GET", 200, {"data": ready})


def test_list_item_validates_against_reference(seeded: list[GeneratedReport]) -> None:
    items = [list_item(r.detail) for r in seeded[:50]]
    items += [list_item(with_pdf_url(r.detail, PDF_URL)) for r in seeded[50:60]]
    body = {"data": items, "limit": 100, "offset": 0, "total": len(seeded)}
    validate_response("/api/v1/reports", "GET", 200, body)
    assert "photos" not in items[0] and "pos" not in items[0]
    assert items[-1]["pdfUrl"] == PDF_URL


def test_reference_check_catches_a_broken_report(seeded: list[GeneratedReport]) -> None:
    broken = with_pdf_url(seeded[0].detail, PDF_URL)
    broken["inspectionGeneral"]["pdfUrl"] = None
    broken["inspectionGeneral"]["factory"] = None
    with pytest.raises(AssertionError) as caught:
        validate_schema("ReportResponse", broken)
    assert "$.inspectionGeneral.pdfUrl" in str(caught.value)
    assert "$.inspectionGeneral.factory" in str(caught.value)


def test_timestamps_use_qrm_formats(seeded: list[GeneratedReport]) -> None:
    for report in seeded:
        section = general(report)
        for name in ("createdDate", "updatedDate", "systemUpdatedAt"):
            assert QRM_TIME.match(section[name]), (name, section[name])
        assert QRM_DAY.match(section["expectedDate"]), section["expectedDate"]
        assert report.created_at == datetime.fromisoformat(section["createdDate"])
        assert report.created_at.tzinfo is not None
        if report.status == "pending":
            assert "inspectionDate" not in section
            assert section["actualInspectionDate"] is None
            assert report.inspection_date is None
        else:
            assert QRM_TIME.match(section["inspectionDate"]), section["inspectionDate"]
            assert RFC3339_DAY.match(section["actualInspectionDate"])
            assert report.inspection_date is not None
            assert report.inspection_date < report.created_at
            assert section["actualInspectionDate"][:10] == section["inspectionDate"][:10]


def test_purchase_orders_and_styles_are_consistent(seeded: list[GeneratedReport]) -> None:
    for report in seeded[:50]:
        section = general(report)
        assert section["poNumber"] in section["productOrders"]
        assert section["poNumber"].startswith(section["opoNumber"] + "-L")
        assert [p["poNumber"] for p in section["pos"]] == section["productOrders"]
        styles = section["productStyles"]
        assert styles and all(s["styleId"] and s["productCategoryId"] for s in styles)
        assert set(section["productCategories"]) == {s["productCategoryId"] for s in styles}
        item_ids = [solid["itemId"] for s in styles for solid in s["solids"]]
        assert len(item_ids) == len(set(item_ids))
        assert report.inspection_type in section["caseNumber"]
        assert section["expectedDate"][:10] in section["caseNumber"]


# -- findings


def test_defect_counts_match_result(seeded: list[GeneratedReport]) -> None:
    forced = [
        ReportGenerator(seed=11).generate(20000 + i, CREATED, {"inspectionResult": result})
        for i in range(30)
        for result in ("pass", "fail")
    ]
    for report in [*seeded, *forced]:
        standard = report.detail["inspectionStandards"][0]
        found = found_by_severity(report)
        allowed = {s: int(standard["maxAllowed"][s]) for s in SEVERITIES}
        assert {s: int(standard["defectFound"][s]) for s in SEVERITIES} == found
        assert int(standard["totalDefects"]) == sum(found.values())
        over = [s for s in SEVERITIES if found[s] > allowed[s]]
        if report.result == "fail":
            assert over, (report.id, found, allowed)
            assert standard["failReason"] == over[0]
        else:
            assert not over, (report.id, found, allowed)
            assert "failReason" not in standard
        if report.status == "pending":
            assert report.detail["inspectionDefectList"] == []
        workmanship = next(
            row for row in report.detail["inspectionResult"] if row["groupName"] == "Workmanship"
        )
        expected = "pending" if report.status == "pending" else report.result
        assert workmanship["status"] == expected


def test_sample_size_follows_the_aql_table(seeded: list[GeneratedReport]) -> None:
    for report in seeded[:50]:
        standard = report.detail["inspectionStandards"][0]
        selection = report.detail["inspectionSampleSelection"][0]
        lot = standard["availableQuantity"]
        assert selection["totalInspectionQuantity"] == lot
        assert selection["sampleSize"] == standard["minimumSampleSize"] <= lot
        if 1201 <= lot <= 3200:
            assert selection["sampleSize"] == 125


def test_capa_status_only_on_failed_completed_reports(seeded: list[GeneratedReport]) -> None:
    for report in seeded:
        has_capa = "capaStatus" in general(report)
        assert has_capa == (report.status == "completed" and report.result == "fail")


# -- overrides


def test_override_changes_status() -> None:
    generator = ReportGenerator(seed=5)
    pending = generator.generate(12301, CREATED, {"status": "pending"})
    assert pending.status == general(pending)["status"] == "pending"
    assert pending.result == "pending"
    assert pending.detail["inspectionDefectList"] == []
    completed = generator.generate(12301, CREATED, {"status": "completed"})
    assert completed.status == "completed"
    assert completed.result in ("pass", "fail")


def test_override_result_fail_makes_a_completed_failing_report() -> None:
    report = ReportGenerator(seed=5).generate(12301, CREATED, {"inspectionResult": "fail"})
    assert (report.status, report.result) == ("completed", "fail")
    assert report.detail["inspectionStandards"][0]["failReason"] in SEVERITIES
    assert report.detail["inspectionDefectList"]


def test_override_leaves_unrelated_fields_alone() -> None:
    generator = ReportGenerator(seed=5)
    plain = generator.generate(12301, CREATED)
    changed = generator.generate(12301, CREATED, {"caseNumber": "CASE-1", "tags": ["x"]})
    assert changed.case_number == general(changed)["caseNumber"] == "CASE-1"
    assert general(changed)["tags"] == ["x"]
    assert changed.inspection_id == plain.inspection_id
    assert general(changed)["factory"] == general(plain)["factory"]


def test_override_po_number_reaches_orders_and_items() -> None:
    report = ReportGenerator(seed=5).generate(12301, CREATED, {"poNumber": "4500-88-L002"})
    section = general(report)
    assert section["poNumber"] == "4500-88-L002"
    assert section["opoNumber"] == "4500-88"
    assert section["productOrders"] == ["4500-88-L002"]
    assert section["pos"] == [{"poNumber": "4500-88-L002"}]
    solids = [solid for s in section["productStyles"] for solid in s["solids"]]
    assert all(solid["purchaseOrders"] == ["4500-88-L002"] for solid in solids)


def test_override_type_accepts_a_code() -> None:
    report = ReportGenerator(seed=5).generate(12301, CREATED, {"type": "FRI"})
    assert report.inspection_type == "FRI"
    assert general(report)["type"] == {
        "typeOfInspection": "FRI",
        "typeOfInspectionName": "Final Random Inspection",
    }
    assert "FRI" in report.case_number


def test_override_times_are_normalised_and_reflected() -> None:
    report = ReportGenerator(seed=5).generate(
        12301,
        CREATED,
        {"createdDate": "2026-01-02T03:04:05Z", "actualInspectionDate": "2026-01-01"},
    )
    section = general(report)
    assert section["createdDate"] == "2026-01-02 03:04:05.000000+00:00"
    assert report.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert section["actualInspectionDate"] == "2026-01-01T00:00:00+00:00"


def test_overridden_report_still_validates() -> None:
    overrides = {
        "status": "completed",
        "inspectionResult": "fail",
        "poNumber": "PO-1",
        "type": {"typeOfInspection": "CUSTOM", "typeOfInspectionName": "Custom check"},
        "factory": {"name": "Test Factory (Pty) Ltd", "country": "ZA"},
        "tags": None,
        "workflowName": None,
        "capaStatus": "Approved",
        "updatedDate": "2026-11-21T00:00:00+07:00",
    }
    report = ReportGenerator(seed=5).generate(12301, CREATED, overrides)
    assert general(report)["country"] == "ZA"
    assert general(report)["updatedDate"] == "2026-11-20 17:00:00.000000+00:00"
    validate_schema("ReportResponse", with_pdf_url(report.detail, PDF_URL))
    validate_schema("ReportListInspectionGeneral", list_item(report.detail))


def test_override_unknown_field_is_rejected() -> None:
    with pytest.raises(ReportOverrideError) as caught:
        ReportGenerator().generate(12301, CREATED, {"colour": "red"})
    assert caught.value.field == "colour"
    assert "not an inspectionGeneral field" in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"status": "done"}, "status", "must be one of: completed, in-progress, pending"),
        ({"inspectionResult": 1}, "inspectionResult", "must be a string"),
        ({"isReferenceSample": True}, "isReferenceSample", "must be an integer"),
        ({"tags": "urgent"}, "tags", "must be an array"),
        ({"tags": ["ok", 3]}, "tags.1", "must be a string"),
        ({"factory": {"name": 5}}, "factory.name", "must be a string"),
        ({"factory": None}, "factory", "must not be null"),
        ({"createdDate": "yesterday"}, "createdDate", "ISO 8601"),
        ({"createdDate": "2026-01-02T03:04:05"}, "createdDate", "timezone"),
        ({"productStyles": [{"styleId": "S1"}]}, "productStyles.0.productCategoryId", "required"),
        ({"caseNumber": ""}, "caseNumber", "must not be empty"),
    ],
)
def test_override_with_wrong_type_is_rejected_on_its_field(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ReportOverrideError) as caught:
        ReportGenerator().generate(12301, CREATED, overrides)
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize("field", ["id", "inspectionId", "pdfUrl"])
def test_override_of_server_assigned_fields_is_rejected(field: str) -> None:
    with pytest.raises(ReportOverrideError) as caught:
        ReportGenerator().generate(12301, CREATED, {field: "x"})
    assert caught.value.field == field
    assert "cannot be overridden" in caught.value.message


# -- views


def test_with_pdf_url_sets_and_removes_without_mutating(seeded: list[GeneratedReport]) -> None:
    detail = seeded[0].detail
    assert "pdfUrl" not in detail["inspectionGeneral"]
    ready = with_pdf_url(detail, PDF_URL)
    assert ready["inspectionGeneral"]["pdfUrl"] == PDF_URL
    assert "pdfUrl" not in detail["inspectionGeneral"]
    assert "pdfUrl" not in with_pdf_url(ready, None)["inspectionGeneral"]


def test_list_item_uses_booking_shapes_for_styles(seeded: list[GeneratedReport]) -> None:
    report = next(r for r in seeded if any(s["assortments"] for s in general(r)["productStyles"]))
    item = list_item(report.detail)
    for style in item["productStyles"]:
        assert all("purchaseOrders" not in solid for solid in style["solids"])
        for assortment in style["assortments"] or []:
            assert all("purchaseOrders" not in i for i in assortment["items"])
    assert general(report)["productStyles"][0]["solids"][0]["purchaseOrders"]


# -- PDF


def check_pdf_structure(pdf: bytes) -> None:
    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.endswith(b"%%EOF\n")
    startxref = int(pdf[pdf.rindex(b"startxref") :].split()[1])
    assert pdf[startxref:].startswith(b"xref\n")
    lines = pdf[startxref:].split(b"\n")
    first, count = (int(n) for n in lines[1].split())
    assert first == 0
    entries = lines[2 : 2 + count]
    assert entries[0] == b"0000000000 65535 f "
    for number, entry in enumerate(entries[1:], start=1):
        assert len(entry) + 1 == 20 and entry.endswith(b" n ")
        offset = int(entry[:10])
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number), number
    assert b"/Size %d" % count in pdf
    length = int(re.search(rb"/Length (\d+) >>\nstream\n", pdf).group(1))  # type: ignore[union-attr]
    body_at = pdf.index(b"stream\n") + len(b"stream\n")
    assert pdf[body_at + length :].startswith(b"endstream")


def test_pdf_is_valid(seeded: list[GeneratedReport]) -> None:
    report = next(r for r in seeded if r.result == "fail")
    pdf = render_pdf(report.detail)
    check_pdf_structure(pdf)
    assert b"/BaseFont /Helvetica" in pdf
    assert report.case_number[:70].encode() in pdf
    assert b"(FAIL)" in pdf
    assert general(report)["poNumber"].encode() in pdf
    assert render_pdf(report.detail) == pdf


def test_pdf_escapes_awkward_text() -> None:
    report = ReportGenerator(seed=5).generate(
        12301, CREATED, {"caseNumber": "A(B)\\C caf\u00e9 \u2713", "status": "pending"}
    )
    pdf = render_pdf(report.detail)
    check_pdf_structure(pdf)
    assert b"(A\\(B\\)\\\\C caf\\351 ?)" in pdf
    assert b"(PENDING)" in pdf
