"""CSR block: the register-map description and its checks, loaders, emitted JSON / C header /
Python module, the golden model, AXI4-Lite handshakes in the Amaranth simulator, and the
emitted Verilog under cocotbext-axi's AxiLiteMaster with random wait states on Verilator."""

import importlib.util
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from gen.emit import ports
from golden.memory.csr import (
    OKAY,
    SLVERR,
    CSRConfig,
    Field,
    Register,
    RegisterMap,
    c_header,
    csr_model,
    example_regmap,
    load_regmap,
    python_module,
    regmap_file_names,
    regmap_from_dict,
    regmap_from_json,
    regmap_from_toml,
    regmap_json,
    regmap_to_dict,
    resolve_spec,
    write_regmap_files,
)
from hw.memory.csr import CSRBlock
from sim.amaranth_sim import AxiLiteSimMaster
from sim.runner import build, new_test_dir, run_cocotb_spec

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # the cocotb module csr_tb lives here; the runner passes sys.path
    sys.path.insert(0, str(TESTS))

WIDE_TOML = """
name = "wide_csr"
description = "64-bit registers with gaps"
data_width = 64
addr_width = 8

[[registers]]
name = "cfg"
description = "base address and lanes"
fields = [
    { name = "base", width = 48, access = "rw", reset = 0x1000 },
    { name = "lanes", width = 8, access = "rw", offset = 56, reset = 4 },
]

[[registers]]
name = "counter"
address = 0x20
fields = [{ name = "cycles", width = 64, access = "ro", description = "free-running" }]

[[registers]]
name = "events"
fields = [
    { name = "overflow", width = 16, access = "w1c", offset = 8 },
    { name = "pending", width = 1, access = "w1c", offset = 40, reset = 1 },
    { name = "seen", width = 8, access = "rw", offset = 48 },
    { name = "level", width = 7, access = "ro", offset = 57 },
]

[[registers]]
name = "tag"
address = 0x80
fields = [{ name = "id", width = 7, access = "rw", offset = 3, reset = 0x55 }]
"""


def wide_regmap():
    return regmap_from_toml(WIDE_TOML)


def small(fields=None, **kwargs):
    return RegisterMap("m", [Register("r", fields or [Field("x", 8, "rw")])], **kwargs)


# --- description ------------------------------------------------------------------------------


def test_fields_pack_in_order_and_registers_get_addresses_in_order():
    regmap = example_regmap()
    assert [r.address for r in regmap.registers] == [0, 4, 8, 12, 16]
    ctrl = regmap.register("ctrl")
    assert [(f.name, f.offset) for f in ctrl.fields] == [("enable", 0), ("mode", 1),
                                                          ("irq_enable", 8), ("length", 16)]
    assert ctrl.reset_value == 0x0040_0002 and ctrl.field("mode").mask == 0b110
    assert regmap.addr_width == 5 and regmap.unmapped_addresses() == [20, 24, 28]
    wide = wide_regmap()
    assert [r.address for r in wide.registers] == [0x00, 0x20, 0x28, 0x80]
    assert wide.stride == 8 and wide.addr_width == 8 and len(wide.unmapped_addresses()) == 28
    assert wide.decode(0x2B) is wide.register("events") and wide.decode(0x30) is None
    assert small().addr_width == 2  # one register: no word-index bits at all


