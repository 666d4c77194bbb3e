"""Realistic QRM inspection reports: generation, list views and PDF rendering."""

from mock_qrm.server.reports.generator import (
    CAPA_STATUSES,
    FIRST_REPORT_ID,
    RESULTS,
    STATUSES,
    GeneratedReport,
    ReportGenerator,
    ReportOverrideError,
    list_item,
    with_pdf_url,
)
from mock_qrm.server.reports.pdf import render_pdf

__all__ = [
    "CAPA_STATUSES",
    "FIRST_REPORT_ID",
    "RESULTS",
    "STATUSES",
    "GeneratedReport",
    "ReportGenerator",
    "ReportOverrideError",
    "list_item",
    "render_pdf",
    "with_pdf_url",
]
