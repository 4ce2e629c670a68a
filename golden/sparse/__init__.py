"""Golden models of the sparse encodings and search units (RT-NeRF)."""