@pytest.mark.parametrize("make,message", [
    (lambda: small([Field("x", 8, "rw"), Field("x", 1, "ro")]), "duplicate field name 'x'"),
    (lambda: small([Field("x", 8, "rw"), Field("X", 1, "ro")]), "duplicate field name 'X'"),
    (lambda: RegisterMap("m", [Register("a", [Field("x", 1, "rw")]),
                               Register("a", [Field("y", 1, "rw")])]),
     "duplicate register name 'a'"),
    (lambda: small([Field("x", 33, "rw")]),
     r"field 'x' \(bits 32..0\) is wider than the 32-bit register"),
    (lambda: small([Field("x", 8, "rw", offset=28)]),
     r"field 'x' \(bits 35..28\) is wider than the 32-bit register"),
    (lambda: small([Field("x", 8, "rw"), Field("y", 4, "rw", offset=6)]),
     r"field 'y' \(bits 9..6\) overlaps field 'x' \(bits 7..0\)"),
    (lambda: RegisterMap("m", [Register("a", [Field("x", 1, "rw")]),
                               Register("b", [Field("y", 1, "rw")], address=0)]),
     "registers 'a' and 'b' overlap at address 0x0"),
    (lambda: RegisterMap("m", [Register("a", [Field("x", 1, "rw")], address=8),
                               Register("b", [Field("y", 1, "rw")], address=4),
                               Register("c", [Field("z", 1, "rw")])]),
     "registers 'a' and 'c' overlap at address 0x8"),
    (lambda: RegisterMap("m", [Register("a", [Field("x", 1, "rw")], address=6)]),
     r"register 'a' at 0x6 is not aligned to its size \(4 bytes\)"),
    (lambda: small(addr_width=1), "addr_width must be in 2..32"),
    (lambda: small(addr_width=40), "addr_width must be in 2..32"),
    (lambda: small(data_width=16), "data_width must be 32 or 64"),
    (lambda: Field("2x", 1, "rw"), "field name must be a C/Python identifier"),
    (lambda: Field("a-b", 1, "rw"), "field name must be a C/Python identifier"),
    (lambda: Field("_x", 1, "rw"), "field name must be a C/Python identifier"),
    (lambda: Field("a__b", 1, "rw"), "field name must be a C/Python identifier"),
    (lambda: Field("lambda", 1, "rw"), "field name 'lambda' is a Python keyword"),
    (lambda: Register("my reg", [Field("x", 1, "rw")]), "register name must be a C/Python"),
    (lambda: RegisterMap("accel.csr", []), "register map name must be a C/Python identifier"),
    (lambda: Field("x", 0, "rw"), "field 'x': width must be at least 1"),
    (lambda: Field("x", 1, "wo"), "field 'x': access must be one of rw, ro, w1c, got 'wo'"),
    (lambda: Field("x", 4, "rw", reset=16), "field 'x': reset 0x10 does not fit in 4 bits"),
    (lambda: Field("x", 4, "ro", reset=1), "an ro field takes its value from the design"),
    (lambda: Field("x", 4, "rw", offset=-1), "offset must be >= 0"),
    (lambda: Field("x", True, "rw"), "width must be an integer"),
    (lambda: Register("r", []), "register 'r' has no fields"),
    (lambda: Register("r", Field("x", 1, "rw")), "fields must be a sequence of Field"),
    (lambda: RegisterMap("m", []), "register map 'm' has no registers"),
    (lambda: RegisterMap("m", [Register("axil", [Field("x", 1, "rw")])]),
     "register name 'axil' is reserved"),
    (lambda: small([Field("pack", 1, "rw")]), "field name 'pack' is reserved"),
    (lambda: RegisterMap("m", [Register("a_b", [Field("c", 1, "rw")]),
                               Register("a", [Field("b_c", 1, "rw")])]),
     "field a_b.c and field a.b_c both give the C macro M_A_B_C_SHIFT; rename one"),
    (lambda: RegisterMap("m", [Register("a_b", [Field("x", 1, "rw")]),
                               Register("aB", [Field("x", 1, "rw")])]),
     r"register 'a_b' \(its class\) and register 'aB' \(its class\) both give the Python "
     "name AB"),
    (lambda: RegisterMap("m", [Register("none", [Field("x", 1, "rw")])]),
     "register 'none' .* gives the Python name None, a Python keyword"),
])
def test_bad_descriptions_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- loaders and config -----------------------------------------------------------------------


