"""Memory controllers: banked scratchpads, ping-pong buffers, address generators, DMA, CSRs."""
