"""The accelerator top: the core behind its control/status registers.

    host --AXI4-Lite--> CSRBlock (accelerator_regmap) --> AcceleratorCore --AXI4--> DRAM

The register map and the host protocol (program-load window, start, status polling) are in
``golden.accelerator_top``; the core, its ISA and timing in ``hw.accelerator``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.accelerator import AcceleratorConfig
from golden.accelerator_top import PROG_DATA_REGISTERS, accelerator_regmap, identity_registers

from .accelerator import AcceleratorCore
from .config import configure
from .memory.csr import CSRBlock, axi_lite_signature
from .memory.dma import axi4_signature
from .pipeline import rising_edge

__all__ = ["AcceleratorTop"]


class AcceleratorTop(wiring.Component):
    """:class:`~hw.accelerator.AcceleratorCore` with an AXI4-Lite register block for the host.

    The registers are ``golden.accelerator_top.accelerator_regmap(config)``: identity
    constants, ``ctrl.start``, ``status``, ``cycles``, ``prog_len``, ``ext_lines`` and the
    program-load window (``prog_addr``, ``prog_data0..3``, ``prog_ctrl.write``). Edges of
    ``ctrl.start`` and ``prog_ctrl.write`` become the core's one-cycle ``start`` and program
    write. The core's scratchpad host port is not used: data moves through DRAM.

    Parameters
    ----------
    config : golden.accelerator.AcceleratorConfig, optional
        Or its fields as keywords (the core's hardware constraints apply).

    Attributes
    ----------
    config : golden.accelerator.AcceleratorConfig
    core : AcceleratorCore
    regmap : golden.memory.csr.RegisterMap
    latency : None
        Programs take their modelled cycles; the top has no single latency.

    Members
    -------
    axil : In(hw.memory.csr.axi_lite_signature(12, 32))
        The register block's slave port (``axil__awaddr`` ...).
    axi : Out(hw.memory.dma.axi4_signature(32, min(line_bits, 512)))
        The core's AXI4 master to DRAM (``axi__awvalid`` ...).
    """

    def __init__(self, config: AcceleratorConfig | None = None, **params):
        self.config = cfg = configure(self, AcceleratorConfig, config, params)
        try:
            self.core = AcceleratorCore(cfg)
        except ValueError:
            self._MustUse__silence = True
            raise
        self.regmap = rm = accelerator_regmap(cfg)
        self.latency = None
        super().__init__({
            "axil": In(axi_lite_signature(rm.addr_width, rm.data_width)),
            "axi": Out(axi4_signature(32, cfg.dma_config.data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.csr = csr = CSRBlock(self.regmap)
        wiring.connect(m, wiring.flipped(self.axil), csr.axil)
        wiring.connect(m, core.axi, wiring.flipped(self.axi))

        for name, value in identity_registers(self.config).items():
            m.d.comb += getattr(csr, name).value.eq(value)
        m.d.comb += [
            core.start.eq(rising_edge(m, csr.ctrl.start)),
            core.prog_we.eq(rising_edge(m, csr.prog_ctrl.write)),
            core.prog_addr.eq(csr.prog_addr.value),
            core.prog_data.eq(Cat(getattr(csr, f"prog_data{k}").value
                                  for k in range(PROG_DATA_REGISTERS))),
            core.prog_len.eq(csr.prog_len.value),
            core.ext_lines.eq(csr.ext_lines.value),
            core.host_we.eq(0),
            core.host_addr.eq(0),
            core.host_wdata.eq(0),
            csr.status.done.eq(core.done),
            csr.status.error.eq(core.error),
            csr.status.busy.eq(core.busy),
            csr.status.code.eq(core.code),
            csr.status.pc.eq(core.pc),
            csr.cycles.value.eq(core.cycles),
        ]
        return m
