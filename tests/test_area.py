"""gen.measure.area: PE lanes and extras are told apart exactly in the synthesized design."""

from gen.measure.area import unit_area
from golden.nonlinear.exp import ExpConfig
from golden.nonlinear.softmax import SoftmaxConfig
from hw.nonlinear.exp import Exp
from hw.nonlinear.softmax import Softmax
from hw.pipeline import StreamPipeline


def test_exp_area_splits_pe_lanes_from_extras(measure):
    config = ExpConfig(order=1, lanes=2, in_width=10, in_frac=5, out_width=10, out_frac=4,
                       poly_frac=8)
    area = unit_area("exp_small", lambda: StreamPipeline(Exp(config)))
    # Per lane: scale, one Horner multiply and add, shift.
    assert area["pe_instances"] == 2 * 4
    assert 0 < area["cells_extra"] < area["cells_in_pe_lanes"]
    assert area["cells_total"] == area["cells_in_pe_lanes"] + area["cells_extra"]
    assert area["memory_bits"] == 0
    measure(f"small exp: {area['cells_in_pe_lanes']} cells in PE lanes, "
            f"{area['cells_extra']} extra")


def test_softmax_area_counts_its_buffer():
    config = SoftmaxConfig(max_len=16, banks=2)
    area = unit_area("softmax_small", lambda: Softmax(config))
    assert area["memory_bits"] == 2 * 16 * config.in_width
    # Two exps of order 2 (6 PEs each) and the normalizing multiply.
    assert area["pe_instances"] == 13
