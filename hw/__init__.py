"""Amaranth components of accelgen: hardware only, one concept per module.

Each block's parameters (a frozen config dataclass) and golden model live in the module of the
same name in ``golden``; its tests in ``tests/test_<name>.py``.
"""
