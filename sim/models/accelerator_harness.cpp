// Native Verilator harness of the accelerator top (hw.accelerator_top): no Python per cycle.
//
// The DRAM is sim/models/axi4_ram.h behind every AXI4 master port (one shared memory), filled
// from a file before the run and dumped after it; the host is a C++ AXI4-Lite master that
// runs the register plan sim/accelerator_native.py writes (identity checks, program load,
// start, status polling, reading the cycle counter), like sim/accelerator_host.py does under
// cocotb.
//
// The design's names come from accelgen_top.h, which sim/accelerator_native.py writes into
// the build: VTOP (the Verilated class), VTOP_HEADER, ACCELGEN_AXI_PORTS(X) (X(prefix) per
// AXI4 master port, e.g. X(axi___05F)) and ACCELGEN_AXIL (the AXI4-Lite slave's prefix).
//
// Usage: harness PLAN DRAM_IN DRAM_OUT REPORT
//   PLAN: one command per line:
//     dram_bytes N | beat_bytes N | stall P | seed N | max_cycles N | reset_cycles N
//     write ADDR VALUE           a register write (must answer OKAY)
//     expect ADDR VALUE NAME     a register read that must return VALUE (identity)
//     wait ADDR POLL             poll the status register at ADDR every POLL cycles until
//                                done or error is set and busy is clear
//     read ADDR NAME             a register read, reported under NAME
//   REPORT: JSON {"values": {NAME: value}, "sim_cycles", "seconds", "cpu_seconds",
//           "failure", "dram": {bursts and beats}}
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "verilated.h"
#include "accelgen_top.h"
#include VTOP_HEADER
#include "axi4_ram.h"

#define ACCELGEN_CAT2(a, b) a##b
#define ACCELGEN_CAT(a, b) ACCELGEN_CAT2(a, b)
#define ACCELGEN_P(name) ACCELGEN_CAT(ACCELGEN_AXIL, name)

namespace {

struct Op {
    enum Kind { kWrite, kExpect, kWait, kRead } kind;
    uint32_t addr = 0, value = 0;
    std::string name;
};

struct Plan {
    size_t dram_bytes = 4096, beat_bytes = 0;
    double stall = 0;
    uint64_t seed = 0, max_cycles = 1000000, reset_cycles = 3;
    std::vector<Op> ops;
};

Plan read_plan(const char* path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(std::string("cannot read ") + path);
    Plan plan;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string cmd;
        if (!(words >> cmd)) continue;
        Op op;
        if (cmd == "dram_bytes") words >> plan.dram_bytes;
        else if (cmd == "beat_bytes") words >> plan.beat_bytes;
        else if (cmd == "stall") words >> plan.stall;
        else if (cmd == "seed") words >> plan.seed;
        else if (cmd == "max_cycles") words >> plan.max_cycles;
        else if (cmd == "reset_cycles") words >> plan.reset_cycles;
        else if (cmd == "write") { op.kind = Op::kWrite; words >> op.addr >> op.value; plan.ops.push_back(op); }
        else if (cmd == "expect") { op.kind = Op::kExpect; words >> op.addr >> op.value >> op.name; plan.ops.push_back(op); }
        else if (cmd == "wait") { op.kind = Op::kWait; words >> op.addr >> op.value; plan.ops.push_back(op); }
        else if (cmd == "read") { op.kind = Op::kRead; words >> op.addr >> op.name; plan.ops.push_back(op); }
        else throw std::runtime_error("unknown plan command: " + cmd);
    }
    return plan;
}

// The host: an AXI4-Lite master stepping through the plan, one access at a time.
class Host {
  public:
    Host(VTOP* top, const Plan& plan) : top_(top), plan_(plan) {}

    bool finished() const { return pc_ >= plan_.ops.size() || !failure.empty(); }

