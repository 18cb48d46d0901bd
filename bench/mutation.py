"""``make mutation``: mutation testing of the platform's rules, one group of modules at a time.

Run ``.venv/bin/python bench/mutation.py [GROUP or module ...] [--max-children N]``. The
modules and the unit tests that judge them are ``[tool.mutmut]`` in ``pyproject.toml``;
mutmut (pinned in the dev dependencies) keeps its mutants and results in ``mutants/``, so a
run goes on where the last one stopped and a group can be run alone on a busy machine.
Without arguments every group runs, in the order below. Then it prints, per module, the
mutants killed and survived and the surviving share (goal: at most 5%), and every survivor's
name (``.venv/bin/mutmut show NAME`` shows its change); ``docs/mutation.md`` says why each
one left is harmless. Exit status 1 when a module's share is above the goal.

Not part of ``make test``: on two cores a full run takes hours.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
MUTMUT: Final = Path(sys.executable).with_name("mutmut")
#: The groups of the brief: security, routing, replay cache, sending ledger, NemSMS rules,
#: snapshot diff (mutmut names a mutant ``module.function__mutmut_N``).
GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "sms-rules": ("integrations.sf2250.sf1600.sms_rules.*",),
    "replay": ("serviceplatform.security.replay.*", "serviceplatform.store.replay.*"),
    "sendings": ("integrations.sf2250.sendings.*",),
    "security": ("serviceplatform.security.*",),
    "routing": ("serviceplatform.routing.*",),
    "snapshots": ("integrations.sf2250.snapshot_store.*", "integrations.sf2250.entry_codes.*"),
}
GOAL: Final = 0.05
#: mutmut's words for a mutant that the tests caught, and for one they did not.
CAUGHT: Final = frozenset({"killed", "timeout", "segfault"})
MISSED: Final = frozenset({"survived", "no tests", "suspicious"})


def patterns(selected: list[str]) -> list[str]:
    """The mutant name patterns of the groups or modules named (all groups for none)."""
    if not selected:
        return [pattern for group in GROUPS.values() for pattern in group]
    found: list[str] = []
    for name in selected:
        found += GROUPS.get(name, (name if name.endswith("*") else name + ".*",))
    return found


def results() -> dict[str, str]:
    """Every mutant's state, by name, as ``mutmut results --all true`` prints it."""
    listing = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states: dict[str, str] = {}
    for line in listing.splitlines():
        name, separator, state = line.strip().rpartition(": ")
        if separator:
            states[name] = state
    return states


def module_of(mutant: str) -> str:
    """``pkg.module`` of ``pkg.module.x_function__mutmut_3`` or ``pkg.module.xǁClassǁm__mutmut_3``.

    The mutant's own name is the last dotted part (a method's class is joined with ``ǁ``); a
    module whose name starts with ``x`` (``xmldsig_verify``) is still a module.
    """
    return mutant.rsplit(".", 1)[0]


def report(states: dict[str, str], wanted: list[str]) -> tuple[str, bool]:
    """The per-module table and the survivors; whether every module met the goal."""
    prefixes = [pattern.rstrip("*").rstrip(".") for pattern in wanted]
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for name, state in sorted(states.items()):
        if not any(name.startswith(prefix + ".") for prefix in prefixes):
            continue
        by_module[module_of(name)][state] += 1
        if state in MISSED:
            survivors.append(f"{name}: {state}")
    lines = [f"{'module':55} {'killed':>7} {'missed':>7} {'unrun':>7} {'missed %':>9}"]
    met = True
    total_caught = total_missed = 0
    for module, counts in sorted(by_module.items()):
        caught = sum(counts[s] for s in CAUGHT)
        missed = sum(counts[s] for s in MISSED)
        unrun = sum(counts.values()) - caught - missed
        share = missed / (caught + missed) if caught + missed else 0.0
        met = met and share <= GOAL
        total_caught += caught
        total_missed += missed
        lines.append(f"{module:55} {caught:7} {missed:7} {unrun:7} {100 * share:8.1f}%")
    checked = total_caught + total_missed
    overall = 100 * total_missed / checked if checked else 0.0
    lines.append(f"{'all':55} {total_caught:7} {total_missed:7} {'':7} {overall:8.1f}%")
    lines += ["", "survivors:", *survivors]
    return "\n".join(lines), met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"groups ({', '.join(GROUPS)}) or modules")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="run nothing, only report")
    args = parser.parse_args(argv)
    wanted = patterns(args.names)
    if not args.report_only:
        for pattern in wanted:
            print(f"== mutmut run {pattern}", flush=True)
            command = [str(MUTMUT), "run", "--max-children", str(args.max_children), pattern]
            subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    text, met = report(results(), wanted)
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
