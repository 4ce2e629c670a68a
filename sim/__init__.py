"""Simulation infrastructure: payload packing, stream benches, scoreboard, cocotb runner."""
