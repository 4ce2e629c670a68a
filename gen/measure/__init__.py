"""The measurement commands: benchmarks, accuracy and area reports, FPGA resources and Fmax,
sweeps, and the provenance every figure carries."""
