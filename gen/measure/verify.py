"""``accelgen verify`` / ``make verify``: every formal check, one progress line each, into a
report (``report.json``, ``report.md``) and the README's Verification table.

The checks, for every row of :data:`sim.contracts.FORMAL_TARGETS`:

- **contract**: the block's stream contract (handshakes; words out against words in: none
  duplicated, none from before a reset, none lost after a drain where the contract has one)
  proven *unbounded* by k-induction where the row has an ``induction`` depth and the
  invariants that make it converge, else *bounded* (BMC) to the row's depth; with a cover
  run showing that words flow.
- **long-run mutant**: the block with a bug that only a long run shows
  (:class:`sim.formal.WrapMutant`: a transfer counter that wraps past the BMC depth and
  duplicates a word, or withdraws a valid, at the wrap). BMC at the row's depth must miss it
  (pass) and the unbounded proof must not pass.

and the reduction tree's equivalence with a delayed direct sum for every ``n`` in 1..16 and
one or two levels per register stage, unbounded, plus a wrong tree that must fail.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..emit import atomic_write, replace_between_markers

__all__ = ["Check", "all_checks", "run_checks", "write_verify", "markdown_report",
           "readme_summary", "tree_equivalence", "wrap_mutant", "README_MARKERS"]

#: The README's Verification summary lies between these.
README_MARKERS = ("<!-- verify:start -->\n", "<!-- verify:end -->\n")


@dataclass(frozen=True)
class Check:
    """One formal check: ``run()`` returns its report row (without the seconds)."""

    name: str
    block: str
    prop: str
    run: Callable[[], dict]


def _proof_name(text: str) -> str:
    return "verify_" + re.sub(r"\W+", "_", text).strip("_")


def _contract_property(info: dict) -> str:
    if not info["pairs"]:
        return "handshakes (valid and payload held until ready)"
    if info["lossless"] and info.get("reported"):
        return ("handshakes; no word lost unreported (a drop pulses overrun), duplicated or "
                "from before a reset")
    if info["lossless"] and info.get("answering"):
        return ("handshakes; no word lost once the AXI slave answers, duplicated or from "
                "before a reset")
    return ("handshakes; no word lost, duplicated or from before a reset" if info["lossless"] else
            "handshakes; no word duplicated or from before a reset (no-loss not checked)")


def _contract_check(name: str, target) -> Check:
    def run() -> dict:
        from sim.formal import prove

        h, bmc_depth = target.make()
        if target.induction is None:
            result = prove(h, _proof_name(f"{name}_contract"), depth=bmc_depth)
            return {"proof": "bounded", "depth": bmc_depth, "engine": result.engine,
                    "status": "pass"}
        result = prove(h, _proof_name(f"{name}_contract"), depth=target.induction,
                       mode="prove", cover_depth=bmc_depth)
        return {"proof": "unbounded", "depth": target.induction, "engine":
                f"{result.engine} (k-induction)", "status": "pass"}

    return Check(f"{name}: contract", name, _contract_property(target.describe()), run)


def wrap_mutant(target):
    """The long-run mutant of a target: a ``bits``-wide transfer counter, ``2**bits`` beyond
    the target's BMC depth."""
    from sim.formal import WrapMutant

    info = target.describe()
    kind = "duplicates" if info["pairs"] else "drops-valid"
    return WrapMutant(bits=info["depth"].bit_length(), kind=kind), info["depth"]


def _mutant_check(name: str, target) -> Check:
    mutant, depth = wrap_mutant(target)
    what = ("a word duplicated" if mutant.kind == "duplicates" else "a valid withdrawn")

    def run() -> dict:
        from sim.formal import ProofError, prove

        if target.induction is None:  # nothing would catch it: BMC to depth cannot reach it
            return {"proof": "-", "depth": None, "engine": "-", "status": "not run",
                    "detail": "no unbounded proof of this block to catch it"}
        h, _ = target.make(mutant=mutant)
        prove(h, _proof_name(f"{name}_mutant_bmc"), depth=depth, cover=False)
        h, _ = target.make(mutant=mutant)
        try:
            prove(h, _proof_name(f"{name}_mutant_prove"), depth=target.induction,
                  mode="prove", cover=False)
        except ProofError as error:
            return {"proof": "unbounded", "depth": target.induction,
                    "engine": "smtbmc yices (k-induction)", "status": "caught",
                    "detail": f"BMC to {depth} passes; the unbounded proof fails: "
                    f"{str(error).split(': ', 2)[-1].split(' (')[0]}"}
        return {"proof": "unbounded", "depth": target.induction,
                "engine": "smtbmc yices (k-induction)", "status": "FAIL",
                "detail": "the unbounded proof passed a broken block"}

    return Check(f"{name}: long-run mutant", name,
                 f"mutant: {what} at transfer {2 ** mutant.bits} must fail", run)


