# accelgen: `make demo` and `make test` set everything up from PyPI on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= 2

.PHONY: demo test test-slow reports lint clean fpga-bench fpga-accelerator verify fetch-model

# (Re)install when the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/accelgen demo

# all-MiniLM-L6-v2 into ~/.cache/accelgen/models/minilm (or $$ACCELGEN_CACHE/models/minilm).
fetch-model: $(STAMP)
	$(BIN)/accelgen fetch-model minilm

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m slow

# Formal proofs (every block's contract, unbounded where k-induction converges, long-run
# mutants, the reduction tree's equivalence: build/verify/report.{json,md} and the README's
# table), then the lint matrix, configuration fuzzing and coverage with the long runs that
# `make test` leaves out.
verify: $(STAMP)
	$(BIN)/accelgen verify -o build/verify -j $(JOBS) --readme README.md
	$(BIN)/python -m pytest -n $(JOBS) tests/test_lint.py tests/test_fuzz.py \
		tests/test_coverage.py

reports: $(STAMP)
	$(BIN)/accelgen accuracy -o build/accuracy
	$(BIN)/accelgen area -o build/area
	$(BIN)/accelgen sparse-bench -o build/sparse
	$(BIN)/accelgen buffer-bench -o build/memory

fpga-bench: $(STAMP)
	$(BIN)/accelgen fpga-bench -o build/fpga --readme README.md

# The whole accelerator (8x8 with MiniLM's units, 4x8 with all) on the ECP5-85F; 90-minute limit
# per synthesis and per place and route; the MiniLM cycles of an 8-token sentence for sentences/s.
# Then the fastest MiniLM accelerator that routes with YoWASP's nextpnr here, the 4x2 with as
# many scratchpad bits (8192 lines of 8 elements), in nextpnr's default flow (HeAP, router1).
fpga-accelerator: $(STAMP)
	$(BIN)/accelgen fpga-accelerator -o build/fpga-accelerator --fast-lut-map --placer static --router router2 \
		--timeout 5400 --minilm-tokens 8
	$(BIN)/accelgen fpga-accelerator -o build/fpga-accelerator-4x2 --rows 4 --cols 2 --nl-lanes 4 \
		--depth 8192 --max-program 1024 --nl-units gelu --pe-ops mul,add,madd --timeout 5400 \
		--minilm-tokens 8

# Benchmarks into build/bench (JSON, PNG, Markdown) and the README's bench tables. ECP5 rows come
# from build/fpga/fpga_bench.json when `make fpga-bench` has written it; otherwise the PE array
# at 2x2 and 4x4 is placed and routed here.
.PHONY: bench sweep-example
bench: $(STAMP)
	$(BIN)/accelgen bench -o build/bench --readme README.md

# A larger design-space sweep on a local Dask cluster (all cores); resumes from its cache.
sweep-example: $(STAMP)
	$(BIN)/accelgen sweep gen/measure/sweeps/pe_array.toml -o build/sweep/pe_array

lint: $(STAMP)
	$(BIN)/ruff check hw gen sim golden boards tests

clean:
	rm -rf build .pytest_cache .hypothesis .ruff_cache *.egg-info
