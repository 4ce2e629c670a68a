"""Nonlinear units built from PE lanes: exp, softmax, GELU, SiLU."""