def tree_equivalence(n: int, levels_per_stage: int, *, width: int = 6, wrong: bool = False):
    """Prove the reduction tree (``n`` inputs) equal to a delayed direct sum, unbounded;
    ``wrong``: against a sum one register late (must raise ProofError)."""
    from golden.reduction_tree import ReductionTreeConfig
    from hw.reduction_tree import ReductionTree
    from sim.contracts import DirectSum, tree_invariants
    from sim.formal import prove_equivalent

    config = ReductionTreeConfig(n=n, width=width, signed=True,
                                 levels_per_stage=levels_per_stage)
    tree = ReductionTree(config)
    spec = DirectSum(config, tree.latency + wrong)
    return prove_equivalent(
        tree, spec, _proof_name(f"tree_{n}_{levels_per_stage}_{'wrong' if wrong else 'eq'}"),
        inputs=lambda c: [c.en, c.i], outputs=lambda c: [c.o], depth=1 if not wrong else 4,
        mode="prove", invariants=None if wrong else tree_invariants)


def _tree_check(n: int, levels_per_stage: int) -> Check:
    def run() -> dict:
        result = tree_equivalence(n, levels_per_stage)
        return {"proof": "unbounded", "depth": result.depth,
                "engine": f"{result.engine} (k-induction)", "status": "pass"}

    return Check(f"reduction-tree n={n} levels/stage={levels_per_stage}: equivalence",
                 "reduction-tree", f"equals a delayed direct sum (n={n}, "
                 f"{levels_per_stage} level(s)/stage, 6-bit signed)", run)


def _wrong_tree_check() -> Check:
    def run() -> dict:
        from sim.formal import ProofError

        try:
            tree_equivalence(4, 1, width=3, wrong=True)
        except ProofError:
            return {"proof": "unbounded", "depth": 4, "engine": "smtbmc yices (k-induction)",
                    "status": "caught", "detail": "outputs differ"}
        return {"proof": "unbounded", "depth": 4, "engine": "smtbmc yices (k-induction)",
                "status": "FAIL", "detail": "a wrong tree proved equal"}

    return Check("reduction-tree: wrong tree", "reduction-tree",
                 "mutant: a tree one register short of the sum must fail", run)


def all_checks() -> list[Check]:
    """Every check of ``make verify``, in report order."""
    from sim.contracts import FORMAL_TARGETS

    checks = []
    for name, target in FORMAL_TARGETS.items():
        checks += [_contract_check(name, target), _mutant_check(name, target)]
    checks += [_tree_check(n, lps) for lps in (1, 2) for n in range(1, 17)]
    checks.append(_wrong_tree_check())
    return checks


def _run_one(check: Check) -> dict:
    started = time.monotonic()
    try:
        row = check.run()
    except AssertionError as error:  # ProofError: the proof failed
        row = {"proof": "-", "depth": None, "engine": "smtbmc yices", "status": "FAIL",
               "detail": str(error)}
    return {"check": check.name, "block": check.block, "property": check.prop, **row,
            "seconds": round(time.monotonic() - started, 1)}


