// An AXI4 slave memory for native Verilator harnesses: the C++ counterpart of cocotbext-axi's
// AxiRam, cycle for cycle when it has no wait states (sim/accelerator_native.py checks this
// against the cocotb testbench: same outputs, same cycles).
//
// Timing (what AxiRam does under cocotb, derived from cocotbext-axi's StreamSink/StreamSource):
// every channel is a queue of at most two entries; a sink (AW, W, AR) raises ready while its
// queue is not full; a source (B, R) drives a queued entry one clock edge after it was queued.
// A read burst's beats are queued as its AR leaves the AR queue (memory read at that moment),
// a write burst's B once its last W beat has been taken. One burst at a time per direction,
// in order, like AxiRam. Out-of-range beats answer SLVERR (reads return zeros), as AxiRam's
// failed memory accesses do.
//
// Wait states: each channel can pause with probability `stall` per cycle (a seeded
// xorshift), like cocotbext-axi's pause generators: a paused sink holds ready low, a paused
// source does not start a new beat.
//
// The model talks to the DUT through references to its ports (Verilator's CData/SData/IData/
// QData or VlWide<N>), bound with AXI4_RAM_BUS(top, prefix). Per cycle the harness calls
// edge() right before the rising clock edge (it samples the DUT's outputs as the flops will)
// and drive() right after it (the new inputs the DUT sees during the next cycle).
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace accelgen {

// Bytes <-> port values, little-endian (x86 and Verilator's word order agree).
template <typename T> inline void port_to_bytes(const T& port, uint8_t* out, size_t n) {
    uint64_t v = static_cast<uint64_t>(port);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
template <typename T> inline void bytes_to_port(T& port, const uint8_t* in, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(in[i]) << (8 * i);
    port = static_cast<T>(v);
}
template <typename T> inline uint64_t port_value(const T& port) {
    return static_cast<uint64_t>(port);
}
#ifdef VERILATOR
template <std::size_t N> inline void port_to_bytes(const VlWide<N>& port, uint8_t* out,
                                                   size_t n) {
    std::memcpy(out, port.data(), n);
}
template <std::size_t N> inline void bytes_to_port(VlWide<N>& port, const uint8_t* in,
                                                   size_t n) {
    std::memcpy(port.data(), in, n);
}
template <std::size_t N> inline uint64_t port_value(const VlWide<N>& port) {
    return port[0] | (N > 1 ? static_cast<uint64_t>(port[1]) << 32 : 0);
}
#endif

// References to one AXI4 master port's signals (the master's outputs are read, its inputs
// written). Build it with AXI4_RAM_BUS, which names the ports by prefix.
template <typename Addr, typename Len, typename Data, typename Strb, typename Id>
struct Axi4Bus {
    uint8_t &awvalid, &awready; Addr& awaddr; Len& awlen; uint8_t &awsize, &awburst; Id& awid;
    uint8_t &wvalid, &wready; Data& wdata; Strb& wstrb; uint8_t& wlast;
    uint8_t &bvalid, &bready; Id& bid; uint8_t& bresp;
    uint8_t &arvalid, &arready; Addr& araddr; Len& arlen; uint8_t &arsize, &arburst; Id& arid;
    uint8_t &rvalid, &rready; Data& rdata; Id& rid; uint8_t &rresp, &rlast;
};

template <typename Addr, typename Len, typename Data, typename Strb, typename Id>
inline Axi4Bus<Addr, Len, Data, Strb, Id> axi4_bus(
    uint8_t& awvalid, uint8_t& awready, Addr& awaddr, Len& awlen, uint8_t& awsize,
    uint8_t& awburst, Id& awid, uint8_t& wvalid, uint8_t& wready, Data& wdata, Strb& wstrb,
    uint8_t& wlast, uint8_t& bvalid, uint8_t& bready, Id& bid, uint8_t& bresp,
    uint8_t& arvalid, uint8_t& arready, Addr& araddr, Len& arlen, uint8_t& arsize,
    uint8_t& arburst, Id& arid, uint8_t& rvalid, uint8_t& rready, Data& rdata, Id& rid,
    uint8_t& rresp, uint8_t& rlast) {
    return {awvalid, awready, awaddr, awlen, awsize, awburst, awid, wvalid, wready, wdata,
            wstrb, wlast, bvalid, bready, bid, bresp, arvalid, arready, araddr, arlen, arsize,
            arburst, arid, rvalid, rready, rdata, rid, rresp, rlast};
}

#define AXI4_RAM_BUS(top, p)                                                                  \
    ::accelgen::axi4_bus(                                                                     \
        (top)->p##awvalid, (top)->p##awready, (top)->p##awaddr, (top)->p##awlen,              \
        (top)->p##awsize, (top)->p##awburst, (top)->p##awid, (top)->p##wvalid,                \
        (top)->p##wready, (top)->p##wdata, (top)->p##wstrb, (top)->p##wlast,                  \
        (top)->p##bvalid, (top)->p##bready, (top)->p##bid, (top)->p##bresp,                   \
        (top)->p##arvalid, (top)->p##arready, (top)->p##araddr, (top)->p##arlen,              \
        (top)->p##arsize, (top)->p##arburst, (top)->p##arid, (top)->p##rvalid,                \
        (top)->p##rready, (top)->p##rdata, (top)->p##rid, (top)->p##rresp, (top)->p##rlast)

// Byte-addressed memory shared by the slaves of all ports.
struct Memory {
    std::vector<uint8_t> bytes;
    bool in_range(uint64_t address, size_t n) const {
        return address + n <= bytes.size();
    }
};

// Seeded wait states: xorshift64*, one draw per channel per cycle when stall > 0.
class Pauses {
  public:
    Pauses(double stall, uint64_t seed)
        : threshold_(stall <= 0 ? 0 : stall >= 1 ? UINT64_MAX
                                                 : static_cast<uint64_t>(stall * 18446744073709551616.0)),
          state_(seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL) {
        if (state_ == 0) state_ = 1;
    }
    bool next() {
        if (threshold_ == 0) return false;
        state_ ^= state_ >> 12; state_ ^= state_ << 25; state_ ^= state_ >> 27;
        return state_ * 0x2545F4914F6CDD1DULL < threshold_;
    }
    bool active() const { return threshold_ != 0; }

  private:
    uint64_t threshold_, state_;
};

// Counters a run reports.
struct Axi4RamStats {
    uint64_t read_bursts = 0, write_bursts = 0, read_beats = 0, write_beats = 0;
    uint64_t slave_errors = 0;
};

template <typename Bus> class Axi4Ram {
  public:
    static constexpr int kQueue = 2;  // AxiRam's queue_occupancy_limit on every channel

    // `beat_bytes`: the data width in bytes; `stall`: wait-state probability per channel.
    Axi4Ram(Bus bus, Memory& memory, size_t beat_bytes, double stall = 0, uint64_t seed = 0)
        : bus_(bus), mem_(memory), beat_bytes_(beat_bytes),
          pause_{Pauses(stall, seed * 8 + 0), Pauses(stall, seed * 8 + 1),
                 Pauses(stall, seed * 8 + 2), Pauses(stall, seed * 8 + 3),
                 Pauses(stall, seed * 8 + 4)} {
        if (beat_bytes == 0 || beat_bytes > sizeof(Beat::data))
            throw std::invalid_argument("beat_bytes must be 1..128");
        reset();
    }

    // Idle outputs, empty queues (the reset state).
    void reset() {
        aw_.clear(); w_.clear(); ar_.clear(); b_.clear(); r_.clear();
        write_active_ = read_active_ = false;
        aw_ready_ = w_ready_ = ar_ready_ = false;
        b_valid_ = r_valid_ = false;
        drive();
    }

    // The rising clock edge, seen from the slave: called before the DUT's flops update, with
    // the DUT's outputs as they were during the cycle that ends here.
    void edge() {
        for (int c = 0; c < 5; ++c) paused_[c] = pause_[c].active() && pause_[c].next();
        // Sources first: a beat taken at this edge leaves its queue, the next one is driven.
        source_edge(r_valid_, bus_.rready, r_, r_out_, paused_[4], &stats_.read_beats);
        source_edge(b_valid_, bus_.bready, b_, b_out_, paused_[2], nullptr);
        // Sinks: take what the handshake carried, then ready for the next cycle.
        if (aw_ready_ && bus_.awvalid)
            aw_.push_back(Addr{port_value(bus_.awaddr), static_cast<unsigned>(bus_.awlen),
                               bus_.awsize, bus_.awburst, port_value(bus_.awid)});
        if (w_ready_ && bus_.wvalid) {
            Beat beat{};
            port_to_bytes(bus_.wdata, beat.data, beat_bytes_);
            beat.strb = port_value(bus_.wstrb);
            beat.last = bus_.wlast;
            w_.push_back(beat);
        }
        if (ar_ready_ && bus_.arvalid)
            ar_.push_back(Addr{port_value(bus_.araddr), static_cast<unsigned>(bus_.arlen),
                               bus_.arsize, bus_.arburst, port_value(bus_.arid)});
        aw_ready_ = aw_.size() < kQueue && !paused_[0];
        w_ready_ = w_.size() < kQueue && !paused_[1];
        ar_ready_ = ar_.size() < kQueue && !paused_[3];
        serve_writes();
        serve_reads();
    }

    // Put the slave's outputs on the DUT's inputs (after the edge).
    void drive() {
        bus_.awready = aw_ready_;
        bus_.wready = w_ready_;
        bus_.arready = ar_ready_;
        bus_.bvalid = b_valid_;
        bus_.bid = static_cast<std::remove_reference_t<decltype(bus_.bid)>>(b_out_.id);
        bus_.bresp = b_out_.resp;
        bus_.rvalid = r_valid_;
        if (r_valid_) {
            bus_.rid = static_cast<std::remove_reference_t<decltype(bus_.rid)>>(r_out_.id);
            bus_.rresp = r_out_.resp;
            bus_.rlast = r_out_.last;
            bytes_to_port(bus_.rdata, r_out_.data, beat_bytes_);
        }
    }

    // Nothing queued, nothing in flight, nothing driven.
    bool idle() const {
        return aw_.empty() && w_.empty() && ar_.empty() && b_.empty() && r_.empty() &&
               !write_active_ && !read_active_ && !b_valid_ && !r_valid_;
    }

    const Axi4RamStats& stats() const { return stats_; }
    // Protocol errors found (a wrong WLAST, a burst crossing 4 KiB, a narrow or non-INCR
    // burst): the first one, or empty.
    const std::string& error() const { return error_; }

  private:
    struct Addr { uint64_t addr; unsigned len; uint8_t size, burst; uint64_t id; };
    struct Beat { uint8_t data[128]; uint64_t strb; uint8_t last, resp; uint64_t id; };
    struct Resp { uint8_t resp; uint64_t id; };

    template <typename Q, typename Out>
    void source_edge(bool& valid, uint8_t& ready, Q& queue, Out& out, bool paused,
                     uint64_t* beats) {
        if (valid && !ready) return;
        if (valid && beats) ++*beats;
        if (!queue.empty() && !paused) {
            out = queue.front();
            queue.pop_front();
            valid = true;
        } else {
            valid = false;
        }
    }

    void fail(const std::string& message) {
        if (error_.empty()) error_ = message;
    }

    void check_burst(const char* kind, const Addr& a) {
        size_t bytes = static_cast<size_t>(a.len + 1) << a.size;
        if (a.burst != 1) fail(std::string(kind) + " burst is not INCR");
        if ((size_t{1} << a.size) != beat_bytes_) fail(std::string(kind) + " burst is narrow");
        if ((a.addr & 0xFFF) + bytes > 0x1000)
            fail(std::string(kind) + " burst crosses a 4 KiB boundary");
    }

    // The write consumer: an AW, then its beats as they arrive, then its B response.
    void serve_writes() {
        while (true) {
            if (!write_active_) {
                if (aw_.empty()) return;
                wburst_ = aw_.front();
                aw_.pop_front();
                check_burst("write", wburst_);
                write_active_ = true;
                wbeat_ = 0;
                wresp_ = 0;
                ++stats_.write_bursts;
            }
            while (wbeat_ <= wburst_.len) {
                if (w_.empty()) return;
                const Beat& beat = w_.front();
                uint64_t base = wburst_.addr + uint64_t{wbeat_} * beat_bytes_;
                if (bool(beat.last) != (wbeat_ == wburst_.len))
                    fail("wlast is wrong on beat " + std::to_string(wbeat_));
                if (mem_.in_range(base, beat_bytes_)) {
                    for (size_t i = 0; i < beat_bytes_; ++i)
                        if (beat.strb >> i & 1) mem_.bytes[base + i] = beat.data[i];
                } else {
                    wresp_ = 2;  // SLVERR
                    ++stats_.slave_errors;
                }
                ++stats_.write_beats;
                w_.pop_front();
                ++wbeat_;
            }
            if (b_.size() >= kQueue) return;
            b_.push_back(Resp{wresp_, wburst_.id});
            write_active_ = false;
        }
    }

    // The read consumer: beats of the current burst into the R queue while it has room.
    void serve_reads() {
        while (r_.size() < kQueue) {
            if (!read_active_) {
                if (ar_.empty()) return;
                rburst_ = ar_.front();
                ar_.pop_front();
                check_burst("read", rburst_);
                read_active_ = true;
                rbeat_ = 0;
                ++stats_.read_bursts;
            }
            Beat beat{};
            uint64_t base = rburst_.addr + uint64_t{rbeat_} * beat_bytes_;
            if (mem_.in_range(base, beat_bytes_)) {
                std::memcpy(beat.data, &mem_.bytes[base], beat_bytes_);
                beat.resp = 0;
            } else {
                beat.resp = 2;  // SLVERR, zeros
                ++stats_.slave_errors;
            }
            beat.id = rburst_.id;
            beat.last = rbeat_ == rburst_.len;
            r_.push_back(beat);
            if (++rbeat_ > rburst_.len) read_active_ = false;
        }
    }

    Bus bus_;
    Memory& mem_;
    size_t beat_bytes_;
    Pauses pause_[5];  // aw, w, b, ar, r
    bool paused_[5] = {};
    std::deque<Addr> aw_, ar_;
    std::deque<Beat> w_, r_;
    std::deque<Resp> b_;
    bool aw_ready_, w_ready_, ar_ready_, b_valid_, r_valid_;
    Beat r_out_{};
    Resp b_out_{};
    Addr wburst_{}, rburst_{};
    bool write_active_, read_active_;
    unsigned wbeat_ = 0, rbeat_ = 0;
    uint8_t wresp_ = 0;
    Axi4RamStats stats_;
    std::string error_;
};

}  // namespace accelgen
