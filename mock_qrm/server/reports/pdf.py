"""A one-page PDF of a report, written by hand so the mock needs no PDF library.

The output is plain PDF 1.4: the standard Helvetica fonts (no embedding), one
uncompressed content stream and an exact cross-reference table, so any reader
opens it and tests can find the text in the bytes. The same report always
renders to the same bytes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["render_pdf"]

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_MARGIN = 50
_MAX_DEFECT_LINES = 18
_RESULT_COLOURS = {"pass": "0.16 0.55 0.27", "fail": "0.78 0.16 0.16"}
_PENDING_COLOUR = "0.45 0.45 0.45"
_SEVERITIES = ("critical", "major", "minor")


def _pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsi (Latin-1 here), with unmappable characters as `?`."""
    out = bytearray(b"(")
    for byte in text.encode("latin-1", errors="replace"):
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif byte < 32 or byte > 126:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b")")


class _Page:
    """Content-stream operators, top-down, with a running cursor."""

    def __init__(self) -> None:
        self.ops: list[bytes] = []
        self.y = float(_PAGE_HEIGHT - _MARGIN)

    def text(self, x: float, y: float, text: str, *, size: float = 10, bold: bool = False) -> None:
        font = b"/F2" if bold else b"/F1"
        self.ops.append(b"BT %s %g Tf %g %g Td %s Tj ET" % (font, size, x, y, _pdf_string(text)))

    def fill(self, rgb: str, x: float, y: float, width: float, height: float) -> None:
        self.ops.append(b"%s rg %g %g %g %g re f 0 g" % (rgb.encode(), x, y, width, height))

    def rule(self, y: float) -> None:
        self.ops.append(
            b"0.75 G 0.5 w %g %g m %g %g l S 0 G" % (_MARGIN, y, _PAGE_WIDTH - _MARGIN, y)
        )

    def heading(self, title: str) -> None:
        self.y -= 22
        self.text(_MARGIN, self.y, title, size=12, bold=True)
        self.rule(self.y - 5)
        self.y -= 8

    def field(self, label: str, value: str) -> None:
        lines = textwrap.wrap(value, 70, break_long_words=True) or ["-"]
        for index, line in enumerate(lines):
            self.y -= 14
            if index == 0:
                self.text(_MARGIN, self.y, label, size=9, bold=True)
            self.text(_MARGIN + 130, self.y, line, size=9)

    def row(self, cells: Iterable[tuple[float, str]], *, bold: bool = False) -> None:
        self.y -= 14
        for x, cell in cells:
            self.text(_MARGIN + x, self.y, cell, size=9, bold=bold)

    def content(self) -> bytes:
        return b"\n".join(self.ops) + b"\n"


def _org(value: Any) -> str:
    if not isinstance(value, Mapping):
        return "-"
    place = ", ".join(str(value[k]) for k in ("city", "country") if value.get(k))
    name = str(value.get("name") or "-")
    return f"{name} ({place})" if place else name