def run_checks(checks: list[Check], *, jobs: int = 2,
               on_progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run ``checks`` on ``jobs`` parallel solvers; one progress line per finished check.
    Rows come back in the order of ``checks``."""
    rows: dict[int, dict] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_one, check): k for k, check in enumerate(checks)}
        for done, future in enumerate(as_completed(futures), 1):
            row = rows[futures[future]] = future.result()
            if on_progress:
                depth = "" if row["depth"] is None else f" {_depth_text(row)}"
                on_progress(f"[{done}/{len(checks)}] {row['check']}: {row['status']} "
                            f"({row['proof']}{depth}) {row['seconds']:.1f} s")
    return [rows[k] for k in range(len(checks))]


def _depth_text(row: dict) -> str:
    return f"k={row['depth']}" if row["proof"] == "unbounded" else f"depth {row['depth']}"


def markdown_report(rows: list[dict], machine: dict | None = None) -> str:
    """The full table: block, property, unbounded/bounded, depth, engine, seconds, result."""
    lines = ["| block | property | proof | depth | engine | seconds | result |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        depth = "" if row["depth"] is None else _depth_text(row)
        lines.append(f"| {row['block']} | {row['property']} | {row['proof']} | {depth} | "
                     f"{row['engine']} | {row['seconds']:.1f} | {row['status']} |")
    return "\n".join(lines) + "\n"


def readme_summary(report: dict) -> str:
    """The README's table: one line per block (its contract, its long-run mutant) and the
    tree equivalences in one line."""
    rows = report["checks"]
    lines = ["| block | stream contract | proof | long-run mutant |", "|---|---|---|---|"]
    blocks = list(dict.fromkeys(r["block"] for r in rows if r["check"].endswith(": contract")))
    for block in blocks:
        contract = next(r for r in rows if r["check"] == f"{block}: contract")
        mutant = next((r for r in rows if r["check"] == f"{block}: long-run mutant"), None)
        proof = (f"{contract['proof']} ({_depth_text(contract)}), {contract['status']}"
                 if contract["depth"] is not None else contract["status"])
        lines.append(f"| {block} | {contract['property']} | {proof} | "
                     f"{mutant['status'] if mutant else '-'} |")
    trees = [r for r in rows if r["check"].endswith(": equivalence")]
    if trees:
        passed = sum(r["status"] == "pass" for r in trees)
        lines.append(f"| reduction-tree | equals a delayed direct sum, n = 1..16, 1 or 2 "
                     f"levels/stage | unbounded, {passed} of {len(trees)} pass | "
                     f"{next((r['status'] for r in rows if 'wrong tree' in r['check']), '-')} |")
    cpu = sum(r["seconds"] for r in rows)
    full = report.get("last_full_run")
    if full:
        solvers = f"{full['jobs']} solver{'s' if full['jobs'] != 1 else ''}"
        load = full['machine'].get('load_average_1min', '?')
        wall = (f"the last full run took {full['seconds'] / 60:.1f} min with {solvers} in "
                f"parallel (load average {load})")
    else:
        wall = "no full run yet"
    lines += ["", f"{len(rows)} checks, {report['failed']} failed, {report['missing']} missing; "
              f"{cpu / 60:.1f} min of check time, {wall} (`make verify`; every row with "
              "its engine and seconds: `build/verify/report.md`)."]
    return "\n".join(lines) + "\n"


def write_verify(out_dir: str | Path, *, jobs: int = 2, only: str | None = None,
                 readme: str | Path | None = None,
                 on_progress: Callable[[str], None] | None = None) -> tuple[list[Path], int]:
    """Run every check (``only``: those whose name matches this regular expression; the
    other rows are kept from an earlier ``report.json`` in ``out_dir``, as ``make bench``
    keeps its sections) and write ``report.json`` and ``report.md`` into ``out_dir`` (and the
    summary into ``readme``). Returns the paths written and the number of failed checks of
    this run."""
    from .provenance import machine_info

    everything = all_checks()
    checks = everything
    if only is not None:
        checks = [c for c in everything if re.search(only, c.name)]
        if not checks:
            raise ValueError(f"only: no check matches {only!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / "report.json"
    earlier = json.loads(report_path.read_text()) if report_path.exists() else {}
    kept = {r["check"]: r for r in earlier.get("checks", [])}
    started = time.monotonic()
    rows = run_checks(checks, jobs=jobs, on_progress=on_progress)
    seconds = round(time.monotonic() - started, 1)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    kept.update({r["check"]: {**r, "measured": stamp} for r in rows})
    merged = [kept[c.name] for c in everything if c.name in kept]
    runs = [*earlier.get("runs", []), {"only": only, "checks": len(rows), "jobs": jobs,
                                       "seconds": seconds, "measured": stamp,
                                       "machine": machine_info()}]
    full = [run for run in runs if run["only"] is None]
    report = {"checks": merged, "failed": sum(r["status"] == "FAIL" for r in merged),
              "missing": len(everything) - len(merged),
              "last_full_run": full[-1] if full else None, "runs": runs}
    paths = [report_path, out_dir / "report.md"]
    atomic_write(paths[0], json.dumps(report, indent=2) + "\n")
    atomic_write(paths[1], markdown_report(merged))
    if readme is not None:
        replace_between_markers(readme, readme_summary(report), README_MARKERS)
        paths.append(Path(readme))
    return paths, sum(r["status"] == "FAIL" for r in rows)
