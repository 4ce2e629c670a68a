// Behavioural model of the Lattice ECP5 LUT4, for simulating accelgen's ECP5 netlists
// (hw.dsp.lut4) in Verilator: Z is bit {D, C, B, A} of INIT.
// Written from Lattice's "FPGA Libraries Reference Guide", not from a vendor library.
module LUT4 #(
    parameter [15:0] INIT = 16'h0000
) (
    input A, B, C, D,
    output Z
);
    assign Z = INIT[{D, C, B, A}];
endmodule
