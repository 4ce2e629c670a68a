"""Bit-exact NumPy models of accelgen's blocks, their parameters, and float references.

Integers in, integers out. Nothing here imports the hardware (``hw``) or Amaranth: a golden
model is an independent statement of what the hardware must compute.
"""
