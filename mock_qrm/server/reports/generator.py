"""Realistic QRM inspection reports, shaped exactly as Inspectorio's `ReportResponse`.

Everything a report contains is drawn from a `random.Random` seeded with
(seed, report id), so a report can be rebuilt from its id alone, and the name
pools live in `fixtures/report_pool.json` so they can grow without code.
Field names, types and formats follow the reference OpenAPI document; where it
marks an object `nullable` next to a `$ref`, OpenAPI 3.0 ignores that, so
those objects are always present, never `null`.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from mock_qrm.fixtures import fixture_path
from mock_qrm.server.domain.records import FIRST_REPORT_ID, GeneratedReport
from mock_qrm.server.reports.overrides import (
    CAPA_STATUSES,
    CheckedOverrides,
    check_overrides,
    qrm_day,
    qrm_timestamp,
    rfc3339,
)

SEVERITIES = ("critical", "major", "minor")
SEED_SPAN = timedelta(days=90)

_PACKINGS = (("SOLID", "Solid"), ("SOLID-ASSORTMENT", "Solid; Assortment"))
_SIGNATURE_HOST = "https://files.qrm.example"


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# ---------------------------------------------------------------------------
# Pools


@dataclass(frozen=True, slots=True)
class _Pool:
    raw: dict[str, Any]
    lines: list[dict[str, Any]]
    line_weights: list[int]
    types: list[dict[str, Any]]
    type_weights: list[int]
    types_by_code: dict[str, dict[str, Any]]
    statuses: list[str]
    status_weights: list[int]
    fail_reasons: list[str]
    fail_reason_weights: list[int]
    factories_by_line: dict[str, list[dict[str, Any]]]
    defects_by_line: dict[str, dict[str, list[dict[str, Any]]]]
    sample_sizes: list[tuple[int, int]]
    acceptance: dict[int, dict[str, int]]


@cache
def _pool() -> _Pool:
    with fixture_path("report_pool.json").open(encoding="utf-8") as fh:
        raw: dict[str, Any] = json.load(fh)
    lines = raw["productLines"]
    defects_by_line: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for line in lines:
        candidates = line["defects"] + raw["commonDefects"]
        defects_by_line[line["name"]] = {
            severity: [d for d in candidates if severity in d["severities"]]
            for severity in SEVERITIES
        }
    table = raw["aqlTable"]
    return _Pool(
        raw=raw,
        lines=lines,
        line_weights=[line["weight"] for line in lines],
        types=raw["inspectionTypes"],
        type_weights=[t["weight"] for t in raw["inspectionTypes"]],
        types_by_code={t["code"]: t for t in raw["inspectionTypes"]},
        statuses=list(raw["statusWeights"]),
        status_weights=list(raw["statusWeights"].values()),
        fail_reasons=list(raw["failReasonWeights"]),
        fail_reason_weights=list(raw["failReasonWeights"].values()),
        factories_by_line={
            line["name"]: [f for f in raw["factories"] if line["name"] in f["lines"]]
            for line in lines
        },
        defects_by_line=defects_by_line,
        sample_sizes=[(int(lot), int(n)) for lot, n in table["sampleSizes"]],
        acceptance={int(n): dict(row) for n, row in table["acceptance"].items()},
    )


def _sample_size(pool: _Pool, lot: int) -> int:
    for ceiling, size in pool.sample_sizes:
        if lot <= ceiling:
            return min(size, lot)
    return pool.sample_sizes[-1][1]


def _allowed(pool: _Pool, sample: int, aql: str) -> int:
    """The acceptance number for an AQL at a sample size (0 for critical / unlisted AQLs)."""
    row = pool.acceptance.get(sample)
    if row is None:
        row = next(r for n, r in sorted(pool.acceptance.items()) if n >= sample)
    return row.get(aql, 0)


def _email(name: str, domain: str) -> str:
    return ".".join(re.findall(r"[a-z0-9]+", name.lower())) + "@" + domain


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _organisation(entry: Mapping[str, Any], *, local: bool, domain: str) -> dict[str, Any]:
    org: dict[str, Any] = {
        "organizationId": entry["organizationId"],
        "name": entry["name"],
        "address": entry["address"],
        "city": entry["city"],
        "country": entry["country"],
    }
    if "contact" in entry:
        digits = entry["organizationId"][-4:]
        org["contact"] = {
            "contactId": f"c-{entry['organizationId']}",
            "name": entry["contact"],
            "email": _email(entry["contact"], domain),
            "mobileNumber": f"+1555010{digits}",
            "telephoneNumber": f"+1555020{digits}",
        }
    if local:
        local_id = entry.get("localOrganizationId")
        org["localOrganizationId"] = local_id
        org["localOrganizationIds"] = [local_id] if local_id else None
    return org


def _token(text: str) -> str:
    """`Heather Grey` -> `HEATHERGREY`: a name as it appears inside item ids."""
    return _alnum(text).upper()


def _domain(name: str) -> str:
    return "".join(re.findall(r"[a-z0-9]+", name.lower())) + ".example"


def _case_number(
    client: Mapping[str, Any],
    type_code: str,
    booking: int,
    factory_name: str,
    packing: str,
    expected: datetime,
) -> str:
    """QRM's run-together case number, e.g. `5832DUPRO2019-00537345TESTMT...2019-12-095832IS`."""
    return "".join(
        [
            client["casePrefix"],
            type_code,
            f"{expected.year}-{booking}",
            client["code"],
            _alnum(factory_name),
            packing,
            expected.date().isoformat(),
            client["casePrefix"],
            "IS",
        ]
    )


