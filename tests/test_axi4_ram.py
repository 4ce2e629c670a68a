"""The C++ AXI4 memory model of the native harness (sim/models/axi4_ram.h), on its own: a C++
master (tests/axi4_ram_tb.cpp, no Verilator) with random valid delays and ready drops writes
random bursts, then reads bursts back; every read beat and the final memory are checked here
against a NumPy memory, with and without the RAM's wait states, and the zero-wait timing is
the one cocotbext-axi's AxiRam has (tests/test_accelerator_native.py compares the two on the
accelerator)."""

import subprocess

import numpy as np
import pytest

from sim.accelerator_native import MODELS

MEM_BYTES = 8192


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    exe = tmp_path_factory.mktemp("axi4_ram") / "axi4_ram_tb"
    source = MODELS.parent.parent / "tests" / "axi4_ram_tb.cpp"
    subprocess.run(["c++", "-std=c++17", "-O1", "-Wall", "-Werror", f"-I{MODELS}",
                    str(source), "-o", str(exe)], check=True)
    return exe


def _bursts(rng, beat_bytes, count, *, outside=False):
    """Random write bursts (addresses in the memory, within a 4 KiB page) and reads of
    them; with ``outside``, one read and one write past the end of the memory."""
    writes, reads = [], []
    for _ in range(count):
        beats = int(rng.integers(1, 9))
        page_beats = 4096 // beat_bytes
        start = int(rng.integers(0, page_beats - beats + 1))
        addr = int(rng.integers(0, MEM_BYTES // 4096)) * 4096 + start * beat_bytes
        data = rng.integers(0, 1 << 63, beats, dtype=np.uint64) * 2 + 1
        strb = [int(rng.integers(0, 1 << beat_bytes)) if rng.random() < 0.3
                else (1 << beat_bytes) - 1 for _ in range(beats)]
        writes.append((addr, beats, [int(d) & ((1 << 8 * beat_bytes) - 1) for d in data],
                       strb))
        reads.append((addr, beats))
    if outside:
        writes.append((MEM_BYTES, 2, [1, 2], [(1 << beat_bytes) - 1] * 2))
        reads.append((MEM_BYTES, 2))
    return writes, reads


def _run(driver, beat_bytes, writes, reads, *, stall=0.0, master_stall=0.0, seed=1,
         wrong_last=False):
    lines = [f"{beat_bytes} {MEM_BYTES} {stall} {seed} {master_stall}"]
    for addr, beats, data, strb in writes:
        lines.append(f"W {addr:x} {beats}")
        lines += [f"{d:x} {s:x} {int((k == beats - 1) != wrong_last)}"
                  for k, (d, s) in enumerate(zip(data, strb))]
    lines += [f"R {addr:x} {beats}" for addr, beats in reads]
    out = subprocess.run([str(driver)], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, check=True).stdout.split("\n")
    events = {}
    for line in out:
        kind, *fields = line.split(" ") if line else [""]
        events.setdefault(kind, []).append(fields)
    memory = bytes.fromhex(events["MEM"][0][0])
    return events, memory


def _expected(beat_bytes, writes):
    memory = bytearray(MEM_BYTES)
    for addr, beats, data, strb in writes:
        for k in range(beats):
            base = addr + k * beat_bytes
            if base + beat_bytes > MEM_BYTES:
                continue
            for lane in range(beat_bytes):
                if strb[k] >> lane & 1:
                    memory[base + lane] = data[k] >> (8 * lane) & 0xFF
    return bytes(memory)


@pytest.mark.parametrize("beat_bytes", [4, 8])
@pytest.mark.parametrize("stall,master_stall", [(0.0, 0.0), (0.0, 0.4), (0.5, 0.0), (0.5, 0.4)])
def test_ram_stores_and_returns_every_beat(driver, rng, beat_bytes, stall, master_stall):
    writes, reads = _bursts(rng, beat_bytes, 24, outside=True)
    events, memory = _run(driver, beat_bytes, writes, reads, stall=stall,
                          master_stall=master_stall, seed=int(rng.integers(1 << 30)))
    expected = _expected(beat_bytes, writes)
    assert memory == expected
    assert "ERROR" not in events and events["IDLE"] == [["1"]]
    # Every B: OKAY, but SLVERR for the burst past the memory.
    assert [int(resp) for _, resp, _ in events["B"]] == [0] * (len(writes) - 1) + [2]
    got = {}
    for burst, beat, resp, last, data, _ in events["R"]:
        got[int(burst), int(beat)] = (int(resp), int(last), int(data, 16))
    assert len(got) == sum(beats for _, beats in reads)
    for r, (addr, beats) in enumerate(reads):
        for k in range(beats):
            base = addr + k * beat_bytes
            inside = base + beat_bytes <= MEM_BYTES
            value = int.from_bytes(expected[base:base + beat_bytes], "little") if inside else 0
            assert got[r, k] == (0 if inside else 2, int(k == beats - 1), value), (r, k)


def test_ram_timing_without_wait_states_is_axirams(driver, rng):
    # AxiRam under cocotb: a read burst's first beat is valid the cycle after the one after
    # its AR handshake, then one beat per cycle; a B is valid the cycle after the one after
    # the last W beat; AW, W and AR are ready whenever their queue (2 entries) has room.
    writes, reads = _bursts(rng, 8, 6)
    events, _ = _run(driver, 8, writes, reads)
    ar = [int(c) for _, c in events["AR"]]
    r_first = [int(f[5]) for f in events["R"] if f[1] == "0"]
    # Back-to-back ARs queue up: each burst starts right after the previous one's last beat.
    assert r_first[0] - ar[0] == 2
    ends = [int(f[5]) for f in events["R"] if f[3] == "1"]
    assert all(start == end + 1 for start, end in zip(r_first[1:], ends))
    w_last = [int(f[2]) for f in events["W"] if int(f[1]) == writes[int(f[0])][1] - 1]
    b = [int(f[2]) for f in events["B"]]
    assert [x - y for x, y in zip(b, w_last)] == [2] * len(writes)


def test_ram_wait_states_cost_cycles(driver, rng):
    writes, reads = _bursts(rng, 8, 16)
    cycles = [int(_run(driver, 8, writes, reads, stall=stall, seed=5)[0]["CYCLES"][0][0])
              for stall in (0.0, 0.3, 0.6)]
    assert cycles[0] < cycles[1] < cycles[2]


def test_ram_reports_a_wrong_wlast(driver, rng):
    writes, reads = _bursts(rng, 8, 2)
    events, _ = _run(driver, 8, writes, reads, wrong_last=True)
    assert events["ERROR"][0][:3] == ["wlast", "is", "wrong"]
