// Behavioural model of the Lattice ECP5 TRELLIS_FF (the nextpnr/Yosys flip-flop primitive), for
// simulating accelgen's ECP5 netlists (hw.dsp.kept_register) in Verilator. It models what
// kept_register instantiates, and stops the simulation on anything else: clock on CLK (rising),
// enable on CE, a synchronous reset on LSR that wins over CE (SRMODE "LSR_OVER_CE") to 0
// (REGSET "RESET"), no global set/reset.
module TRELLIS_FF #(
    parameter GSR = "DISABLED", parameter CEMUX = "CE", parameter CLKMUX = "CLK",
    parameter LSRMUX = "LSR", parameter REGSET = "RESET", parameter SRMODE = "LSR_OVER_CE",
    parameter LSRONMUX = "LSRMUX"
) (
    input CLK, CE, LSR, DI, M,
    output reg Q
);
    initial begin
        if (GSR != "DISABLED" || CEMUX != "CE" || CLKMUX != "CLK" || LSRMUX != "LSR"
                || REGSET != "RESET" || SRMODE != "LSR_OVER_CE") begin
            $display("TRELLIS_FF model: unsupported parameters");
            $finish;
        end
        Q = 1'b0;
    end
    always @(posedge CLK) begin
        if (LSR) Q <= 1'b0;
        else if (CE) Q <= DI;
    end
endmodule