def test_toml_description_equals_the_python_one():
    text = """
        name = "accel_csr"
        [[registers]]
        name = "ctrl"
        fields = [{ name = "enable", width = 1, access = "rw" },
                  { name = "mode", width = 2, access = "rw", reset = 1 }]
        [[registers]]
        name = "status"
        address = 0x10
        fields = [{ name = "busy", width = 1, access = "ro" }]
    """
    expected = RegisterMap("accel_csr", [
        Register("ctrl", [Field("enable", 1, "rw"), Field("mode", 2, "rw", reset=1)]),
        Register("status", [Field("busy", 1, "ro")], address=0x10),
    ])
    assert regmap_from_toml(text) == expected and expected.addr_width == 5


@pytest.mark.parametrize("text,message", [
    ("name = 'm'\n[[registers]]\nname = 'r'\nfield = []", "register #0: unknown key 'field'"),
    ("name = 'm'\nregisters = [{ fields = [] }]", "register #0 has no name"),
    ("name = 'm'\nregisters = [{ name = 'r', fields = [{ name = 'x', width = 1 }] }]",
     "register 'r': field #0 has no access"),
    ("name = 'm'\nregisters = [{ name = 'r', fields = [{ name = 'x', width = 1, access = 'rw', "
     "bits = 3 }] }]", "field #0: unknown key 'bits'"),
    ("name = 'm'\nregisters = 3", "registers must be a list"),
    ("name = [", "malformed register map TOML"),
    ("registers = []", "register map has no name"),
])
def test_bad_toml_descriptions(text, message):
    with pytest.raises(ValueError, match=message):
        regmap_from_toml(text)


def test_json_round_trips_and_checks_derived_keys():
    for regmap in (example_regmap(), wide_regmap(), small()):
        text = regmap_json(regmap)
        assert regmap_from_json(text) == regmap
        assert regmap_from_json(regmap_json(regmap, indent=None)) == regmap
        assert json.loads(text)["format"] == "accelgen-regmap/1"
    description = regmap_to_dict(example_regmap())
    description["registers"][0]["fields"][1]["mask"] = 1
    with pytest.raises(ValueError, match=r"field ctrl.mode: mask 1 does not match .*0x6"):
        regmap_from_dict(description)
    description = regmap_to_dict(example_regmap())
    description["registers"][3]["reset_value"] = 0
    with pytest.raises(ValueError, match="register 'scratch': reset_value 0 does not match"):
        regmap_from_dict(description)
    with pytest.raises(ValueError, match="unsupported format 'other/2'"):
        regmap_from_dict({**regmap_to_dict(small()), "format": "other/2"})
    with pytest.raises(ValueError, match="malformed register map JSON"):
        regmap_from_json("{")


def test_spec_names_a_builtin_a_file_or_inline_json(tmp_path):
    (tmp_path / "wide.toml").write_text(WIDE_TOML)
    (tmp_path / "wide.json").write_text(regmap_json(wide_regmap()))
    assert resolve_spec("example") == example_regmap()
    assert resolve_spec(str(tmp_path / "wide.toml")) == wide_regmap()
    assert load_regmap(tmp_path / "wide.json") == wide_regmap()
    assert resolve_spec(regmap_json(small(), indent=None)) == small()
    assert CSRConfig().regmap == example_regmap()
    config = CSRConfig(spec=str(tmp_path / "wide.toml"))
    assert (config.data_width, config.addr_width, config.map_name) == (64, 8, "wide_csr")
    assert config.register_names == ("cfg", "counter", "events", "tag")
    assert CSRConfig.for_regmap(wide_regmap()).regmap == wide_regmap()
    assert CSRConfig.from_dict({"spec": "example"}) == CSRConfig()
    with pytest.raises(ValueError, match="spec must be a built-in register map .example."):
        CSRConfig(spec="nonesuch")
    with pytest.raises(ValueError, match="cannot read register description .*missing.toml"):
        CSRConfig(spec=str(tmp_path / "missing.toml"))
    (tmp_path / "bad.toml").write_text("name = 'm'\nregisters = []\n")
    with pytest.raises(ValueError, match="bad.toml: register map 'm' has no registers"):
        CSRConfig(spec=str(tmp_path / "bad.toml"))
    with pytest.raises(TypeError, match="spec must be a string"):
        CSRConfig(spec=3)


