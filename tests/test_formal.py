"""Formal proofs (SymbiYosys + Yices): the stream contract of every streaming block (for all
time where k-induction converges, else bounded), the reduction tree against a direct sum, and
mutants that the proofs must catch, long-run ones among them."""

import json
import re
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal

from gen.measure.verify import (
    all_checks,
    readme_summary,
    tree_equivalence,
    wrap_mutant,
    write_verify,
)
from golden.nonlinear.layernorm import LayerNormConfig
from golden.nonlinear.softmax import SoftmaxConfig
from golden.pe import PEConfig
from golden.reduction_tree import ReductionTreeConfig
from hw.nonlinear.layernorm import LayerNorm
from hw.nonlinear.softmax import Softmax
from hw.pe import PE
from hw.pipeline import StreamPipeline
from hw.reduction_tree import ReductionTree
from sim.contracts import FORMAL_TARGETS, MARGIN, DirectSum, banked_harness, tree_invariants
from sim.formal import (
    Contract,
    ContractHarness,
    ProofError,
    prove,
    prove_equivalent,
    stream_pairs,
)

#: Long proofs: excluded from ``make test`` (``slow``); ``make verify`` runs them all through
#: ``accelgen verify`` (gen/measure/verify.py), ``make test-slow`` through these tests.
DEEP = [pytest.mark.slow, pytest.mark.verify]

#: The fast subset of ``make test``: unbounded proofs of small blocks and their mutants.
FAST = ("input-share", "search-tree", "uart")  # the PE: test_verify_report
#: Unbounded contracts cheap enough for ``make test`` (about 10 s of CPU each) whose long-run
#: mutants are not (their BMC to depth 60 takes 70 to 75 s of CPU): those run in make verify.
FAST_CONTRACTS = (*FAST, "softmax", "layernorm")


def _proof_name(request) -> str:
    return re.sub(r"\W+", "_", request.node.name).strip("_")


def _marks(name, fast=FAST):
    return [] if name in fast else DEEP


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name, FAST_CONTRACTS))
                                  for name in FORMAL_TARGETS])
def test_stream_contract(name, request, measure):
    """Input contract assumed, output contract, word counts and reset behaviour proven:
    for all time (k-induction) where the target has an induction depth, else bounded."""
    target = FORMAL_TARGETS[name]
    harness, depth = target.make()
    if target.induction is None:
        result = prove(harness, _proof_name(request), depth=depth)
    else:
        result = prove(harness, _proof_name(request), depth=target.induction, mode="prove",
                       cover_depth=depth)
    assert result.covered  # words did flow: the assumptions leave real behaviour
    measure(f"{name}: stream contract proven ({result.mode}, depth {result.depth}) in "
            f"{result.seconds:.1f} s")


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name))
                                  for name, target in FORMAL_TARGETS.items()
                                  if target.induction is not None])
def test_long_run_mutant_escapes_bmc_and_fails_the_unbounded_proof(name, request):
    """A counter that wraps after more transfers than the BMC depth allows breaks the block:
    BMC at the usual depth passes it, the unbounded proof does not."""
    target = FORMAL_TARGETS[name]
    mutant, depth = wrap_mutant(target)
    assert 2 ** mutant.bits > depth
    harness, _ = target.make(mutant=mutant)
    prove(harness, _proof_name(request) + "_bmc", depth=depth, cover=False)
    harness, _ = target.make(mutant=mutant)
    with pytest.raises(ProofError, match="prove (UNKNOWN|FAIL)"):
        prove(harness, _proof_name(request) + "_prove", depth=target.induction, mode="prove",
              cover=False)


@pytest.mark.parametrize("block", ["softmax", "layernorm"])
@pytest.mark.parametrize("max_len, banks", [pytest.param(4, 2, marks=DEEP),
                                            pytest.param(3, 3, marks=DEEP)])
def test_banked_blocks_proven_at_other_sizes(block, max_len, banks, request):
    """The softmax's and the LayerNorm's invariants are not tied to the table's configuration
    (max_len 2, two banks): longer vectors and three banks prove for all time too, no-loss
    included, with the same k = 2."""
    if block == "softmax":
        dut = Softmax(SoftmaxConfig(in_width=8, in_frac=3, out_width=4, out_frac=4,
                                    max_len=max_len, banks=banks, exp_order=1))
    else:
        dut = LayerNorm(LayerNormConfig(in_width=4, out_width=4, out_frac=1, max_len=max_len,
                                        banks=banks))
    harness = banked_harness(dut)
    assert all(p.contract.drain is not None for p in harness.pairs)
    result = prove(harness, _proof_name(request), depth=2, mode="prove",
                   cover_depth=harness.drain + MARGIN)
    assert result.mode == "prove" and result.covered


