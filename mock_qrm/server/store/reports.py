"""Report rows: QRM's document as JSON, plus the columns the list filters on."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mock_qrm.contract.models import ReportQuery, ReportRow
from mock_qrm.contract.timefmt import from_ms, to_ms
from mock_qrm.server.domain.records import GeneratedReport
from mock_qrm.server.store.db import Database


@dataclass(frozen=True, slots=True)
class StoredReport:
    id: int
    inspection_id: str
    document: dict[str, Any]
    file_ready: bool


def _opt_ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_ms(moment)


def save_report(
    conn: sqlite3.Connection, report: GeneratedReport, file_ready_at: float | None
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO reports (id, inspection_id, status, case_number, inspection_type,"
        " result, created_at, updated_at, system_updated_at, inspection_date, file_ready_at, document)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            report.id,
            report.inspection_id,
            report.status,
            report.case_number,
            report.inspection_type,
            report.result,
            to_ms(report.created_at),
            to_ms(report.updated_at),
            to_ms(report.system_updated_at),
            _opt_ms(report.inspection_date),
            None if file_ready_at is None else round(file_ready_at * 1000),
            json.dumps(report.detail, separators=(",", ":")),
        ),
    )


def report_exists(conn: sqlite3.Connection, report_id: int) -> bool:
    return conn.execute("SELECT 1 FROM reports WHERE id = ?", (report_id,)).fetchone() is not None


def mark_file_ready(conn: sqlite3.Connection, report_id: int, at: float) -> None:
    conn.execute(
        "UPDATE reports SET file_ready_at = COALESCE(file_ready_at, ?) WHERE id = ?",
        (round(at * 1000), report_id),
    )


_RANGES = (
    ("created_from", "created_at", ">="),
    ("created_to", "created_at", "<="),
    ("updated_from", "updated_at", ">="),
    ("updated_to", "updated_at", "<="),
    ("system_updated_from", "system_updated_at", ">="),
    ("system_updated_to", "system_updated_at", "<="),
    ("inspection_date_from", "inspection_date", ">="),
    ("inspection_date_to", "inspection_date", "<="),
)


def _where(query: ReportQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.status is not None:
        clauses.append("status = ?")
        params.append(query.status)
    for field, column, op in _RANGES:
        value: datetime | None = getattr(query, field)
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(to_ms(value))
    if query.capa_status is not None:
        clauses.append("json_extract(document, '$.inspectionGeneral.capaStatus') = ?")
        params.append(query.capa_status)
    if query.style_id is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(document, '$.inspectionGeneral.productStyles')"
            " WHERE json_extract(value, '$.styleId') = ?)"
        )
        params.append(query.style_id)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _stored(row: sqlite3.Row) -> StoredReport:
    return StoredReport(
        id=row["id"],
        inspection_id=row["inspection_id"],
        document=json.loads(row["document"]),
        file_ready=row["file_ready_at"] is not None,
    )


async def list_reports(db: Database, query: ReportQuery) -> tuple[list[StoredReport], int]:
    where, params = _where(query)
    direction = "ASC" if query.order.endswith("asc") else "DESC"
    rows = await db.fetchall(
        f"SELECT id, inspection_id, document, file_ready_at FROM reports{where}"
        f" ORDER BY created_at {direction}, id {direction} LIMIT ? OFFSET ?",
        (*params, query.limit, query.offset),
    )
    total = await db.fetchone(f"SELECT COUNT(*) FROM reports{where}", tuple(params))
    return [_stored(row) for row in rows], int(total[0]) if total else 0


async def get_report(db: Database, report_id: str) -> StoredReport | None:
    """By numeric id or by `inspectionId` UUID."""
    numeric = report_id.isascii() and report_id.isdigit() and len(report_id) <= 18
    column = "id" if numeric else "inspection_id"
    row = await db.fetchone(
        f"SELECT id, inspection_id, document, file_ready_at FROM reports WHERE {column} = ?",
        (int(report_id) if column == "id" else report_id,),
    )
    return None if row is None else _stored(row)


async def report_rows(db: Database, limit: int, offset: int) -> tuple[list[ReportRow], int]:
    """The columns the TUI lists, newest first."""
    rows = await db.fetchall(
        "SELECT id, inspection_id, case_number, inspection_type, result, status, created_at,"
        " file_ready_at FROM reports ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        (limit, offset),
    )
    total = await db.fetchone("SELECT COUNT(*) FROM reports")
    return [report_row(row) for row in rows], int(total[0]) if total else 0


def report_row(row: sqlite3.Row) -> ReportRow:
    return ReportRow(
        id=row["id"],
        inspection_id=row["inspection_id"],
        case_number=row["case_number"],
        inspection_type=row["inspection_type"],
        result=row["result"],
        status=row["status"],
        created_at=from_ms(row["created_at"]),
        file_ready=row["file_ready_at"] is not None,
    )


_ROW_BY_ID = (
    "SELECT id, inspection_id, case_number, inspection_type, result, status, created_at,"
    " file_ready_at FROM reports WHERE id = ?"
)


def report_row_in(conn: sqlite3.Connection, report_id: int) -> ReportRow | None:
    """A report's list row, as the writer's transaction sees it."""
    row = conn.execute(_ROW_BY_ID, (report_id,)).fetchone()
    return None if row is None else report_row(row)


async def count_reports(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) FROM reports")
    return int(row[0]) if row else 0