# --- golden model -----------------------------------------------------------------------------


def test_model_rw_strobes_ro_w1c_and_slverr():
    model = csr_model(example_regmap())
    assert model.read(0x0) == (0x0040_0002, OKAY)
    assert model.read(0xC) == (0x1234_5678, OKAY)
    assert model.write(0xC, 0xAABB_CCDD, strb=0b0101) == OKAY
    assert model.read(0xC) == (0x12BB_56DD, OKAY)
    assert model.read(0xE) == (0x12BB_56DD, OKAY)  # low address bits are ignored
    assert model.write(0x4, 0xFFFF_FFFF) == OKAY and model.read(0x4) == (0, OKAY)
    model.set_status("status", "count", 0x5A)
    assert model.read(0x4) == (0x5A00, OKAY)
    model.set_status("irq", "overflow", 0b0101)
    model.set_status("irq", "done", 1)
    assert model.read(0x8) == (0x51, OKAY)
    model.write(0x8, 0x10)  # clears overflow bit 0 only
    assert model.read(0x8) == (0x41, OKAY)
    model.write(0x8, 0xFF, strb=0b10)  # byte 0 not enabled: nothing cleared
    assert model.read(0x8) == (0x41, OKAY)
    model.set_status("irq", "overflow", 0b0001)  # set bits OR in
    assert model.field("irq", "overflow") == 0b0101
    assert model.read(0x10) == (0x1000_0100, OKAY)
    model.write(0x10, 0xF123_4567)  # threshold takes 0x567, level is ro, flags cleared
    assert model.read(0x10) == (0x0000_0567, OKAY)
    assert model.write(0x14, 1) == SLVERR and model.read(0x1C) == (0, SLVERR)
    with pytest.raises(ValueError, match="outside the 5-bit address space"):
        model.read(0x20)
    with pytest.raises(ValueError, match="ctrl.enable is rw"):
        model.set_status("ctrl", "enable", 1)
    with pytest.raises(ValueError, match="does not fit status.busy"):
        model.set_status("status", "busy", 2)
    model.reset()
    assert model.read(0x10) == (0x1000_0100, OKAY)


