"""A design behind a UART host link: the top that ``accelgen build`` puts on a board and that the
host-client tests simulate, pins aside.

    rx/tx --> UART --> HostBridge --> AXILiteDecoder --+--> CSRBlock (host_regmap)
                                                      +--> StreamBuffer --> design --+
                                                                 ^-------------------+

The address map, the register map and the run protocol are in ``golden.host_top``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.host_top import (
    BUFFER_BASE,
    CSR_BASE,
    CSR_SIZE,
    MAGIC,
    HostTopConfig,
    design_id,
    host_regmap,
    parameter_registers,
)
from golden.memory.stream_buffer import StreamBufferConfig
from golden.uart import divisor_for

from .config import configure
from .host_bridge import HostBridge
from .memory.axil_decoder import AXILiteDecoder
from .memory.csr import CSRBlock
from .memory.stream_buffer import StreamBuffer
from .pipeline import rising_edge
from .uart import UART

__all__ = ["HostTop"]


class HostTop(wiring.Component):
    """A stream design with its inputs and outputs reachable from a host over a UART.

    Parameters
    ----------
    design : wiring.Component
        A block with stream ports ``i`` and ``o`` and a ``config`` (a registered generator's
        component).
    generator : str
        The design's generator name (for the register map's name and ``design`` fingerprint).
    config : golden.host_top.HostTopConfig, optional
        Clock frequency, baud rate and buffer depth; or pass them as keywords.

    Attributes
    ----------
    regmap : golden.memory.csr.RegisterMap
        The control/status registers (``golden.host_top.host_regmap``).
    buffer_config : golden.memory.stream_buffer.StreamBufferConfig
        The stream buffers' parameters (entry widths, depth, addressing).
    latency : None
        Not a pipeline: runs are started and observed through the registers.

    Members
    -------
    rx : In(1)
        UART line from the host (idle high).
    tx : Out(1)
        UART line to the host.
    busy, done : Out(1)
        A run is in progress; the sticky ``done`` flag (for LEDs).
    """

    latency = None

    def __init__(self, design: wiring.Component, generator: str,
                 config: HostTopConfig | None = None, **params):
        self.config = configure(self, HostTopConfig, config, params)
        self.divisor = divisor_for(self.config.clock_hz, self.config.baud)
        members = getattr(design.signature, "members", {})
        for port in ("i", "o"):
            if port not in members or not (members[port].is_signature and isinstance(
                    members[port].signature, stream.Signature)):
                raise TypeError(f"design must have stream ports i and o, got {design!r}")
        self.design = design
        self.generator = generator
        in_width = len(Value.cast(design.i.payload))
        out_width = len(Value.cast(design.o.payload))
        self.buffer_config = StreamBufferConfig(in_width=in_width, out_width=out_width,
                                                depth=self.config.depth)
        self.regmap = host_regmap(generator, design.config, self.config, in_width, out_width)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
                          "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = uart = UART(divisor=self.divisor)
        m.submodules.bridge = bridge = HostBridge(addr_width=32)
        buffer_size = 1 << self.buffer_config.addr_width
        m.submodules.decoder = decoder = AXILiteDecoder(
            regions=[(CSR_BASE, CSR_SIZE), (BUFFER_BASE, buffer_size)], addr_width=32)
        m.submodules.csr = csr = CSRBlock(self.regmap)
        m.submodules.buffers = buffers = StreamBuffer(self.buffer_config)
        m.submodules.design = design = self.design

        m.d.comb += [uart.rx.eq(self.rx), self.tx.eq(uart.tx)]
        wiring.connect(m, uart.o, bridge.i)
        wiring.connect(m, bridge.o, uart.i)
        wiring.connect(m, bridge.bus, decoder.bus)
        wiring.connect(m, decoder.ports[0], csr.axil)
        wiring.connect(m, decoder.ports[1], buffers.bus)

        # The design's payloads are structures; the buffers hold their bits.
        m.d.comb += [
            design.i.valid.eq(buffers.o.valid), buffers.o.ready.eq(design.i.ready),
            design.i.payload.eq(buffers.o.payload),
            buffers.i.valid.eq(design.o.valid), design.o.ready.eq(buffers.i.ready),
            buffers.i.payload.eq(design.o.payload),
        ]

        # Registers: constants, run control, status.
        regs = csr
        constants = {"id": MAGIC, "design": design_id(self.generator, self.design.config),
                     "clock_hz": self.config.clock_hz, "depth": self.config.depth,
                     "in_width": self.buffer_config.in_width,
                     "out_width": self.buffer_config.out_width,
                     **parameter_registers(self.design.config)}
        for name, value in constants.items():
            m.d.comb += getattr(regs, name).value.eq(value)
        m.d.comb += [
            buffers.start.eq(rising_edge(m, regs.control.start)),
            buffers.count.eq(regs.count.value),
            buffers.expect.eq(regs.expect.value),
            regs.status.busy.eq(buffers.busy),
            regs.status.overflow.eq(buffers.overflow),
            regs.done.done.set.eq(buffers.done),
            regs.sent.value.eq(buffers.sent),
            regs.received.value.eq(buffers.received),
            regs.cycles.value.eq(buffers.cycles),
            regs.first_output.value.eq(buffers.first_output),
            self.busy.eq(buffers.busy),
            self.done.eq(regs.done.done.value),
        ]
        return m
