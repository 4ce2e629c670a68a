"""`accelgen sparse-bench`: storage and throughput reports are written and make sense."""

import json

from gen.cli import main


def test_sparse_bench_reports(tmp_path, capsys):
    assert main(["sparse-bench", "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    rates = json.loads((tmp_path / "sparse_throughput.json").read_text())["queries_per_cycle"]
    assert set(rates["search_tree"].values()) == {1.0}  # one query per cycle after fill
    by_p = [rates["sparse_search"][f"P={p}, 64 entries"] for p in (1, 4, 8, 16)]
    assert by_p == sorted(by_p) and by_p[0] < 0.05 < by_p[-1] < 1
    assert all(0 < r <= 1 for r in rates["sparse_decoder"].values())
    assert (tmp_path / "sparse_storage.png").stat().st_size > 10_000