# --- emitted files ----------------------------------------------------------------------------


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.mark.parametrize("make", [example_regmap, wide_regmap])
def test_emitted_files_json_c_header_python_module(make, tmp_path):
    regmap = make()
    paths = write_regmap_files(regmap, tmp_path / "out")
    names = regmap_file_names(regmap)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names.values())
    assert regmap_from_json(paths["json"].read_text()) == regmap

    # C: the header compiles, and every constant and accessor has the map's value.
    p = regmap.name.upper()
    checks = [f"_Static_assert({p}_DATA_WIDTH == {regmap.data_width}, \"width\");",
              f"_Static_assert({p}_ADDR_WIDTH == {regmap.addr_width}, \"addr\");"]
    for r in regmap.registers:
        rp = f"{p}_{r.name.upper()}"
        checks += [f"_Static_assert({rp}_OFFSET == {r.address}u, \"{rp}\");",
                   f"_Static_assert({rp}_RESET == {r.reset_value}ull, \"{rp}\");"]
        for f in r.fields:
            fp = f"{rp}_{f.name.upper()}"
            ones = (1 << f.width) - 1
            checks += [f"_Static_assert({fp}_SHIFT == {f.offset}u && {fp}_WIDTH == {f.width}u "
                       f"&& {fp}_MASK == {f.mask}ull && {fp}_RESET == {f.reset}u, \"{fp}\");",
                       f"_Static_assert({fp}_GET({rp}_RESET) == {f.reset}u, \"{fp}\");",
                       f"_Static_assert({fp}_SET({ones}ull) == {fp}_MASK, \"{fp}\");",
                       f"_Static_assert({fp}_GET(~0ull) == {ones}ull, \"{fp}\");"]
    source = tmp_path / "check.c"
    source.write_text(f'#include "{paths["c"].name}"\n#include "{paths["c"].name}"\n'
                      + "\n".join(checks) + "\n")
    result = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror",
                             "-fsyntax-only", "-I", str(paths["c"].parent), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    # Python: the module imports and its constants and classes match the map.
    module = load_module(paths["python"], f"{regmap.name}_regs_{tmp_path.name}")
    assert (module.NAME, module.DATA_WIDTH, module.ADDR_WIDTH) == \
        (regmap.name, regmap.data_width, regmap.addr_width)
    assert list(module.REGISTERS) == [r.name for r in regmap.registers]
    rng = random.Random(1)
    for r in regmap.registers:
        rp = r.name.upper()
        assert getattr(module, f"{rp}_OFFSET") == r.address
        assert getattr(module, f"{rp}_RESET") == r.reset_value
        cls = module.REGISTERS[r.name]
        assert cls.ADDRESS == r.address and cls().pack() == r.reset_value
        word = rng.getrandbits(regmap.data_width)
        assert cls.unpack(word).pack() == word & r.mask()
        for f in r.fields:
            fp = f"{rp}_{f.name.upper()}"
            assert (getattr(module, f"{fp}_SHIFT"), getattr(module, f"{fp}_WIDTH"),
                    getattr(module, f"{fp}_MASK"), getattr(module, f"{fp}_RESET")) == \
                (f.offset, f.width, f.mask, f.reset)
            assert getattr(cls.unpack(word), f.name) == (word & f.mask) >> f.offset
    assert c_header(regmap) == paths["c"].read_text()
    assert python_module(regmap) == paths["python"].read_text()