    // Before the rising edge: see which handshakes happen, advance.
    void edge() {
        if (finished()) return;
        if (countdown_ > 0) {  // between status polls: nothing on the bus
            if (--countdown_ == 0) start_access();
            return;
        }
        if (!busy_) start_access();
        else step_access();
    }

    // After the edge: drive the AXI4-Lite inputs.
    void drive() {
        top_->ACCELGEN_P(awvalid) = awvalid_;
        top_->ACCELGEN_P(wvalid) = wvalid_;
        top_->ACCELGEN_P(bready) = bready_;
        top_->ACCELGEN_P(arvalid) = arvalid_;
        top_->ACCELGEN_P(rready) = rready_;
        top_->ACCELGEN_P(awaddr) = addr_;
        top_->ACCELGEN_P(araddr) = addr_;
        top_->ACCELGEN_P(wdata) = wdata_;
        top_->ACCELGEN_P(wstrb) = 0xF;
    }

    std::vector<std::pair<std::string, uint32_t>> values;
    std::string failure;

  private:
    void start_access() {
        const Op& op = plan_.ops[pc_];
        addr_ = op.addr;
        busy_ = true;
        if (op.kind == Op::kWrite) {
            wdata_ = op.value;
            awvalid_ = wvalid_ = 1;
        } else {
            arvalid_ = 1;
        }
    }

    void step_access() {
        const Op& op = plan_.ops[pc_];
        if (op.kind == Op::kWrite) {
            if (awvalid_ && top_->ACCELGEN_P(awready)) awvalid_ = 0;
            if (wvalid_ && top_->ACCELGEN_P(wready)) wvalid_ = 0;
            if (bready_ && top_->ACCELGEN_P(bvalid)) {
                bready_ = 0;
                if (top_->ACCELGEN_P(bresp) != 0) fail("write", op);
                else done();
                return;
            }
            if (!awvalid_ && !wvalid_) bready_ = 1;
            return;
        }
        if (arvalid_ && top_->ACCELGEN_P(arready)) {
            arvalid_ = 0;
            rready_ = 1;
            return;
        }
        if (rready_ && top_->ACCELGEN_P(rvalid)) {
            rready_ = 0;
            uint32_t value = top_->ACCELGEN_P(rdata);
            if (top_->ACCELGEN_P(rresp) != 0) return fail("read", op);
            if (op.kind == Op::kExpect && value != op.value) {
                char text[160];
                std::snprintf(text, sizeof text, "register %s reads %#x, expected %#x: the "
                              "hardware is not built from this config", op.name.c_str(),
                              value, op.value);
                failure = text;
                return;
            }
            if (op.kind == Op::kRead) values.emplace_back(op.name, value);
            if (op.kind == Op::kWait) {
                bool busy = value & 4, stopped = value & 3;
                if (busy || !stopped) {  // poll again in op.value cycles
                    busy_ = false;
                    countdown_ = op.value ? op.value : 1;
                    return;
                }
                values.emplace_back("status", value);
            }
            done();
        }
    }

    void done() { busy_ = false; ++pc_; }
    void fail(const char* what, const Op& op) {
        char text[120];
        std::snprintf(text, sizeof text, "%s of %#x answered an error response", what,
                      op.addr);
        failure = text;
    }

    VTOP* top_;
    const Plan& plan_;
    size_t pc_ = 0;
    bool busy_ = false;
    uint64_t countdown_ = 0;
    uint8_t awvalid_ = 0, wvalid_ = 0, bready_ = 0, arvalid_ = 0, rready_ = 0;
    uint32_t addr_ = 0, wdata_ = 0;
};

std::string json_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) { out += ' '; continue; }
        out += c;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s PLAN DRAM_IN DRAM_OUT REPORT\n", argv[0]);
        return 2;
    }
    Plan plan = read_plan(argv[1]);
    accelgen::Memory memory;
    memory.bytes.assign(plan.dram_bytes, 0);
    {
        std::ifstream in(argv[2], std::ios::binary);
        in.read(reinterpret_cast<char*>(memory.bytes.data()),
                static_cast<std::streamsize>(memory.bytes.size()));
    }

    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc, argv);
    auto top = std::make_unique<VTOP>(context.get());