def _alnum(text: str) -> str:
    return "".join(re.findall(r"[A-Za-z0-9]+", text))


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """`total` split into `parts` positive integers."""
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


# ---------------------------------------------------------------------------
# Generation


class ReportGenerator:
    """Builds reports deterministically from (seed, report id)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._pool = _pool()

    def generate(
        self,
        report_id: int,
        created_at: datetime,
        overrides: Mapping[str, Any] | None = None,
    ) -> GeneratedReport:
        """One report, uploaded at `created_at`; overrides are inspectionGeneral fields."""
        if created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        wanted = (
            overrides
            if isinstance(overrides, CheckedOverrides)
            else check_overrides(overrides or {})
        )
        detail = _Builder(self._pool, random.Random(f"{self.seed}/{report_id}")).build(
            report_id, _to_millis(created_at.astimezone(UTC)), wanted
        )
        return _summarise(report_id, detail)

    def seed_reports(
        self, count: int, now: datetime, first_id: int = FIRST_REPORT_ID
    ) -> list[GeneratedReport]:
        """`count` reports created over the 90 days before `now`, oldest first, ids ascending."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        start = now.astimezone(UTC) - SEED_SPAN
        step = SEED_SPAN / max(count, 1)
        reports = []
        for index in range(count):
            report_id = first_id + index
            jitter = random.Random(f"{self.seed}/{report_id}/created").random() * 0.9
            reports.append(self.generate(report_id, start + step * (index + jitter)))
        return reports


def _summarise(report_id: int, detail: dict[str, Any]) -> GeneratedReport:
    general = detail["inspectionGeneral"]
    inspected = general.get("inspectionDate")
    kind = general.get("type") or {}
    return GeneratedReport(
        id=report_id,
        inspection_id=general["inspectionId"],
        status=general["status"],
        created_at=datetime.fromisoformat(general["createdDate"]),
        updated_at=datetime.fromisoformat(general["updatedDate"]),
        system_updated_at=datetime.fromisoformat(general["systemUpdatedAt"]),
        inspection_date=datetime.fromisoformat(inspected) if inspected else None,
        case_number=general["caseNumber"],
        inspection_type=kind.get("typeOfInspection", ""),
        result=general["inspectionResult"],
        detail=detail,
    )


