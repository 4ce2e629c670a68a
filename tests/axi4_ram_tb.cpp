// Unit-test driver of sim/models/axi4_ram.h (tests/test_axi4_ram.py builds and runs it):
// an AXI4 master with seeded random valid delays and ready drops drives the RAM through
// plain signals (no Verilator): first every write burst (AWs issued ahead, W beats possibly
// before their AW), then, once every B is back, every read burst (ARs issued ahead).
//
// stdin:  BEAT_BYTES MEM_BYTES STALL SEED MASTER_STALL
//         then bursts: "W ADDR BEATS" + BEATS lines "DATA_HEX STRB LAST" | "R ADDR BEATS"
// stdout: "AW k cycle", "W k beat cycle", "B k resp cycle", "AR k cycle",
//         "R k beat resp last DATA_HEX cycle" per handshake, "CYCLES n", "ERROR message"
//         (if the RAM saw a protocol error), then "MEM" and the memory as hex, one line.
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "axi4_ram.h"

struct Signals {
    uint8_t awvalid = 0, awready = 0; uint32_t awaddr = 0; uint8_t awlen = 0, awsize = 0,
            awburst = 1, awid = 0;
    uint8_t wvalid = 0, wready = 0; uint64_t wdata = 0; uint8_t wstrb = 0, wlast = 0;
    uint8_t bvalid = 0, bready = 0, bid = 0, bresp = 0;
    uint8_t arvalid = 0, arready = 0; uint32_t araddr = 0; uint8_t arlen = 0, arsize = 0,
            arburst = 1, arid = 0;
    uint8_t rvalid = 0, rready = 0; uint64_t rdata = 0; uint8_t rid = 0, rresp = 0, rlast = 0;
};

struct Burst {
    bool write;
    uint32_t addr;
    unsigned beats;
    std::vector<uint64_t> data;
    std::vector<unsigned> strb, last;
};

int main() {
    size_t beat_bytes, mem_bytes;
    double stall, master_stall;
    uint64_t seed;
    std::cin >> beat_bytes >> mem_bytes >> stall >> seed >> master_stall;
    std::vector<Burst> writes, reads;
    std::string kind;
    while (std::cin >> kind) {
        Burst b{kind == "W", 0, 0, {}, {}, {}};
        std::cin >> std::hex >> b.addr >> std::dec >> b.beats;
        if (b.write) {
            for (unsigned i = 0; i < b.beats; ++i) {
                uint64_t d; unsigned s, l;
                std::cin >> std::hex >> d >> s >> std::dec >> l;
                b.data.push_back(d); b.strb.push_back(s); b.last.push_back(l);
            }
            writes.push_back(b);
        } else {
            reads.push_back(b);
        }
    }
    unsigned size = 0;
    while ((1u << size) < beat_bytes) ++size;

    Signals s;
    accelgen::Memory memory;
    memory.bytes.assign(mem_bytes, 0);
    accelgen::Axi4Ram ram(accelgen::axi4_bus(
        s.awvalid, s.awready, s.awaddr, s.awlen, s.awsize, s.awburst, s.awid, s.wvalid,
        s.wready, s.wdata, s.wstrb, s.wlast, s.bvalid, s.bready, s.bid, s.bresp, s.arvalid,
        s.arready, s.araddr, s.arlen, s.arsize, s.arburst, s.arid, s.rvalid, s.rready,
        s.rdata, s.rid, s.rresp, s.rlast), memory, beat_bytes, stall, seed);

    std::mt19937_64 random(seed ^ 0xA5A5);
    std::bernoulli_distribution hold(master_stall);
    size_t aw = 0, w = 0, wbeat = 0, b = 0, ar = 0, r = 0, rbeat = 0;
    uint64_t cycle = 0;
    // The master's outputs, registered like a DUT's: decided after the edge, seen before
    // the next one.
    while ((b < writes.size() || r < reads.size()) && cycle < 1000000) {
        ram.edge();
        // Handshakes at this edge.
        if (s.awvalid && s.awready) std::printf("AW %zu %" PRIu64 "\n", aw++, cycle);
        if (s.wvalid && s.wready) {
            std::printf("W %zu %zu %" PRIu64 "\n", w, wbeat, cycle);
            if (++wbeat == writes[w].beats) { ++w; wbeat = 0; }
        }
        if (s.bvalid && s.bready) std::printf("B %zu %u %" PRIu64 "\n", b++, s.bresp, cycle);
        if (s.arvalid && s.arready) std::printf("AR %zu %" PRIu64 "\n", ar++, cycle);
        if (s.rvalid && s.rready) {
            std::printf("R %zu %zu %u %u %" PRIx64 " %" PRIu64 "\n", r, rbeat, s.rresp,
                        s.rlast, s.rdata, cycle);
            if (++rbeat == reads[r].beats) { ++r; rbeat = 0; }
        }
        ram.drive();
        // The master's next outputs (valid holds until its handshake).
        if (!s.awvalid || s.awready) {
            s.awvalid = aw < writes.size() && !hold(random);
            if (s.awvalid) {
                s.awaddr = writes[aw].addr; s.awlen = writes[aw].beats - 1; s.awsize = size;
                s.awid = aw & 1;
            }
        }
        if (!s.wvalid || s.wready) {
            s.wvalid = w < writes.size() && !hold(random);
            if (s.wvalid) {
                s.wdata = writes[w].data[wbeat]; s.wstrb = writes[w].strb[wbeat];
                s.wlast = writes[w].last[wbeat];
            }
        }
        s.bready = !hold(random);
        bool reading = b == writes.size();
        if (!s.arvalid || s.arready) {
            s.arvalid = reading && ar < reads.size() && !hold(random);
            if (s.arvalid) {
                s.araddr = reads[ar].addr; s.arlen = reads[ar].beats - 1; s.arsize = size;
                s.arid = ar & 1;
            }
        }
        s.rready = !hold(random);
        ++cycle;
    }
    std::printf("CYCLES %" PRIu64 "\n", cycle);
    if (!ram.error().empty()) std::printf("ERROR %s\n", ram.error().c_str());
    std::printf("IDLE %d\nMEM ", int(ram.idle()));
    for (uint8_t byte : memory.bytes) std::printf("%02x", byte);
    std::printf("\n");
    return 0;
}
