"""Realistic QRM inspection reports: what an upload may set (`overrides`), generation,
list views and PDF rendering."""

from mock_qrm.server.domain.records import FIRST_REPORT_ID, GeneratedReport
from mock_qrm.server.reports.generator import ReportGenerator, list_item, with_pdf_url
from mock_qrm.server.reports.overrides import ReportOverrideError, check_overrides
from mock_qrm.server.reports.pdf import render_pdf

__all__ = [
    "FIRST_REPORT_ID",
    "GeneratedReport",
    "ReportGenerator",
    "ReportOverrideError",
    "check_overrides",
    "list_item",
    "render_pdf",
    "with_pdf_url",
]
