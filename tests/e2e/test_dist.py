"""`make dist`'s wheel is what the README tells another project to install.

It carries both commands, the pytest plugin's entry point and the data files, and
the packages it holds run from it alone, not from this checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_wheel_carries_the_commands_the_plugin_and_the_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            tmp_path,
            ROOT,
        ],
        check=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("qrm_tui-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        declared = archive.read(entry_points).decode()
        archive.extractall(tmp_path / "site")
    assert "mock-qrm = mock_qrm.cli:main" in declared
    assert "qrm-tui = qrm_tui.__main__:main" in declared
    assert "[pytest11]\nmock_qrm = mock_qrm.testing.plugin" in declared
    assert not [name for name in names if "__pycache__" in name or name.startswith("tests/")]

    # From the wheel's files alone: the event catalog and a generated report.
    probe = (
        "import datetime, mock_qrm;"
        "from mock_qrm.contract.catalog import EventCatalog;"
        "from mock_qrm.server.reports.generator import ReportGenerator;"
        "print(mock_qrm.__file__); print(sorted(EventCatalog.load().codes));"
        "print(ReportGenerator().generate(1, datetime.datetime.now(datetime.UTC)).id)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    assert result.returncode == 0, result.stderr
    where, codes, generated = result.stdout.splitlines()
    assert where.startswith(str(tmp_path / "site"))
    assert codes == "['report.created', 'report.file_ready']"
    assert generated == "1"