def test_verify_report(tmp_path):
    """``accelgen verify``'s report: a row per check with its proof kind, depth, engine and
    seconds, JSON and Markdown (here for the PE's unbounded proof only)."""
    paths, failed = write_verify(tmp_path, jobs=1, only=r"^pe: contract$")
    assert failed == 0
    report = json.loads(paths[0].read_text())
    (row,) = report["checks"]
    assert (row["block"], row["proof"], row["status"]) == ("pe", "unbounded", "pass")
    assert row["depth"] == FORMAL_TARGETS["pe"].induction and row["seconds"] > 0
    assert "| pe | handshakes; no word lost" in paths[1].read_text()
    summary = readme_summary(report)
    assert "| pe |" in summary and "unbounded (k=" in summary


def test_every_target_has_a_contract_and_a_mutant_check():
    names = [check.name for check in all_checks()]
    for target in FORMAL_TARGETS:
        assert f"{target}: contract" in names and f"{target}: long-run mutant" in names
    assert len(names) == len(set(names))


class MutantPipeline(StreamPipeline):
    """:class:`StreamPipeline` with one deliberate bug, for the proofs to catch."""

    BUGS = ("ignores-ready", "duplicates", "drops", "survives-reset")

    def __init__(self, core, bug: str):
        super().__init__(core)
        self.bug = bug

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.d.comb += [core.i.eq(self.i.payload), self.o.payload.eq(core.o)]
        reset_less = self.bug == "survives-reset"
        valid = [Signal(name=f"stage{k}_valid", reset_less=reset_less)
                 for k in range(1, self.latency + 1)]
        advance = Signal()
        m.d.comb += [
            advance.eq(1 if self.bug == "ignores-ready" else ~valid[-1] | self.o.ready),
            core.en.eq(advance),
            self.i.ready.eq(1 if self.bug == "drops" else advance),
            self.o.valid.eq(valid[-1]),
        ]
        shifted = [self.i.valid, *valid[:-1]]
        if self.bug == "duplicates":  # the last stage keeps its word after a transfer
            shifted[-1] = shifted[-1] | (valid[-1] & self.o.ready)
        with m.If(advance):
            m.d.sync += [dst.eq(src) for dst, src in zip(valid, shifted)]
        return m


@pytest.mark.parametrize("bug, failed", [
    ("ignores-ready", "holds its payload until ready|holds valid until ready"),
    ("duplicates", "no word out that i did not owe"),
    ("drops", "every word owed"),
    ("survives-reset", "no word out that i did not owe"),
])
def test_mutant_fails_with_counterexample(bug, failed, request):
    """A broken pipeline fails its proof; the error names the assertion and the trace."""
    dut = MutantPipeline(PE(PEConfig(in_width=3, ops=("add",))), bug)
    harness = ContractHarness(dut, stream_pairs(dut, Contract()))
    with pytest.raises(ProofError) as error:
        # Deep enough for a word to be lost at the output and the drain to show it.
        prove(harness, _proof_name(request), depth=harness.drain + 8)
    message = str(error.value)
    assert re.search(failed, message), message
    trace = re.search(r"counterexample trace: (\S+\.vcd)", message)
    assert trace and Path(trace.group(1)).is_file(), message
    assert "$var" in Path(trace.group(1)).read_text()  # a real VCD with the signals


def test_unmutated_pipeline_proves(request):
    """The mutants' baseline: the same core in the real StreamPipeline passes."""
    dut = StreamPipeline(PE(PEConfig(in_width=3, ops=("add",))))
    harness = ContractHarness(dut, stream_pairs(dut, Contract()))
    assert prove(harness, _proof_name(request), depth=harness.drain + 8).covered


@pytest.mark.parametrize("n, width, signed, levels_per_stage", [
    (1, 4, True, 1), (3, 4, False, 1), (5, 3, True, 2), (8, 4, True, 3),
])
def test_reduction_tree_equals_direct_sum(n, width, signed, levels_per_stage, request):
    """For all time (k-induction, with the tree's stage sums as invariants), with any stall
    pattern, the tree's output equals the delayed direct sum."""
    config = ReductionTreeConfig(n=n, width=width, signed=signed,
                                 levels_per_stage=levels_per_stage)
    tree = ReductionTree(config)
    result = prove_equivalent(tree, DirectSum(config, tree.latency), _proof_name(request),
                              inputs=lambda c: [c.en, c.i], outputs=lambda c: [c.o],
                              depth=1, mode="prove", invariants=tree_invariants)
    assert result.mode == "prove"


@pytest.mark.parametrize("n", [pytest.param(n, marks=DEEP) for n in range(1, 17)])
@pytest.mark.parametrize("levels_per_stage", [1, 2])
def test_reduction_tree_equals_direct_sum_deep(n, levels_per_stage):
    """Every n up to 16, 6-bit signed inputs, for all time."""
    assert tree_equivalence(n, levels_per_stage).mode == "prove"


def test_equivalence_catches_a_wrong_tree(request):
    """A tree one register short of the direct sum's latency is not equivalent."""
    config = ReductionTreeConfig(n=4, width=3)
    tree = ReductionTree(config)
    with pytest.raises(ProofError, match=r"outputs equal.*counterexample trace: \S+\.vcd"):
        prove_equivalent(tree, DirectSum(config, tree.latency + 1), _proof_name(request),
                         inputs=lambda c: [c.en, c.i], outputs=lambda c: [c.o],
                         depth=tree.latency + 4)