class _Builder:
    """One report's worth of draws; plan draws come first so overrides do not shift them."""

    def __init__(self, pool: _Pool, rng: random.Random) -> None:
        self.pool = pool
        self.rng = rng

    def build(self, report_id: int, created: datetime, wanted: Mapping[str, Any]) -> dict[str, Any]:
        pool, rng, raw = self.pool, self.rng, self.pool.raw

        # -- the plan: every unconditional draw, in a fixed order
        line = rng.choices(pool.lines, pool.line_weights)[0]
        itype = rng.choices(pool.types, pool.type_weights)[0]
        drawn_status = rng.choices(pool.statuses, pool.status_weights)[0]
        drawn_result = "fail" if rng.random() < raw["failRate"] else "pass"
        fail_reason = rng.choices(pool.fail_reasons, pool.fail_reason_weights)[0]
        client = rng.choice(raw["clients"])
        factory_entry = rng.choice(pool.factories_by_line[line["name"]])
        executor_entry = rng.choice(raw["executors"])
        office = rng.choice(raw["oversightOffices"])
        inspector_index = rng.randrange(len(raw["inspectors"]))
        creator_index = rng.randrange(len(raw["creators"]))
        styles = rng.sample(line["styles"], 2 if rng.random() < 0.3 else 1)
        share = rng.uniform(*itype["quantityShare"])
        opo = f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        po_lines = sorted(rng.sample(range(1, 13), 2 if rng.random() < 0.25 else 1))
        booking = rng.randint(10_000_000, 99_999_999)
        packing_code, packing_name = _PACKINGS[1] if rng.random() < 0.2 else _PACKINGS[0]
        inspected_before = timedelta(minutes=rng.randint(25, 540), milliseconds=rng.randint(0, 999))
        expected_lead = timedelta(days=rng.randint(0, 3))
        pending_ahead = timedelta(days=rng.randint(1, 14))
        tags = None if rng.random() < 0.3 else rng.sample(raw["tags"], rng.randint(1, 2))
        capa = rng.choice(CAPA_STATUSES)
        inspection_id = _uuid(rng)
        aql = raw["aqlStandards"][line["aql"]]

        # -- overrides that other fields derive from
        status, result = self._status_and_result(wanted, drawn_status, drawn_result)
        type_code = wanted["type"]["typeOfInspection"] if "type" in wanted else itype["code"]
        itype = pool.types_by_code.get(type_code, {**itype, "code": type_code, "name": type_code})
        created = (
            datetime.fromisoformat(wanted["createdDate"]) if "createdDate" in wanted else created
        )
        po_number = wanted.get("poNumber", f"{opo}-L{po_lines[0]:03d}")
        if "poNumber" in wanted:
            opo = po_number.rsplit("-L", 1)[0] if "-L" in po_number else opo
            orders = [po_number]
        else:
            orders = [f"{opo}-L{n:03d}" for n in po_lines]
        if "factory" in wanted:
            factory = wanted["factory"]
        else:
            factory = _organisation(
                factory_entry, local=True, domain=_domain(factory_entry["name"])
            )
        if "inspectionDate" in wanted:
            inspected_at: datetime | None = datetime.fromisoformat(wanted["inspectionDate"])
        elif status == "pending":
            inspected_at = None
        else:
            inspected_at = created - inspected_before
        expected = (
            _midnight(inspected_at) - expected_lead
            if inspected_at
            else _midnight(created + pending_ahead)
        )

        # -- the goods
        org_id = client["organizationId"]
        product_styles, items, lot = self._styles(line, styles, share, orders, packing_code)
        categories = list(dict.fromkeys(s["productCategoryId"] for s in product_styles))

        # -- the findings
        sample = _sample_size(self.pool, lot)
        allowed = {
            "critical": _allowed(self.pool, sample, aql["critical"]),
            "major": _allowed(self.pool, sample, aql["major"]),
            "minor": _allowed(self.pool, sample, aql["minor"]),
        }
        mode = result if result in ("pass", "fail") else status
        found = self._counts(mode, allowed, fail_reason)
        defects = self._defects(line, found, items, inspection_id, org_id)
        inspector_entry = raw["inspectors"][inspector_index]
        creator_name = raw["creators"][creator_index]["name"]
        client_domain = _domain(client["name"])

        general: dict[str, Any] = {
            "id": report_id,
            "inspectionId": inspection_id,
            "caseNumber": _case_number(
                client, itype["code"], booking, str(factory.get("name", "")), packing_code, expected
            ),
            "status": status,
            "inspectionResult": result,
            "type": {"typeOfInspection": itype["code"], "typeOfInspectionName": itype["name"]},
            "bookingType": "normal",
            "workflowName": f"{itype['code']} {line['name'].title()} workflow",
            "inspectionForm": itype["form"],
            "client": _organisation(client, local=True, domain=client_domain),
            "vendor": _organisation(
                raw["vendors"][factory_entry["vendor"]],
                local=True,
                domain=_domain(raw["vendors"][factory_entry["vendor"]]["name"]),
            ),
            "factory": factory,
            "inspectionLocation": dict(factory),
            "executor": _organisation(executor_entry, local=False, domain=""),
            "oversightOffice": dict(office),
            "inspector": {
                "id": str(7100 + inspector_index),
                "employeeId": inspector_entry["employeeId"],
                "name": inspector_entry["name"],
                "email": _email(inspector_entry["name"], _domain(executor_entry["name"])),
                "mobileNumber": f"+1555030{inspector_index:04d}",
            },
            "creator": {
                "id": str(8100 + creator_index),
                "name": creator_name,
                "email": _email(creator_name, client_domain),
                "mobileNumber": f"+1555040{creator_index:04d}",
            },
            "country": factory.get("country", factory_entry["country"]),
            "poNumber": po_number,
            "opoNumber": opo,
            "productOrders": orders,
            "pos": [{"poNumber": po} for po in orders],
            "productLineId": line["id"],
            "productLineName": line["name"],
            "productCategories": categories,
            "productStyles": product_styles,
            "isReferenceSample": 0,
            "tags": tags,
            "photos": [],
            "expectedDate": qrm_day(expected),
            "inspectionDate": qrm_timestamp(inspected_at) if inspected_at else None,
            "actualInspectionDate": rfc3339(_midnight(inspected_at)) if inspected_at else None,
            "createdDate": qrm_timestamp(created),
            "updatedDate": qrm_timestamp(created),
            "systemUpdatedAt": qrm_timestamp(created),
        }
        if inspected_at is None:
            del general["inspectionDate"]  # a string in the reference, never null
        if status == "completed" and result == "fail":
            general["capaStatus"] = capa
        general.update(wanted)
        general["type"] = {
            "typeOfInspection": itype["code"],
            "typeOfInspectionName": wanted.get("type", {}).get("typeOfInspectionName")
            or itype["name"],
        }

        standard = self._standard(
            aql, allowed, found, result, sample, lot, items, defects, packing_name, categories
        )
        standard = {"inspectionId": inspection_id, "organizationId": org_id, **standard}
        return {
            "inspectionGeneral": general,
            "inspectionDefectList": defects,
            "inspectionResult": self._checklist(line, status, result, inspection_id, org_id),
            "inspectionStandards": [standard],
            "inspectionSampleSelection": [
                {
                    "inspectionId": inspection_id,
                    "organizationId": org_id,
                    "sampleSelection": sample,
                    "sampleSize": sample,
                    "totalInspectionQuantity": lot,
                }
            ],
            "inspectionSampleSelectionSamples": [],
            "inspectionMeasurementDimensions": [],
            "inspectionPhotos": [],
            "inspectionQuestions": [],
            "inspectionRFID": [],
            "inspectionSpecialAttentionPoint": [],
            "inspectionEsignatures": (
                [
                    {
                        "id": rng.randint(100_000, 999_999),
                        "name": inspector_entry["name"],
                        "signature": f"{_SIGNATURE_HOST}/signatures/{inspection_id}.png",
                    }
                ]
                if status == "completed"
                else None
            ),
            "itemAttributes": None,
        }

    @staticmethod
    def _status_and_result(
        wanted: Mapping[str, Any], drawn_status: str, drawn_result: str
    ) -> tuple[str, str]:
        """Keep status and result coherent unless both are forced."""
        status = wanted.get("status")
        result = wanted.get("inspectionResult")
        if status is None:
            if result in ("pass", "fail"):
                status = "completed"
            elif result == "pending" and drawn_status == "completed":
                status = "in-progress"
            else:
                status = drawn_status
        if result is None:
            result = drawn_result if status == "completed" else "pending"
        return status, result

    def _styles(
        self,
        line: Mapping[str, Any],
        styles: Sequence[Mapping[str, Any]],
        share: float,
        orders: list[str],
        packing: str,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        """productStyles with their solids, the flat item list, and the lot size inspected."""
        rng = self.rng
        sizes = line["sizes"]
        product_styles: list[dict[str, Any]] = []
        all_items: list[dict[str, Any]] = []
        lot = 0
        for style in styles:
            category = line["categories"][style["category"]]
            colors = rng.sample(line["colors"], rng.randint(1, min(3, len(line["colors"]))))
            first = rng.randrange(len(sizes))
            style_sizes = sizes[first : first + rng.randint(2, 4)]
            case_pack = rng.choice((6, 12, 24))
            solids = []
            for color in colors:
                color_code = _token(color)
                for size in style_sizes:
                    item_id = f"{style['styleId']}-{color_code}-{_token(size)}"
                    quantity = rng.randint(4, 40) * case_pack
                    available = max(1, round(quantity * share))
                    lot += available
                    solid = {
                        "id": item_id,
                        "itemId": item_id,
                        "color": color,
                        "size": size,
                        "quantity": quantity,
                        "availableQuantity": available,
                        "casePackQuantity": case_pack,
                        "cartonQuantity": -(-quantity // case_pack),
                        "availableCartonQuantity": -(-available // case_pack),
                        "brandId": None,
                        "purchaseOrders": list(orders),
                    }
                    solids.append(solid)
                    all_items.append(
                        {
                            **solid,
                            "styleId": style["styleId"],
                            "styleName": style["styleName"],
                            "categoryId": category["id"],
                        }
                    )
            assortments = None
            if packing == "SOLID-ASSORTMENT":
                chosen = solids[: rng.randint(1, min(3, len(solids)))]
                assortments = [
                    {
                        "assortmentId": f"{style['styleId']}-ASST-{rng.randint(1, 9):02d}",
                        "cartonQuantity": rng.randint(10, 80),
                        "items": [
                            {
                                "itemId": s["itemId"],
                                "color": s["color"],
                                "size": s["size"],
                                "configuration": rng.randint(1, 4),
                                "purchaseOrders": list(orders),
                            }
                            for s in chosen
                        ],
                    }
                ]
            product_styles.append(
                {
                    "styleId": style["styleId"],
                    "styleName": style["styleName"],
                    "productCategoryId": category["id"],
                    "productCategoryName": category["name"],
                    "solids": solids,
                    "assortments": assortments,
                    "measurements": self._measurements(line, style_sizes),
                }
            )
        return product_styles, all_items, lot

    @staticmethod
    def _measurements(line: Mapping[str, Any], sizes: Sequence[str]) -> list[dict[str, Any]]:
        charts: list[dict[str, Any]] = []
        offset = line["sizes"].index(sizes[0]) - 2
        for pom in line["measurements"]:
            tolerance = float(pom["tolerance"])
            charts.append(
                {
                    "pom": pom["pom"],
                    "caption": pom["caption"],
                    "unit": "cm",
                    "tolerance": f"{tolerance:.1f}",
                    "toleranceLower": tolerance,
                    "toleranceUpper": tolerance,
                    "isPomCritical": bool(pom["critical"]),
                    "sizes": [
                        {
                            "size": size,
                            "measurement": f"{pom['base'] + pom['step'] * (offset + i):.1f}",
                        }
                        for i, size in enumerate(sizes)
                    ],
                }
            )
        return charts

    def _counts(self, mode: str, allowed: Mapping[str, int], fail_reason: str) -> dict[str, int]:
        """Defects found by severity: within every limit to pass, over one limit to fail."""
        rng = self.rng
        within = {s: int(allowed[s] * rng.random() ** 2 + 0.5) for s in SEVERITIES}
        if mode == "fail":
            reason_at = SEVERITIES.index(fail_reason)
            found = {}
            for at, severity in enumerate(SEVERITIES):
                if at < reason_at:
                    found[severity] = min(within[severity], allowed[severity])
                elif at == reason_at:
                    extra = rng.randint(1, 2 if severity == "critical" else 4)
                    found[severity] = allowed[severity] + extra
                else:
                    found[severity] = within[severity]
            return found
        if mode == "pass":
            return within
        if mode == "in-progress":
            return {s: n // 2 for s, n in within.items()}
        return dict.fromkeys(SEVERITIES, 0)

    def _defects(
        self,
        line: Mapping[str, Any],
        found: Mapping[str, int],
        items: Sequence[Mapping[str, Any]],
        inspection_id: str,
        org_id: str,
    ) -> list[dict[str, Any]]:
        rng = self.rng
        comments = self.pool.raw["defectComments"]
        catalogue = self.pool.defects_by_line[line["name"]]
        defects: list[dict[str, Any]] = []
        for severity in SEVERITIES:
            total = found[severity]
            if total == 0:
                continue
            kinds = rng.sample(
                catalogue[severity], min(rng.randint(1, 3), total, len(catalogue[severity]))
            )
            for kind, count in zip(kinds, _split(rng, total, len(kinds)), strict=True):
                item = rng.choice(items)
                number = len(defects) + 1
                defects.append(
                    {
                        "id": _uuid(rng),
                        "defectId": f"{inspection_id}_workmanship_{number}",
                        "inspectionId": inspection_id,
                        "organizationId": org_id,
                        "group": "workmanship",
                        "clarification": severity,
                        "defectCategory": kind["category"],
                        "defectCode": kind["code"],
                        "defectName": f"{kind['code']} - {kind['name']}",
                        "totalDefects": count,
                        "styleId": item["styleId"],
                        "itemId": item["itemId"],
                        "itemDescription": item["styleName"],
                        "color": item["color"],
                        "size": item["size"],
                        "productCategory": [item["categoryId"]],
                        "comment": rng.choice(comments) if rng.random() < 0.6 else None,
                        "photos": [],
                    }
                )
        return defects

    @staticmethod
    def _standard(
        aql: Mapping[str, Any],
        allowed: Mapping[str, int],
        found: Mapping[str, int],
        result: str,
        sample: int,
        lot: int,
        items: Sequence[Mapping[str, Any]],
        defects: Sequence[Mapping[str, Any]],
        packing: str,
        categories: Sequence[str],
    ) -> dict[str, Any]:
        """The AQL verdict: counts are strings here, as the reference types them."""
        counts = {s: str(found[s]) for s in SEVERITIES}
        total = sum(found.values())
        standard: dict[str, Any] = {
            "group": "workmanship",
            "determineType": "aqlTable",
            "determineDesc": "AQL Standard",
            "determineValue": 0,
            "doubleSampling": False,
            "defectiveUnitActivate": False,
            "aql": {
                "aqlId": aql["aqlId"],
                "aqlName": aql["aqlName"],
                "aqlLevel": aql["aqlLevel"],
                "critical": aql["critical"],
                "major": aql["major"],
                "minor": aql["minor"],
                "source": "inspectorio",
            },
            "availableQuantity": lot,
            "minimumSampleSize": sample,
            "maximumSampleSize": sample,
            "sampleSizeCategory": [
                {"productCategory": c, "sampleSize": sample} for c in categories
            ],
            "packingType": packing,
            "totalItems": len(items),
            "maxAllowed": {s: str(allowed[s]) for s in SEVERITIES},
            "defectFound": counts,
            "countedForAql": dict(counts),
            "totalDefects": str(total),
            "noOfDefectiveUnits": min(total, sample),
            "noOfDefectiveItems": len({d["itemId"] for d in defects}),
        }
        over = [s for s in SEVERITIES if found[s] > allowed[s]]
        if result == "fail" and over:
            standard["failReason"] = over[0]
        return standard

    def _checklist(
        self, line: Mapping[str, Any], status: str, result: str, inspection_id: str, org_id: str
    ) -> list[dict[str, Any]]:
        """inspectionResult: one row per checklist section, Workmanship carrying the verdict."""
        rng = self.rng
        template = _uuid(rng)
        rows = []
        for section in self.pool.raw["checklistSections"]:
            if status == "pending":
                verdict = "pending"
            elif section == "Workmanship":
                verdict = result
            elif section == "Measurement" and not line["measurements"]:
                verdict = "non-applicable"
            elif section == "On-site Tests":
                verdict = "non-applicable" if rng.random() < 0.5 else "pass"
            else:
                verdict = "pass"
            rows.append(
                {
                    "resultId": f"{template}_{_uuid(rng)}",
                    "groupName": section,
                    "status": verdict,
                    "includeInReport": True,
                    "inspectionId": inspection_id,
                    "organizationId": org_id,
                }
            )
        return rows


# ---------------------------------------------------------------------------
# Views

# ReportListInspectionGeneral: InspectionGeneral minus `photos` and `pos`, plus our integer `id`.
LIST_FIELDS = (
    "id",
    "inspectionId",
    "caseNumber",
    "status",
    "inspectionResult",
    "type",
    "bookingType",
    "workflowName",
    "inspectionForm",
    "client",
    "vendor",
    "factory",
    "inspectionLocation",
    "executor",
    "oversightOffice",
    "inspector",
    "creator",
    "country",
    "poNumber",
    "opoNumber",
    "productOrders",
    "productLineId",
    "productLineName",
    "productCategories",
    "productStyles",
    "isReferenceSample",
    "tags",
    "capaStatus",
    "pdfUrl",
    "expectedDate",
    "inspectionDate",
    "actualInspectionDate",
    "createdDate",
    "updatedDate",
    "systemUpdatedAt",
)


def _without_purchase_orders(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "purchaseOrders"}


def _list_style(style: Mapping[str, Any]) -> dict[str, Any]:
    """ReportListProductStyle: the booking shapes of solids and assortments (no purchaseOrders)."""
    listed = dict(style)
    if style.get("solids"):
        listed["solids"] = [_without_purchase_orders(s) for s in style["solids"]]
    if style.get("assortments"):
        listed["assortments"] = [
            {**a, "items": [_without_purchase_orders(i) for i in a["items"]]}
            for a in style["assortments"]
        ]
    return listed


def list_item(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The `ReportListInspectionGeneral` entry of `GET /api/v1/reports` for this report."""
    general = detail["inspectionGeneral"]
    item = {name: general[name] for name in LIST_FIELDS if name in general}
    if item.get("productStyles"):
        item["productStyles"] = [_list_style(s) for s in item["productStyles"]]
    return item


def with_pdf_url(detail: Mapping[str, Any], pdf_url: str | None) -> dict[str, Any]:
    """A copy with `inspectionGeneral.pdfUrl` set, or absent when the file is not ready.

    The reference types `pdfUrl` as a non-nullable string, so "not ready" is
    an absent key rather than `null`.
    """
    general = dict(detail["inspectionGeneral"])
    if pdf_url is None:
        general.pop("pdfUrl", None)
    else:
        general["pdfUrl"] = pdf_url
    return {**detail, "inspectionGeneral": general}
