"""AXI4-Lite address decoder: one master port fanned out to one slave port per address region.

The region map, its checks, the parameters (``AXILiteDecoderConfig``) and the model are in
``golden.memory.axil_decoder``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.memory.axil_decoder import SLVERR, AXILiteDecoderConfig

from ..config import configure
from .csr import axi_lite_signature

__all__ = ["AXILiteDecoder"]


class AXILiteDecoder(wiring.Component):
    """Routes each AXI4-Lite transaction of ``bus`` to the port of the region holding its
    address, with the address made local (``addr - base``); unmapped addresses are answered
    here with SLVERR (read data 0) and reach no port.

    Reads and writes are independent and each has at most one transaction outstanding:

    - **Writes.** AW and W are each taken into a holding register (ready while it is empty),
      in either order. Once AW is in, its region is known: the port's ``awvalid`` rises, and
      its ``wvalid`` too once W is in (both from registers, so neither waits for the port's
      ready, as AXI requires). After both handshakes the port's B is taken into the B
      register and offered on ``bus``; the B handshake frees AW and W for the next write.
      An unmapped write is answered once both AW and W are in.
    - **Reads.** AR is taken into a holding register; the port's AR is raised from it, the
      port's R is taken into the R register and offered on ``bus``; the R handshake frees AR.

    Every output is driven from registers, so there is no combinational path from any input
    to any output. The decoder adds a cycle each way: with a slave that answers the cycle
    after its handshake and no stalls, the master's R handshake comes 3 cycles after its AR
    handshake, and its B handshake 3 cycles after the later of AW and W; an unmapped address
    is answered in 2. The next AR (AW, W) is taken the cycle after the R (B) handshake.

    Parameters
    ----------
    config : golden.memory.axil_decoder.AXILiteDecoderConfig, optional
        Or its fields as keywords: ``regions`` (``"BASE:SIZE"`` strings or ``(base, size)``
        pairs) and ``addr_width``.

    Attributes
    ----------
    config : golden.memory.axil_decoder.AXILiteDecoderConfig
    regions : tuple of (int, int)
    latency : None
        Variable: it depends on the slaves.

    Members
    -------
    bus : In(axi_lite_signature(addr_width))
        The master side: Verilog ports ``bus__awaddr`` ... (cocotbext-axi prefix ``"bus_"``).
    port0, port1, ... : Out(axi_lite_signature(log2(size)))
        One slave side per region, in region order: Verilog ports ``port<k>__awaddr`` ...
        (prefix ``"port<k>_"``). Separate members rather than an array because each port's
        address width is its region's.
    """

    latency = None

    def __init__(self, config: AXILiteDecoderConfig | None = None, **params):
        self.config = cfg = configure(self, AXILiteDecoderConfig, config, params)
        self.regions = cfg.region_list
        members = {"bus": In(axi_lite_signature(cfg.addr_width))}
        for k, width in enumerate(cfg.port_addr_widths):
            members[f"port{k}"] = Out(axi_lite_signature(width))
        super().__init__(members)

    @property
    def ports(self) -> list:
        """The slave-side interfaces, in region order."""
        return [getattr(self, f"port{k}") for k in range(len(self.regions))]

    def _select(self, m, addr, name):
        """One-hot region selection of ``addr`` (a combinational signal per region)."""
        hits = []
        for k, (base, size) in enumerate(self.regions):
            hit = Signal(name=f"{name}_hit{k}")
            low = size.bit_length() - 1
            upper = addr[low:]
            m.d.comb += hit.eq(Const(1) if len(upper) == 0 else upper == base >> low)
            hits.append(hit)
        return Cat(*hits)

    def elaborate(self, platform):
        m = Module()
        bus, ports, n = self.bus, self.ports, len(self.regions)

        # --- writes -------------------------------------------------------------------------
        aw_full = Signal()             # AW held (from its handshake to the B handshake)
        aw_addr = Signal.like(bus.awaddr)
        aw_prot = Signal.like(bus.awprot)
        aw_sel = Signal(n)             # one-hot port of the held AW; 0 for unmapped
        aw_sent = Signal()             # the port took AW (or the write was unmapped)
        w_full = Signal()
        w_data = Signal.like(bus.wdata)
        w_strb = Signal.like(bus.wstrb)
        w_sent = Signal()
        m.d.comb += [bus.awready.eq(~aw_full), bus.wready.eq(~w_full)]
        aw_hits = self._select(m, bus.awaddr, "aw")
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(bus.awaddr), aw_prot.eq(bus.awprot),
                         aw_sel.eq(aw_hits)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]

        for k, port in enumerate(ports):
            selected = aw_sel[k]
            m.d.comb += [
                port.awaddr.eq(aw_addr[:len(port.awaddr)]), port.awprot.eq(aw_prot),
                port.awvalid.eq(aw_full & selected & ~aw_sent),
                port.wdata.eq(w_data), port.wstrb.eq(w_strb),
                port.wvalid.eq(aw_full & w_full & selected & ~w_sent),
                port.bready.eq(selected & aw_sent & w_sent & ~bus.bvalid),
            ]
            with m.If(port.awvalid & port.awready):
                m.d.sync += aw_sent.eq(1)
            with m.If(port.wvalid & port.wready):
                m.d.sync += w_sent.eq(1)
            with m.If(port.bvalid & port.bready):
                m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(port.bresp)]
        with m.If(aw_full & w_full & ~aw_sel.any() & ~aw_sent):
            m.d.sync += [aw_sent.eq(1), w_sent.eq(1), bus.bvalid.eq(1), bus.bresp.eq(SLVERR)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += [bus.bvalid.eq(0), aw_full.eq(0), w_full.eq(0), aw_sent.eq(0),
                         w_sent.eq(0)]

        # --- reads --------------------------------------------------------------------------
        ar_full = Signal()
        ar_addr = Signal.like(bus.araddr)
        ar_prot = Signal.like(bus.arprot)
        ar_sel = Signal(n)
        ar_sent = Signal()
        m.d.comb += bus.arready.eq(~ar_full)
        ar_hits = self._select(m, bus.araddr, "ar")
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [ar_full.eq(1), ar_addr.eq(bus.araddr), ar_prot.eq(bus.arprot),
                         ar_sel.eq(ar_hits)]
        for k, port in enumerate(ports):
            selected = ar_sel[k]
            m.d.comb += [
                port.araddr.eq(ar_addr[:len(port.araddr)]), port.arprot.eq(ar_prot),
                port.arvalid.eq(ar_full & selected & ~ar_sent),
                port.rready.eq(selected & ar_sent & ~bus.rvalid),
            ]
            with m.If(port.arvalid & port.arready):
                m.d.sync += ar_sent.eq(1)
            with m.If(port.rvalid & port.rready):
                m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(port.rdata),
                             bus.rresp.eq(port.rresp)]
        with m.If(ar_full & ~ar_sel.any() & ~ar_sent):
            m.d.sync += [ar_sent.eq(1), bus.rvalid.eq(1), bus.rdata.eq(0),
                         bus.rresp.eq(SLVERR)]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += [bus.rvalid.eq(0), ar_full.eq(0), ar_sent.eq(0)]
        return m
