"""sim.payload: packing is derived from Amaranth layouts and agrees with Amaranth's own."""

import numpy as np
import pytest
from amaranth.hdl import Const, signed, unsigned
from amaranth.lib import data

from sim.payload import PayloadCodec


def layouts():
    yield data.StructLayout({"x": signed(7), "y": unsigned(1),
                             "v": data.ArrayLayout(signed(5), 3)})
    yield data.StructLayout({"s": data.StructLayout({"a": unsigned(3), "b": signed(64)}),
                             "m": data.ArrayLayout(data.ArrayLayout(unsigned(4), 2), 3)})
    yield data.ArrayLayout(signed(9), 4)
    yield signed(13)


def random_value(field, rng, n):
    lo, hi = (-(1 << (field.width - 1)), (1 << (field.width - 1)) - 1) if field.signed \
        else (0, (1 << field.width) - 1)
    if field.width == 64:  # beyond numpy's integers(); build from Python ints
        return np.array([rng.integers(-(1 << 62), 1 << 62) * 2 + 1 for _ in
                         range(n * field.count)], dtype=object).reshape(n, *field.dims)
    return rng.integers(lo, hi, (n, *field.dims), endpoint=True)


def as_const_init(layout, codec, values, t):
    """The same transaction as an Amaranth const initializer (nested dicts and lists)."""
    if not isinstance(layout, data.Layout):
        return int(values["value"][t])
    init = {}
    for f in codec.fields:
        value = values[f.name][t]
        value = value.tolist() if f.dims else int(value)
        if isinstance(layout, data.ArrayLayout):
            return value
        node = init
        *parents, leaf = f.name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return init


@pytest.mark.parametrize("layout", list(layouts()), ids=str)
def test_round_trip_and_agreement_with_amaranth(layout, rng):
    codec = PayloadCodec.from_shape(layout)
    values = {f.name: random_value(f, rng, 20) for f in codec.fields}
    words = codec.encode(values)
    decoded = codec.decode(words)
    for f in codec.fields:
        assert np.array_equal(decoded[f.name].astype(object), values[f.name].astype(object))
    for t in range(3):
        init = as_const_init(layout, codec, values, t)
        const = layout.const(init) if isinstance(layout, data.Layout) else Const(init, layout)
        assert Const.cast(const).value & ((1 << codec.width) - 1) == words[t]
    assert PayloadCodec.from_json(codec.to_json()).decode(words)[codec.fields[0].name].shape \
        == decoded[codec.fields[0].name].shape


def test_encode_rejects_out_of_range_and_missing_fields():
    codec = PayloadCodec.from_shape(data.StructLayout({"a": signed(4), "b": unsigned(2)}))
    with pytest.raises(ValueError, match="payload field 'a' must be in -8..7"):
        codec.encode({"a": [8], "b": [0]})
    with pytest.raises(ValueError, match="missing: \\['b'\\]"):
        codec.encode({"a": [1]})


def test_describe_difference_names_the_element():
    codec = PayloadCodec.from_shape(data.StructLayout({"v": data.ArrayLayout(signed(8), 4)}))
    a, b = codec.encode({"v": [[1, 2, 3, 4], [1, 2, -3, 4]]})
    assert codec.describe_difference(a, b) == "v[2]: expected 3, got -3"