def test_emitted_texts_survive_awkward_descriptions(tmp_path):
    regmap = RegisterMap("odd", [Register("r", [Field("x", 1, "rw", description="a */ b\n"
                                                      "'''\"\"\" \\ end")],
                                          description="quotes ' \" and */")],
                         description="line one\nline two */")
    paths = write_regmap_files(regmap, tmp_path)
    result = subprocess.run(["cc", "-std=c11", "-fsyntax-only", "-x", "c", str(paths["c"])],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert load_module(paths["python"], "odd_regs").R_X_MASK == 1


def test_golden_csr_never_imports_the_hardware():
    code = ("import sys, golden.memory.csr; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('hw', 'amaranth', 'sim')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- hardware: ports and the Amaranth simulator -----------------------------------------------


def test_ports_follow_the_description():
    dut = CSRBlock(example_regmap())
    by_name = {p["name"]: p for p in ports(dut)}
    assert by_name["axil__awaddr"] == {"name": "axil__awaddr", "direction": "input", "width": 5}
    assert by_name["axil__rdata"]["direction"] == "output"
    assert by_name["axil__wstrb"]["width"] == 4 and by_name["axil__bresp"]["width"] == 2
    assert by_name["ctrl__length"] == {"name": "ctrl__length", "direction": "output",
                                       "width": 16}
    assert by_name["status__count"]["direction"] == "input"
    assert by_name["irq__overflow__value"]["direction"] == "output"
    assert by_name["irq__overflow__set"] == {"name": "irq__overflow__set",
                                             "direction": "input", "width": 4}
    example = CSRBlock(spec="example")
    assert example.config == CSRConfig() and example.latency == 1
    wide = CSRBlock(CSRConfig.for_regmap(wide_regmap()))
    assert wide.axil.wdata.shape().width == 64
    for block in (dut, example, wide):
        Fragment.get(block, None)  # and they elaborate
    with pytest.raises(TypeError, match="not both"):
        CSRBlock(example_regmap(), spec="example")
    with pytest.raises(ValueError, match="spec must be"):
        CSRBlock(spec="nonesuch")


def run_sim(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_amaranth_sim_handshake_orders_and_backpressure():
    dut = CSRBlock(example_regmap())
    scratch = 0xC

    async def testbench(ctx):
        bus = dut.axil
        # W long before AW: held, no write, no B until AW arrives.
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.wdata, 0xCAFE_F00D)
        ctx.set(bus.wstrb, 0xF)
        assert ctx.get(bus.wready)
        await ctx.tick()
        ctx.set(bus.wvalid, 0)
        for _ in range(5):
            assert not ctx.get(bus.wready) and not ctx.get(bus.bvalid)
            assert ctx.get(dut.scratch.value) == 0x1234_5678
            await ctx.tick()
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.awaddr, scratch)
        await ctx.tick()
        ctx.set(bus.awvalid, 0)
        await ctx.tick()
        assert ctx.get(bus.bvalid) and ctx.get(bus.bresp) == OKAY
        assert ctx.get(dut.scratch.value) == 0xCAFE_F00D
        # B held back: the next AW and W are taken into the holding registers, but the write
        # waits for B to drain; a third AW is refused meanwhile.
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.awaddr, 0x14)  # unmapped
        ctx.set(bus.wvalid, 1)
        ctx.set(bus.wdata, 0)
        await ctx.tick()
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        for _ in range(3):
            assert ctx.get(bus.bvalid) and ctx.get(bus.bresp) == OKAY
            assert not ctx.get(bus.awready) and not ctx.get(bus.wready)
            await ctx.tick()
        ctx.set(bus.bready, 1)
        await ctx.tick()  # first B taken; the held write happens in the same cycle
        assert ctx.get(bus.bvalid) and ctx.get(bus.bresp) == SLVERR
        await ctx.tick()
        ctx.set(bus.bready, 0)
        assert not ctx.get(bus.bvalid) and ctx.get(bus.awready) and ctx.get(bus.wready)
        assert ctx.get(dut.scratch.value) == 0xCAFE_F00D
        # R held while rready is low; no new AR taken meanwhile.
        ctx.set(bus.arvalid, 1)
        ctx.set(bus.araddr, scratch + 3)
        await ctx.tick()
        ctx.set(bus.araddr, 0)
        for _ in range(3):
            assert ctx.get(bus.rvalid) and not ctx.get(bus.arready)
            assert ctx.get(bus.rdata) == 0xCAFE_F00D and ctx.get(bus.rresp) == OKAY
            await ctx.tick()
        ctx.set(bus.rready, 1)
        await ctx.tick()
        ctx.set(bus.arvalid, 0)
        assert not ctx.get(bus.rvalid) and ctx.get(bus.arready)

    run_sim(dut, testbench)


def test_amaranth_sim_w1c_set_wins_over_a_clear_in_the_same_cycle():
    dut = CSRBlock(example_regmap())

    async def testbench(ctx):
        bus, done = dut.axil, dut.irq.done
        ctx.set(done.set, 1)
        await ctx.tick()
        ctx.set(done.set, 0)
        assert ctx.get(done.value) == 1
        for set_during_write in (1, 0):
            ctx.set(bus.awvalid, 1)
            ctx.set(bus.awaddr, 0x8)
            ctx.set(bus.wvalid, 1)
            ctx.set(bus.wdata, 1)
            ctx.set(bus.wstrb, 0xF)
            ctx.set(bus.bready, 1)
            await ctx.tick()  # AW and W accepted together
            ctx.set(bus.awvalid, 0)
            ctx.set(bus.wvalid, 0)
            ctx.set(done.set, set_during_write)  # the cycle the write takes effect
            await ctx.tick()
            ctx.set(done.set, 0)
            assert ctx.get(bus.bvalid)
            assert ctx.get(done.value) == set_during_write
            await ctx.tick()

    run_sim(dut, testbench)