def _day(value: Any) -> str:
    """A QRM timestamp shown as `2021-06-03 07:18 UTC` (or as given if unparseable)."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def _draw(report: Mapping[str, Any]) -> bytes:
    general: Mapping[str, Any] = report.get("inspectionGeneral") or {}
    standards = report.get("inspectionStandards") or []
    standard: Mapping[str, Any] = standards[0] if standards else {}
    defects = report.get("inspectionDefectList") or []
    kind = general.get("type") or {}
    result = str(general.get("inspectionResult") or "pending")
    page = _Page()

    page.fill("0.13 0.19 0.29", 0, _PAGE_HEIGHT - 90, _PAGE_WIDTH, 90)
    page.ops.append(b"1 g")
    page.text(_MARGIN, _PAGE_HEIGHT - 45, "Inspection Report", size=20, bold=True)
    page.text(
        _MARGIN,
        _PAGE_HEIGHT - 65,
        f"{_text(kind.get('typeOfInspection'))} - {_text(kind.get('typeOfInspectionName'))}",
        size=11,
    )
    page.fill(_RESULT_COLOURS.get(result, _PENDING_COLOUR), 425, _PAGE_HEIGHT - 68, 120, 34)
    page.ops.append(b"1 g")
    page.text(440, _PAGE_HEIGHT - 57, result.upper(), size=16, bold=True)
    page.ops.append(b"0 g")
    page.y = _PAGE_HEIGHT - 100

    page.heading("General")
    for label, value in (
        ("Case number", _text(general.get("caseNumber"))),
        ("Report ID", _text(general.get("id"))),
        ("Inspection ID", _text(general.get("inspectionId"))),
        ("Status", _text(general.get("status"))),
        ("Client", _org(general.get("client"))),
        ("Vendor", _org(general.get("vendor"))),
        ("Factory", _org(general.get("factory"))),
        ("PO number", _text(general.get("poNumber"))),
        ("Product orders", _text(general.get("productOrders"))),
        (
            "Styles",
            _text([s.get("styleId") for s in general.get("productStyles") or []]),
        ),
        ("Product line", _text(general.get("productLineName"))),
        ("Inspector", _text((general.get("inspector") or {}).get("name"))),
        ("Expected date", _day(general.get("expectedDate"))),
        ("Inspection date", _day(general.get("inspectionDate"))),
        ("Report created", _day(general.get("createdDate"))),
    ):
        page.field(label, value)

    page.heading("AQL result")
    aql = standard.get("aql") or {}
    page.field("Standard", f"{_text(aql.get('aqlName'))}, level {_text(aql.get('aqlLevel'))}")
    page.field(
        "Lot / sample size",
        f"{_text(standard.get('availableQuantity'))} / {_text(standard.get('minimumSampleSize'))}",
    )
    columns = (0.0, 130.0, 230.0, 330.0)
    page.row(zip(columns, ("Severity", "AQL", "Max allowed", "Found"), strict=True), bold=True)
    for severity in _SEVERITIES:
        cells = (
            severity.capitalize(),
            _text(aql.get(severity)),
            _text((standard.get("maxAllowed") or {}).get(severity)),
            _text((standard.get("defectFound") or {}).get(severity)),
        )
        page.row(zip(columns, cells, strict=True))
    page.field("Fail reason", _text(standard.get("failReason")))

    page.heading(f"Defects ({sum(int(d.get('totalDefects') or 0) for d in defects)})")
    if not defects:
        page.field("", "No defects recorded.")
    for defect in defects[:_MAX_DEFECT_LINES]:
        page.row(
            zip(
                (0.0, 30.0, 90.0, 365.0),
                (
                    _text(defect.get("totalDefects")),
                    _text(defect.get("clarification")),
                    _text(defect.get("defectName"))[:55],
                    _text(defect.get("itemId")),
                ),
                strict=True,
            )
        )
    if len(defects) > _MAX_DEFECT_LINES:
        page.field("", f"... and {len(defects) - _MAX_DEFECT_LINES} more")

    page.rule(_MARGIN + 12)
    page.text(
        _MARGIN, _MARGIN, "Generated by mock-qrm, a local stand-in for Inspectorio QRM.", size=8
    )
    page.text(_PAGE_WIDTH - _MARGIN - 25, _MARGIN, "1 / 1", size=8)
    return page.content()


def _info_date(general: Mapping[str, Any]) -> bytes:
    """The report's creation time as a PDF date, so output does not depend on the clock."""
    try:
        moment = datetime.fromisoformat(str(general.get("createdDate")))
    except ValueError:
        return b""
    return b" /CreationDate %s" % _pdf_string(moment.strftime("D:%Y%m%d%H%M%SZ"))


def render_pdf(report: Mapping[str, Any]) -> bytes:
    """The report (a `ReportResponse` object) as a valid one-page PDF 1.4 document."""
    general: Mapping[str, Any] = report.get("inspectionGeneral") or {}
    content = _draw(report)
    title = f"Inspection report {_text(general.get('caseNumber'))}"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d]"
        b" /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>"
        % (_PAGE_WIDTH, _PAGE_HEIGHT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%sendstream" % (len(content), content),
        b"<< /Title %s /Producer (mock-qrm)%s >>" % (_pdf_string(title), _info_date(general)),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (
        len(objects) + 1,
        len(objects),
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)
