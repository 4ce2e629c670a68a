"""A control/status register block generated from a register-map description, behind an
AXI4-Lite slave port.

The description, its loaders and emitted views, the parameters (``CSRConfig``) and the golden
model are in ``golden.memory.csr``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.memory.csr import OKAY, SLVERR, CSRConfig, Register, RegisterMap

from ..config import configure

__all__ = ["axi_lite_signature", "add_axi_lite_write_slot", "register_signature", "CSRBlock"]


def axi_lite_signature(addr_width: int, data_width: int = 32) -> wiring.Signature:
    """An AXI4-Lite interface seen from the master (``awaddr`` is ``Out``); a slave port is
    ``In(axi_lite_signature(...))``. Member names are cocotbext-axi's, so a port ``axil``
    flattens to ``axil__awaddr`` ... and ``AxiLiteBus.from_prefix(dut, "axil_")`` finds it."""
    return wiring.Signature({
        "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
        "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


def add_axi_lite_write_slot(m: Module, bus,
                            state: dict | None = None) -> tuple[Signal, Signal, Signal, Signal]:
    """The write side of a simple AXI4-Lite slave port ``bus``: one holding register for AW and
    one for W, accepted independently and in either order (each ready is high while its
    register is empty).

    Returns ``(addr, data, strb, fire)``: the held beat, and ``fire``, high in the cycle the
    write happens (both held, the B channel free or being emptied). In that cycle the registers
    empty and B becomes valid on the next cycle; the caller sets ``bus.bresp`` under ``fire``.
    ``state``: a dict to receive the registers' full flags (``aw_full``, ``w_full``), for the
    formal proofs' invariants.
    """
    aw_full, w_full, fire = Signal(), Signal(), Signal()
    if state is not None:
        state.update(aw_full=aw_full, w_full=w_full)
    addr, data, strb = (Signal(len(bus.awaddr)), Signal(len(bus.wdata)),
                        Signal(len(bus.wstrb)))
    m.d.comb += [
        bus.awready.eq(~aw_full),
        bus.wready.eq(~w_full),
        fire.eq(aw_full & w_full & (~bus.bvalid | bus.bready)),
    ]
    with m.If(bus.bvalid & bus.bready):
        m.d.sync += bus.bvalid.eq(0)
    with m.If(bus.awvalid & bus.awready):
        m.d.sync += [aw_full.eq(1), addr.eq(bus.awaddr)]
    with m.If(bus.wvalid & bus.wready):
        m.d.sync += [w_full.eq(1), data.eq(bus.wdata), strb.eq(bus.wstrb)]
    with m.If(fire):
        m.d.sync += [aw_full.eq(0), w_full.eq(0), bus.bvalid.eq(1)]
    return addr, data, strb, fire


def register_signature(register: Register) -> wiring.Signature:
    """The fields of one register as seen by the design, from the block's side: an rw field
    is an ``Out`` (its value), an ro field an ``In`` (the status the design drives), a w1c
    field a signature with ``value`` (``Out``) and ``set`` (``In``, pulses that set bits)."""
    members = {}
    for f in register.fields:
        if f.access == "rw":
            members[f.name] = Out(f.width, init=f.reset)
        elif f.access == "ro":
            members[f.name] = In(f.width)
        else:
            members[f.name] = Out(wiring.Signature({"value": Out(f.width, init=f.reset),
                                                    "set": In(f.width)}))
    return wiring.Signature(members)


class CSRBlock(wiring.Component):
    """Registers of a :class:`~golden.memory.csr.RegisterMap` behind an AXI4-Lite slave.

    **Writes.** AW and W are accepted independently, in either order or together: each has a
    holding register and its ready is high while that register is empty. Once both hold a
    beat and the B channel is free (or being emptied this cycle), the write happens and B
    answers on the next cycle: OKAY for a mapped address, SLVERR (2) otherwise (nothing
    changes). The address's low ``stride_bits`` bits are ignored; ``wstrb`` enables bytes:
    rw fields take the enabled bits, w1c fields clear the enabled bits written as 1, ro fields
    ignore writes. With no stalls B is valid 2 cycles after the later of the AW and W
    handshakes, and the block accepts a write every 2 cycles.

    **Reads.** ``arready`` is high while no read response is pending; the cycle after an AR
    handshake R holds the register word (ro fields: their inputs as sampled at the AR
    handshake; unused bits 0), or 0 with SLVERR for an unmapped address, until ``rready``.
    A read and a write of the same register in one cycle read the old value.

    **w1c fields.** ``value <= (value & ~cleared) | set`` each cycle: a set pulse wins over a
    clear in the same cycle, so no event is lost.

    ``awprot``/``arprot`` are accepted and ignored. ``rst`` (synchronous) restores every
    field's reset value and empties the channels.

    Parameters
    ----------
    regmap : RegisterMap or CSRConfig, optional
        The register map; or a config naming it; or pass ``spec=...`` as a keyword.

    Attributes
    ----------
    config : golden.memory.csr.CSRConfig
        For a RegisterMap, a config whose ``spec`` is the map's JSON.
    regmap : golden.memory.csr.RegisterMap
    latency : int
        Cycles from an AR handshake to ``rvalid``: 1.

    Members
    -------
    axil : In(axi_lite_signature(addr_width, data_width))
        The slave port: Verilog ports ``axil__awaddr``, ``axil__wdata``, ...
    <register> : Out(register_signature(register)), one per register
        Verilog ports ``<register>__<field>`` (rw: output, ro: input) and, for a w1c field,
        ``<register>__<field>__value`` (output) and ``<register>__<field>__set`` (input).
    """

    latency = 1

    def __init__(self, regmap: RegisterMap | CSRConfig | None = None, **params):
        if isinstance(regmap, RegisterMap):
            if params:
                self._MustUse__silence = True
                raise TypeError("pass either a RegisterMap or CSRConfig parameters, not both")
            config = CSRConfig.for_regmap(regmap)
        else:
            config = configure(self, CSRConfig, regmap, params)
        self.config = config
        self.regmap = rm = config.regmap
        members = {"axil": In(axi_lite_signature(rm.addr_width, rm.data_width))}
        for r in rm.registers:
            members[r.name] = Out(register_signature(r))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        rm, bus = self.regmap, self.axil
        sb = rm.stride_bits

        def selects(address, register):
            word = address[sb:]
            return Const(1) if len(word) == 0 else word == register.address >> sb

        # Write channels: one holding register each for AW and W.
        self.state = {}  # for the formal proofs' invariants (sim/contracts.py)
        aw_addr, w_data, w_strb, do_write = add_axi_lite_write_slot(m, bus, self.state)
        write_hit = {r.name: Signal(name=f"write_{r.name}") for r in rm.registers}
        for r in rm.registers:
            m.d.comb += write_hit[r.name].eq(do_write & selects(aw_addr, r))
        with m.If(do_write):
            hit = Cat(*write_hit.values()).any()
            m.d.sync += bus.bresp.eq(Mux(hit, OKAY, SLVERR))

        # Fields: rw registers, w1c sticky bits.
        enabled = Cat(*(w_strb[k].replicate(8) for k in range(rm.strobe_width)))
        fields = {}  # (register, field) -> the value a read returns
        for r in rm.registers:
            port = getattr(self, r.name)
            for f in r.fields:
                bits = slice(f.offset, f.offset + f.width)
                member = getattr(port, f.name)
                if f.access == "rw":
                    with m.If(write_hit[r.name]):
                        m.d.sync += member.eq((member & ~enabled[bits])
                                              | (w_data[bits] & enabled[bits]))
                    fields[r.name, f.name] = member
                elif f.access == "ro":
                    fields[r.name, f.name] = member
                else:
                    cleared = Signal(f.width, name=f"{r.name}_{f.name}_clear")
                    m.d.comb += cleared.eq(Mux(write_hit[r.name], w_data[bits] & enabled[bits],
                                               0))
                    m.d.sync += member.value.eq((member.value & ~cleared) | member.set)
                    fields[r.name, f.name] = member.value

        # Read channels: the word is registered at the AR handshake.
        read_word, read_hit = Const(0, rm.data_width), Const(0, 1)
        for r in rm.registers:
            word = Signal(rm.data_width, name=f"read_{r.name}")
            for f in r.fields:
                m.d.comb += word[f.offset:f.offset + f.width].eq(fields[r.name, f.name])
            selected = selects(bus.araddr, r)
            read_word = read_word | Mux(selected, word, 0)
            read_hit = read_hit | selected
        m.d.comb += bus.arready.eq(~bus.rvalid)
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(read_word),
                         bus.rresp.eq(Mux(read_hit, OKAY, SLVERR))]
        return m
