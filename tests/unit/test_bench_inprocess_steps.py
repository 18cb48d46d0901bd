"""``bench/inprocess.py --steps`` times the platform's real functions and puts them back."""

from __future__ import annotations

import contextlib
import importlib
from collections import defaultdict
from typing import Any

from bench.inprocess import STEPS, timed_steps


def _resolve(module: str, attribute: str) -> Any:
    owner: Any = importlib.import_module(module)
    for part in attribute.split("."):
        owner = getattr(owner, part)
    return owner


def test_every_step_names_a_function_of_the_platform() -> None:
    # A renamed or moved step would otherwise fail only when someone runs the benchmark.
    for _label, module, attribute, _depth in STEPS:
        assert callable(_resolve(module, attribute)), f"{module}.{attribute}"


def test_a_timed_step_is_counted_while_timed_and_every_step_restored_after() -> None:
    originals = [_resolve(module, attribute) for _label, module, attribute, _depth in STEPS]
    label, module, attribute, _depth = next(s for s in STEPS if s[2] == "read_message")
    spent: dict[str, float] = defaultdict(float)
    with timed_steps(spent):
        wrapped = _resolve(module, attribute)
        assert wrapped is not originals[STEPS.index((label, module, attribute, _depth))]
        # Not an envelope: it raises, and the time must still be counted.
        with contextlib.suppress(Exception):
            wrapped(None)
    assert label in spent
    restored = [_resolve(module, attribute) for _label, module, attribute, _depth in STEPS]
    assert all(a is b for a, b in zip(restored, originals, strict=True))
