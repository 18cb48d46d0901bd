"""``bench/nightly.py`` reports a night's own peak memory, never its parent's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.nightly import peak_resident_bytes

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    held = bytearray(200 * MiB)
    for offset in range(0, len(held), 4096):
        held[offset] = 1  # resident, not only reserved
    assert peak_resident_bytes() >= 200 * MiB
    program = (
        "import json, resource; from bench.nightly import peak_resident_bytes; "
        "print(json.dumps([peak_resident_bytes(), "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    own, inherited = json.loads(answer.stdout)
    del held
    # ru_maxrss carries the parent's 200 MiB over exec; VmHWM is the child's alone.
    assert inherited >= 200 * MiB
    assert own < 100 * MiB
