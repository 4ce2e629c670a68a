"""Stall-enable pipelines and their adapter to streams.

accelgen's datapaths are *pipelined cores*: components with an ``en`` input, an ``i`` input and
an ``o`` output, whose registers all load when ``en`` is high, and a ``latency`` attribute (the
number of register stages from ``i`` to ``o``). A core knows nothing of handshakes.
:class:`StreamPipeline` gives one core stream ports with a single global stall enable: the whole
pipeline advances when its last stage is empty or being taken, so it runs at one transfer per
cycle while ``o.ready`` is high and loses nothing while it is low.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamPipeline", "core_shapes", "delay", "port_members", "rising_edge"]


def delay(m: Module, value, cycles: int, *, en, name: str, taps: list | None = None,
          reset_less: bool = False):
    """Return ``value`` delayed by ``cycles`` registers that load when ``en`` is high.

    ``value`` may be a ``Value`` or a ``data.View``; the result has the same shape.
    ``taps``: a list to append each register to, in order (for the formal proofs).
    ``reset_less``: registers the domain's reset does not clear (data whose valid bit is
    elsewhere: no reset net to them).
    """
    for k in range(1, cycles + 1):
        register = Signal(value.shape(), name=f"{name}_d{k}", reset_less=reset_less)
        with m.If(en):
            m.d.sync += register.eq(value)
        value = register
        if taps is not None:
            taps.append(register)
    return value


def rising_edge(m: Module, level) -> Signal:
    """A one-cycle pulse: high in the first cycle ``level`` is 1 after a cycle at 0 (a
    register bit the host sets, turned into a strobe)."""
    seen = Signal(name=f"{level.name}_seen")
    pulse = Signal(name=f"{level.name}_rise")
    m.d.sync += seen.eq(level)
    m.d.comb += pulse.eq(level & ~seen)
    return pulse


def core_shapes(core: wiring.Component):
    """Return the ``(input, output)`` shapes of a pipelined core's ``i`` and ``o`` ports."""
    members = core.signature.members
    for name in ("en", "i", "o"):
        if name not in members:
            raise TypeError(f"a pipelined core needs an {name!r} port; {core!r} has "
                            f"{', '.join(members.keys())}")
    latency = getattr(core, "latency", None)
    if not isinstance(latency, int) or latency < 1:
        raise TypeError(f"a pipelined core needs an integer latency >= 1 (a registered "
                        f"output), {core!r} has {latency!r}")
    return members["i"].shape, members["o"].shape


def port_members(component: wiring.Component):
    """The members of ``component``'s signature that are ports of its module.

    Every member of the flattened signature but the constants, such as an always-ready
    stream's ``ready`` (``Const(1)``): Amaranth 0.5 makes no port of a constant (its own port
    discovery rejects one), so whatever walks the ports (emission's port map, a formal
    harness driving every input, an FPGA harness wiring every bit to pins) must skip them.

    Parameters
    ----------
    component : wiring.Component

    Yields
    ------
    path : tuple
        The member's path (``("i", "payload")``; the port is ``"__".join(map(str, path))``).
    member : wiring.Member
        Its ``flow`` is ``wiring.In`` for an input port.
    value : Value
        The member's value, cast to a ``Value`` (a ``data.View`` gives its signal).
    """
    for path, member, value in component.signature.flatten(component):
        value = Value.cast(value)
        if not isinstance(value, Const):
            yield path, member, value


class StreamPipeline(wiring.Component):
    """Stream ports around a pipelined core, with full valid/ready backpressure.

    Parameters
    ----------
    core : wiring.Component
        A pipelined core (``en``, ``i``, ``o`` ports and a ``latency`` >= 1 attribute).

    Attributes
    ----------
    latency : int
        Cycles from an accepted input to its output when ``o.ready`` stays high (the core's).
    stage_valid : list of Signal
        Whether each pipeline stage holds a word (the last one drives ``o.valid``); the
        formal proofs count them against the words accepted and not yet out.

    Members
    -------
    i : In(stream.Signature(core's input shape))
    o : Out(stream.Signature(core's output shape))
    """

    def __init__(self, core: wiring.Component):
        in_shape, out_shape = core_shapes(core)
        self.core = core
        self.latency = core.latency
        self.stage_valid = [Signal(name=f"stage{k}_valid") for k in range(1, self.latency + 1)]
        super().__init__({
            "i": In(stream.Signature(in_shape)),
            "o": Out(stream.Signature(out_shape)),
        })

    @property
    def config(self):
        """The core's config."""
        return self.core.config

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.d.comb += [core.i.eq(self.i.payload), self.o.payload.eq(core.o)]
        valid = self.stage_valid
        advance = Signal()
        m.d.comb += [
            advance.eq(~valid[-1] | self.o.ready),
            core.en.eq(advance),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
        ]
        with m.If(advance):
            m.d.sync += [dst.eq(src) for dst, src in zip(valid, [self.i.valid, *valid[:-1]])]
        return m
