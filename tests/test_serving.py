"""`settle_heap`: the collector settings of a process that serves (`mock-qrm serve`, `receiver`)."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import gc, json
import mock_qrm.app  # what `mock-qrm serve` has loaded by the time it listens
from mock_qrm.serving import YOUNG_OBJECTS, settle_heap

before = gc.get_threshold()
settle_heap()
after = gc.get_threshold()
frozen = gc.get_freeze_count()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle, made after the freeze
del a, b
print(json.dumps({"before": before, "after": after, "young": YOUNG_OBJECTS,
                  "frozen": frozen, "collected": gc.collect()}))
"""


def test_a_serving_process_freezes_its_start_up_and_collects_young_objects_less_often() -> None:
    # In a process of its own: the settings are process-wide, and this one is pytest's.
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(probe.stdout)

    assert seen["before"][0] < seen["young"]  # Python's default (700 on 3.11-3.13) is lower
    assert seen["after"] == [seen["young"], *seen["before"][1:]]
    assert seen["frozen"] > 10_000  # modules, schemas: what start-up made
    assert seen["collected"] >= 2  # what is made afterwards is still collected