@pytest.mark.parametrize("make", [example_regmap, wide_regmap, small])
def test_amaranth_sim_random_traffic_with_any_strobes(make):
    regmap = make()
    dut = CSRBlock(regmap)
    model = csr_model(regmap)
    rng = random.Random(7)
    n_ops = 150

    def outputs(ctx):
        for r in regmap.registers:
            port = getattr(dut, r.name)
            for f in r.fields:
                if f.access == "rw":
                    yield f"{r.name}.{f.name}", ctx.get(getattr(port, f.name))
                elif f.access == "w1c":
                    yield f"{r.name}.{f.name}", ctx.get(getattr(port, f.name).value)

    async def testbench(ctx):
        bus = AxiLiteSimMaster(ctx, dut.axil)
        space = 1 << regmap.addr_width
        for _ in range(n_ops):
            delays = {k: rng.choice([0, 0, 1, 3]) for k in ("a", "w", "b")}
            kind = rng.random()
            address = rng.randrange(space)
            if kind < 0.45:
                data = rng.getrandbits(regmap.data_width)
                strb = rng.getrandbits(regmap.strobe_width)  # any pattern, 0 included
                resp = await bus.write(address, data, strb, aw_wait=delays["a"],
                                       w_wait=delays["w"], b_wait=delays["b"])
                assert resp == model.write(address, data, strb)
            elif kind < 0.85:
                got = await bus.read(address, ar_wait=delays["a"], r_wait=delays["b"])
                assert got == model.read(address), f"read {address:#x}"
            else:
                r = rng.choice(regmap.registers)
                f = rng.choice(r.fields)
                if f.access == "rw":
                    continue
                value = rng.getrandbits(f.width)
                port = getattr(getattr(dut, r.name), f.name)
                ctx.set(port if f.access == "ro" else port.set, value)
                await ctx.tick()
                if f.access == "w1c":
                    ctx.set(port.set, 0)
                model.set_status(r.name, f.name, value)
            expected = {f"{r.name}.{f.name}": model.field(r.name, f.name)
                        for r in regmap.registers for f in r.fields if f.access != "ro"}
            assert dict(outputs(ctx)) == expected

    run_sim(dut, testbench)


# --- cocotb on Verilator: the emitted Verilog -------------------------------------------------


@pytest.mark.parametrize("make,module,seed", [(example_regmap, "csr_example", 1),
                                              (wide_regmap, "csr_wide", 2)])
def test_verilator_axi_lite_master_against_golden_model(make, module, seed, measure):
    regmap = make()
    sim_build = build(CSRBlock(regmap), module)
    test_dir = new_test_dir(module)
    spec = {"regmap": regmap_json(regmap), "seed": seed, "ops": 400, "rounds": 25,
            "pause": 0.3, "report": str(test_dir / "report")}
    run_cocotb_spec(sim_build, "csr_tb", spec, env_var="ACCELGEN_CSR_SPEC", test_dir=test_dir,
                    seed=seed)
    reports = {p.name.split(".")[1]: json.loads(p.read_text())
               for p in test_dir.glob("report.*.json")}
    assert sorted(reports) == sorted(["reset_values", "random_traffic",
                                      "concurrent_reads_and_writes", "w1c_set_then_clear",
                                      "ro_fields_read_the_inputs",
                                      "unmapped_addresses_answer_slverr"])
    traffic = reports["random_traffic"]
    assert traffic["partial_writes"] > 20 and traffic["slverr"] > 10
    assert traffic["set_pulses"] > 5 and traffic["status_changes"] > 5
    measure(f"{module}: {traffic['writes']} writes ({traffic['partial_writes']} partial), "
            f"{traffic['reads']} reads, {traffic['slverr']} SLVERR in {traffic['cycles']} "
            f"cycles with 30% wait states on every channel")
    shutil.rmtree(test_dir, ignore_errors=True)
