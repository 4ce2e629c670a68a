"""Golden models of the nonlinear units (exp, softmax, GELU, SiLU) and published baselines."""
