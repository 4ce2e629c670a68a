"""gen.measure.sparse_storage: the storage benchmark's figures follow the accounting, hybrid (size)
is never worse than the best single format plus its tags, and the files are written."""

import json

import pytest

from gen.measure.sparse_storage import DENSITIES, FORMATS, storage_report, write_storage_report
from golden.sparse.encoding import SparseFormatConfig


def test_report_follows_the_storage_accounting(measure):
    config = SparseFormatConfig()  # B 64: count 7 bits, coordinates 6, values 16
    elements = 4096
    data = storage_report(config, elements=elements)
    assert data["config"] == config.to_dict() and data["blocks"] == 64
    assert [r["density"] for r in data["rows"]] == list(DENSITIES)
    for row in data["rows"]:
        bits, nnz = row["bits_per_element"], row["nnz"]
        assert set(bits) == set(FORMATS)
        assert nnz == round(row["density"] * elements)
        # Single formats have closed forms: nothing depends on where the nonzeros fall.
        assert bits["bitmap"] == (64 * 64 + nnz * 16) / elements
        assert bits["coordinate"] == (64 * 7 + nnz * 22) / elements
        total = row["total_bits"]  # 64 blocks: 64 tag bits, 1/64 bit per element
        assert total["hybrid (size rule)"] <= min(total["bitmap"], total["coordinate"]) + 64
        assert bits["hybrid (size rule)"] <= min(bits["bitmap"], bits["coordinate"]) + 1 / 64
        assert total["hybrid (density rule)"] >= total["hybrid (size rule)"]
    first, last = data["rows"][0]["bits_per_element"], data["rows"][-1]["bits_per_element"]
    assert first["bitmap"] == 1.0  # B bits per B elements
    assert first["hybrid (size rule)"] == (7 + 1) / 64  # empty coordinate blocks plus tags
    assert last["bitmap"] == 17.0 and last["hybrid (size rule)"] == 17 + 1 / 64
    cross = data["crossover"]
    assert cross["analytic_density"] == (64 - 7) / 6 / 64
    assert cross["measured_density"] == pytest.approx(cross["analytic_density"], abs=2e-3)
    assert cross["size_rule_bitmap_from_nnz"] == 10
    assert "numpy" in data["tools"]
    measure(f"sparse storage, B 64, 16-bit: bitmap/coordinate crossover at density "
            f"{cross['measured_density']:.4f} (analytic {cross['analytic_density']:.4f})")


@pytest.mark.parametrize("kwargs", [
    {"block": 24, "value_width": 8, "signed": False},
    {"block": 100, "value_width": 4, "density_threshold": 0.1},
    {"block": 8, "value_width": 32},
])
def test_hybrid_size_bound_for_other_configs(kwargs):
    config = SparseFormatConfig(**kwargs)
    elements = 1000  # not a multiple of most B: the padding counts too
    data = storage_report(config, elements=elements, seed=3)
    tags = -(-elements // config.block)  # one per block
    for row in data["rows"]:
        bits = row["total_bits"]  # exact integers: no float rounding in the comparison
        assert bits["hybrid (size rule)"] <= min(bits["bitmap"], bits["coordinate"]) + tags
        assert row["bits_per_element"]["bitmap"] == bits["bitmap"] / elements
        fraction = row["bitmap_block_fraction"]
        assert (fraction["bitmap"], fraction["coordinate"]) == (1.0, 0.0)


def test_report_is_reproducible():
    a = storage_report(densities=(0.1, 0.3), elements=1024, seed=7)
    b = storage_report(densities=(0.1, 0.3), elements=1024, seed=7)
    assert a["rows"] == b["rows"]


@pytest.mark.parametrize("kwargs,message", [
    ({"densities": (0.5, 0.1)}, "densities must be increasing fractions in 0..1"),
    ({"densities": (0, 1.5)}, "densities must be increasing fractions in 0..1"),
    ({"densities": ()}, "densities must be increasing fractions"),
    ({"elements": 0}, "elements must be an integer >= 1, got 0"),
])
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        storage_report(**kwargs)


def test_files_are_written(tmp_path):
    paths = write_storage_report(tmp_path / "out", elements=8192)
    assert [p.name for p in paths] == ["sparse_storage.json", "sparse_storage.png"]
    data = json.loads(paths[0].read_text())
    assert data["config"]["block"] == 64 and "python" in data["tools"]
    assert len(data["rows"]) == len(DENSITIES)
    assert paths[1].stat().st_size > 10_000
    assert not list((tmp_path / "out").glob("*.tmp*"))  # no leftovers of atomic writes
