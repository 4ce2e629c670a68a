"""Bounded formal proofs (SymbiYosys + Yices): the stream contract of every streaming block,
the reduction tree against a direct sum, and mutants that the proofs must catch."""

import re
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.pe import PEConfig
from golden.reduction_tree import ReductionTreeConfig
from hw.arith import shape_of
from hw.pe import PE
from hw.pipeline import StreamPipeline, delay
from hw.reduction_tree import ReductionTree
from sim.contracts import FORMAL_TARGETS
from sim.formal import (
    Contract,
    ContractHarness,
    ProofError,
    prove,
    prove_equivalent,
    stream_pairs,
)

#: Long proofs: excluded from ``make test`` (``slow``), run by ``make verify``.
DEEP = [pytest.mark.slow, pytest.mark.verify]


def _proof_name(request) -> str:
    return re.sub(r"\W+", "_", request.node.name).strip("_")


@pytest.mark.parametrize("name", [pytest.param(name, marks=DEEP if target.deep else [])
                                  for name, target in FORMAL_TARGETS.items()])
def test_stream_contract(name, request, measure):
    """Input contract assumed, output contract, word counts and reset behaviour proven."""
    _prove_target(name, request, measure, extra_depth=0)


@pytest.mark.parametrize("name", [pytest.param(name, marks=DEEP) for name in FORMAL_TARGETS])
def test_stream_contract_deep(name, request, measure):
    """The same proofs, 4 cycles deeper: more words in before the drain (the solver's time
    grows steeply with depth: 4 more cycles cost the pingpong proof about 10x)."""
    _prove_target(name, request, measure, extra_depth=4)


def _prove_target(name, request, measure, extra_depth):
    harness, depth = FORMAL_TARGETS[name].make(extra_depth)
    result = prove(harness, _proof_name(request), depth=depth)
    assert result.covered  # words did flow: the assumptions leave real behaviour
    measure(f"{name}: stream contract proven to depth {depth} in {result.seconds:.1f} s")


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


class DirectSum(wiring.Component):
    """The reduction tree's specification: ``sum(i)`` delayed by the tree's latency."""

    def __init__(self, config: ReductionTreeConfig, latency: int):
        self.config, self.latency = config, latency
        super().__init__({
            "en": In(1),
            "i": In(data.ArrayLayout(shape_of(config.width, config.signed), config.n)),
            "o": Out(shape_of(config.output_width, config.signed)),
        })

    def elaborate(self, platform):
        m = Module()
        total = sum(self.i[k] for k in range(self.config.n))
        m.d.comb += self.o.eq(delay(m, total, self.latency, en=self.en, name="sum"))
        return m


def _tree_equivalence(request, n, width, signed, levels_per_stage):
    config = ReductionTreeConfig(n=n, width=width, signed=signed,
                                 levels_per_stage=levels_per_stage)
    tree = ReductionTree(config)
    result = prove_equivalent(tree, DirectSum(config, tree.latency), _proof_name(request),
                              inputs=lambda c: [c.en, c.i], outputs=lambda c: [c.o],
                              depth=tree.latency + 4)
    return result


@pytest.mark.parametrize("n, width, signed, levels_per_stage", [
    (1, 4, True, 1), (2, 3, False, 1), (3, 4, True, 1), (5, 3, True, 2), (7, 4, False, 1),
    (8, 4, True, 3),
])
def test_reduction_tree_equals_direct_sum(n, width, signed, levels_per_stage, request):
    """Every cycle, with any stall pattern, the tree's output equals the delayed direct sum."""
    _tree_equivalence(request, n, width, signed, levels_per_stage)


@pytest.mark.parametrize("n", [pytest.param(n, marks=DEEP) for n in range(1, 17)])
@pytest.mark.parametrize("levels_per_stage", [1, 2])
def test_reduction_tree_equals_direct_sum_deep(n, levels_per_stage, request):
    """Every n up to 16, 6-bit signed inputs."""
    _tree_equivalence(request, n, 6, True, levels_per_stage)


def test_equivalence_catches_a_wrong_tree(request):
    """A tree one register short of the direct sum's latency is not equivalent."""
    config = ReductionTreeConfig(n=4, width=3)
    tree = ReductionTree(config)
    with pytest.raises(ProofError, match=r"outputs equal.*counterexample trace: \S+\.vcd"):
        prove_equivalent(tree, DirectSum(config, tree.latency + 1), _proof_name(request),
                         inputs=lambda c: [c.en, c.i], outputs=lambda c: [c.o],
                         depth=tree.latency + 4)