#define ACCELGEN_MAKE_RAM(prefix)                                                             \
    accelgen::Axi4Ram ram_##prefix(AXI4_RAM_BUS(top.get(), prefix), memory, plan.beat_bytes, \
                                   plan.stall, plan.seed * 16 + ram_index++);
#define ACCELGEN_RAM_EDGE(prefix) ram_##prefix.edge();
#define ACCELGEN_RAM_DRIVE(prefix) ram_##prefix.drive();
#define ACCELGEN_RAM_RESET(prefix) ram_##prefix.reset();
#define ACCELGEN_RAM_ERROR(prefix) if (failure.empty()) failure = ram_##prefix.error();
#define ACCELGEN_RAM_STATS(prefix)                                                            \
    { auto& s = ram_##prefix.stats(); read_bursts += s.read_bursts; write_bursts +=           \
      s.write_bursts; read_beats += s.read_beats; write_beats += s.write_beats;              \
      slave_errors += s.slave_errors; }

    uint64_t ram_index = 0;
    ACCELGEN_AXI_PORTS(ACCELGEN_MAKE_RAM)
    Host host(top.get(), plan);

    auto started = std::chrono::steady_clock::now();
    std::clock_t cpu_started = std::clock();
    uint64_t cycle = 0;
    // Reset: the RAMs idle, the host idle.
    top->rst = 1;
    top->clk = 0;
    host.drive();
    top->eval();
    for (; cycle < plan.reset_cycles; ++cycle) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    top->rst = 0;
    top->eval();
    // One cycle: the models see the DUT's outputs as the flops will at the edge, the edge,
    // then the models' new outputs and the falling clock settle the combinational logic.
    while (!host.finished() && cycle < plan.max_cycles) {
        ACCELGEN_AXI_PORTS(ACCELGEN_RAM_EDGE)
        host.edge();
        top->clk = 1;
        top->eval();
        ACCELGEN_AXI_PORTS(ACCELGEN_RAM_DRIVE)
        host.drive();
        top->clk = 0;
        top->eval();
        ++cycle;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                   started).count();
    double cpu_seconds = double(std::clock() - cpu_started) / CLOCKS_PER_SEC;
    top->final();

    std::string failure = host.failure;
    if (failure.empty() && !host.finished()) {
        char text[80];
        std::snprintf(text, sizeof text, "still running after %" PRIu64 " cycles", cycle);
        failure = text;
    }
    ACCELGEN_AXI_PORTS(ACCELGEN_RAM_ERROR)
    uint64_t read_bursts = 0, write_bursts = 0, read_beats = 0, write_beats = 0,
             slave_errors = 0;
    ACCELGEN_AXI_PORTS(ACCELGEN_RAM_STATS)

    {
        std::ofstream out(argv[3], std::ios::binary);
        out.write(reinterpret_cast<const char*>(memory.bytes.data()),
                  static_cast<std::streamsize>(memory.bytes.size()));
    }
    std::ofstream report(argv[4]);
    report << "{\"values\": {";
    for (size_t i = 0; i < host.values.size(); ++i)
        report << (i ? ", " : "") << '"' << host.values[i].first << "\": "
               << host.values[i].second;
    report << "}, \"sim_cycles\": " << cycle << ", \"seconds\": " << seconds
           << ", \"cpu_seconds\": " << cpu_seconds << ", \"dram\": {\"read_bursts\": "
           << read_bursts << ", \"write_bursts\": " << write_bursts << ", \"read_beats\": "
           << read_beats << ", \"write_beats\": " << write_beats << ", \"slave_errors\": "
           << slave_errors << "}, \"failure\": ";
    if (failure.empty()) report << "null";
    else report << '"' << json_escape(failure) << '"';
    report << "}\n";
    return 0;
}
