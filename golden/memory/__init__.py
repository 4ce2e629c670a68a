"""Golden models of the memory-side blocks: scratchpads, buffers, address generators, DMA."""
