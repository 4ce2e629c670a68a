"""Sparse search units: the bi-directional adder & search tree, the coordinate search unit
and the hybrid decoder front-end."""
