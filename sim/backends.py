"""One call for a stream test on any simulator: cocotb on Verilator (the emitted Verilog), the
Amaranth simulator, or the emitted Verilog in a native C++ Verilator harness (``sim.native``).
All check every output word against the golden model and return the same
:class:`~sim.stream.BenchResult`, so benchmarks and sweeps choose the simulator by name."""

from __future__ import annotations

from .stream import BenchResult

__all__ = ["SIMULATORS", "check_simulator", "run_stream"]

#: Simulator names, the first the default.
SIMULATORS = ("verilator", "amaranth", "native")


def check_simulator(simulator: str) -> str:
    """Return ``simulator`` if it names one of :data:`SIMULATORS`, else raise ``ValueError``."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    return simulator


def run_stream(component, name: str, inputs: dict, expected: dict, sources=None, *,
               simulator: str = "verilator", valid_prob: float = 1.0, ready_prob: float = 1.0,
               seed: int = 0) -> BenchResult:
    """Drive ``inputs`` through ``component`` on ``simulator`` and check every output word.

    ``verilator`` is :func:`sim.runner.run_stream_test` (``name`` is the Verilog module);
    ``amaranth`` is :func:`sim.amaranth_sim.simulate_stream`; ``native`` is
    :func:`sim.native.run_native_stream`. Raises on the first mismatch.
    """
    if check_simulator(simulator) == "native":
        from .native import run_native_stream

        return run_native_stream(component, name, inputs, expected, sources,
                                 valid_prob=valid_prob, ready_prob=ready_prob, seed=seed)
    if simulator == "verilator":
        from .runner import run_stream_test

        return run_stream_test(component, name, inputs, expected, sources,
                               valid_prob=valid_prob, ready_prob=ready_prob, seed=seed)
    from .amaranth_sim import simulate_stream

    return simulate_stream(component, inputs, expected, sources, valid_prob=valid_prob,
                           ready_prob=ready_prob, seed=seed)
