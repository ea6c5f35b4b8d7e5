# Two front-door commands: `make demo` and `make test`. Both create/update .venv first, from the
# exact versions in requirements.lock. `make test-min` checks the lowest declared versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The flagship labs that `make demo` reproduces into results/.
DEMO_LABS ?= balancedness diagonal-nets matrix-sensing benign-overfitting edge-of-stability
PYTEST_WORKERS ?= 2

MIN_VENV := .venv-min
# What test-min runs under the lowest versions: import + README example, the CLI, one quick lab,
# the fuzzer on one claim, and the packaging checks.
MIN_TESTS ?= tests/test_readme.py tests/test_cli.py tests/test_packaging.py \
	"tests/test_sharpness_labs.py::test_lab_quick[what-sam-does]" \
	tests/test_fuzz.py::test_false_bound_is_falsified_and_shrunk_to_its_boundary

.PHONY: setup demo test test-min lock clean docs docs-test student student-site notebook

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	@for lab in $(DEMO_LABS); do \
	  $(BIN)/sharp-theory reproduce $$lab --out results/$$lab || exit 1; \
	done
	$(BIN)/sharp-theory report --out results

test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q --durations=25

# A fresh venv with the lowest declared versions (requirements-min.txt); installing sharp_theory
# into it must not change any of them; then a fast subset of the tests runs there.
test-min:
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet -r requirements-min.txt "pytest>=8.0"
	$(MIN_VENV)/bin/python -m pip freeze --exclude-editable > $(MIN_VENV)/before.txt
	$(MIN_VENV)/bin/python -m pip install --quiet -e .
	$(MIN_VENV)/bin/python -m pip freeze --exclude-editable > $(MIN_VENV)/after.txt
	@diff $(MIN_VENV)/before.txt $(MIN_VENV)/after.txt || \
	  (echo "installing sharp_theory changed the versions above" >&2; exit 1)
	MPLBACKEND=Agg $(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(MIN_TESTS)

# The documentation site into site/: every lab executed as a notebook at quick sizes (reusing
# the runs `make test` cached when SHARP_THEORY_SITE_CACHE pointed there; full results from
# results/ where `make demo` wrote them), the API reference, the paper cards; then checks it
# (broken links, missing figures or claim tables, undocumented public names fail the build).
docs: setup
	$(BIN)/python tools/site.py build

# The students' site into student-site/: the same executed notebooks (nothing runs again after
# `make docs`) without solution lines, teacher's notes or the teachers' page, the claim tables
# after the predictions; the build fails if an answer, a teacher's note or a build path shows.
student-site: setup
	$(BIN)/python tools/site.py build --students

# The built sites in a real headless browser (Debian's chromium): figures and claim tables on
# every lab page, every public name in the API reference, math and slider frames rendered
# offline; the students' site (when built) without answers; screenshots in build/browser/.
docs-test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider docs/tests

# The students' notebooks (answers blanked, otter-grader checks): build/student/LAB/dist/.
student: setup
	$(BIN)/python tools/site.py student

# Open a lab in Jupyter Notebook (jupytext opens its script as a notebook; saving writes the
# script): `make notebook LAB=balancedness`; quick sizes unless QUICK=0; DRY_RUN=1 prints the
# command and starts nothing.
LAB ?= what-sam-does
QUICK ?= 1
notebook: setup
	SHARP_THEORY_QUICK=$(QUICK) $(BIN)/python tools/site.py notebook $(LAB) $(if $(filter 1,$(DRY_RUN)),--dry-run)

# Regenerate requirements.lock from pyproject.toml, keeping the versions it already pins
# (add --upgrade to move them). Needs uv: `pip install uv`.
lock:
	uv pip compile pyproject.toml --extra dev --extra notebooks --extra docs --extra models --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) $(MIN_VENV) results site student-site build .pytest_cache .hypothesis
