# Everything a fresh machine needs: `make run` and `make test` create .venv and install into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint venv demo-model demo-calibration bench soak package package-test clean \
        package-windows package-test-windows

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps "tf-keras==2.21.*"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m gradcam_viewer

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen CUDA_VISIBLE_DEVICES=-1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest $(PYTEST_ARGS)

# ruff (style, imports, likely bugs) and mypy (types; strict on cam/, session/, imaging/,
# models/), both configured in pyproject.toml. .ci/run runs this before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

demo-model: $(STAMP)
	$(PY) -m gradcam_viewer.demo.train --out resources/models/demo --samples resources/samples

# The demo model's out-of-distribution reference (fresh phantoms; rewrites the manifest's "ood").
demo-calibration: $(STAMP)
	$(PY) -m gradcam_viewer.demo.calibrate

bench: $(STAMP)
	$(PY) benchmarks/bench_cam.py
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_scan.py
	$(PY) benchmarks/bench_ood.py
	$(PY) benchmarks/bench_batch.py
	$(PY) benchmarks/bench_overlay_write.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_gui.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_reading.py

# The real window under random user actions for SOAK_MINUTES, invariants checked after every
# step (docs/development.md). Not part of `make test`.
SOAK_MINUTES ?= 20
soak: $(STAMP)
	QT_QPA_PLATFORM=offscreen CUDA_VISIBLE_DEVICES=-1 TF_CPP_MIN_LOG_LEVEL=2 \
		$(PY) benchmarks/soak_actions.py --minutes $(SOAK_MINUTES)

# Installers (Linux here; Windows/macOS recipes in packaging/). Needs binutils, dpkg-deb, xvfb.
package: $(STAMP)
	$(PY) -m pip install --quiet "pyinstaller>=6.10" "pip-licenses>=5"
	$(PY) packaging/build.py

package-test: $(STAMP)
	$(PY) -m pip install --quiet "pyinstaller>=6.10" "pip-licenses>=5"
	bash packaging/package_test.sh

# Windows installer, built on this Linux machine under Debian's Wine with NSIS (installs wine,
# nsis, xvfb and mingw with apt-get when run as root). Downloads (Windows Python, wheels, a Wine
# 10 package) are cached in ~/.cache/gradcam-viewer-windows. See packaging/windows/.
package-windows:
	$(PYTHON) packaging/windows/build_windows.py

# Builds, then installs and runs the installer under Wine and Xvfb (30-45 min on 2 cores).
package-test-windows: $(STAMP)
	$(PY) packaging/windows/package_test_windows.py

clean:
	rm -rf $(VENV) build dist *.egg-info
