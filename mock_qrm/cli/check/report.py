"""The results of `check-receiver` as a person, a script and a CI server read them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

from mock_qrm.cli.check.checks import CheckResult, Result

NAME_WIDTH = 17
"""The longest check name, `duplicate-message`: the details line up."""


def line(result: CheckResult) -> str:
    """`PASS  acknowledges-200   report.created for report 12301 ... was answered 200 in 4 ms.`"""
    return f"{result.result.value}  {result.name:<{NAME_WIDTH}}  {result.detail}"


def summary(results: Sequence[CheckResult]) -> str:
    counts = {r: sum(1 for c in results if c.result is r) for r in Result}
    parts = [f"{counts[Result.PASS]} passed"]
    if counts[Result.WARN]:
        parts.append(f"{counts[Result.WARN]} warned")
    if counts[Result.FAIL]:
        parts.append(f"{counts[Result.FAIL]} failed")
    verdict = "not ready for QRM" if counts[Result.FAIL] else "ready for QRM"
    return f"{len(results)} checks: {', '.join(parts)}: {verdict}"


def as_json(results: Sequence[CheckResult]) -> str:
    """`{"checks": [{"name", "result", "detail"}]}` (SPEC 8.5)."""
    checks = [{"name": r.name, "result": r.result.value, "detail": r.detail} for r in results]
    return json.dumps({"checks": checks}, indent=2, ensure_ascii=False)


def as_junit(results: Sequence[CheckResult], receiver_url: str) -> bytes:
    """JUnit XML, one testcase per check: FAIL is a <failure>, WARN a note in <system-out>."""
    failures = sum(1 for r in results if r.result is Result.FAIL)
    total = sum(r.seconds for r in results)
    suites = ET.Element(
        "testsuites", tests=str(len(results)), failures=str(failures), time=f"{total:.3f}"
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"mock-qrm check-receiver {receiver_url}",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{total:.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="mock-qrm.check-receiver",
            name=result.name,
            time=f"{result.seconds:.3f}",
        )
        if result.result is Result.FAIL:
            failure = ET.SubElement(case, "failure", message=result.detail, type="FAIL")
            failure.text = result.detail
        elif result.result is Result.WARN:
            ET.SubElement(case, "system-out").text = f"WARN: {result.detail}"
    ET.indent(suites)
    document: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit(path: Path, results: Sequence[CheckResult], receiver_url: str) -> None:
    path.write_bytes(as_junit(results, receiver_url))
