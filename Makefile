# pycontain: `make lab` to learn, `make test` to check everything. Run as root (see README).
SHELL := /bin/bash
# The distribution's Python when it is 3.11 or newer, as in the lab VM: Debian builds it with
# PGO and LTO, and it starts 2-3 ms sooner than a self-built one (a pyenv's), a tenth of a
# `pycontain exec`'s time (bench/README.md); else the python3 on PATH.
SYSTEM_PYTHON := $(shell /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' \
  2>/dev/null && echo /usr/bin/python3)
PYTHON ?= $(or $(SYSTEM_PYTHON),python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8888
# Debian packages the lessons and tests use (installed with apt-get when missing); the last
# brings podman's seccomp profile, /usr/share/containers/seccomp.json (lesson 21); rsync copies the
# lab VM's notebooks (vagrant/provision.sh --sync-notebooks, tests/unit/test_provision.py)
DEBS := busybox-static iproute2 nftables golang-github-containers-common rsync podman conmon runc

.PHONY: help path lab test test-cgroup2 test-vagrant offline-bundle notebooks release lint cleanup bench rootfs debs

help:
	@echo "make lab        set up everything and start JupyterLab on http://$(HOST):$(PORT)"
	@echo "make test       install what the tests need and run all of them"
	@echo "make test-cgroup2  run the kernel tests again in a throw-away cgroup-v2 VM (qemu)"
	@echo "make test-vagrant  bring the lab VM up for real (vagrant + libvirt, offline) and check it"
	@echo "make offline-bundle  the .debs and wheels to provision the lab VM without network (USB)"
	@echo "make notebooks  regenerate notebooks/ from lessons/"
	@echo "make release    dist/: a learner archive (no solutions) and an instructor archive"
	@echo "make lint       ruff and mypy"
	@echo "make cleanup    remove every pycontain- leftover"
	@echo "make bench      start-up, exec and OCI times against runc's and others'; limits' accuracy; overheads"

# Installs print one line each; what pip and apt say goes to a log, shown when they fail, so
# that a learner sees a few lines of progress and then the URL.
LOGS := $(VENV)/logs
QUIETLY = mkdir -p $(LOGS); log=$(LOGS)/$(1).log; ( $(2) ) >$$log 2>&1 || { tail -n 30 $$log; \
  echo "make: $(1) failed; the whole log is $$log" >&2; exit 1; }

$(VENV)/bin/activate:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "pycontain needs Python >= 3.11, this is " + sys.version.split()[0]'
	@echo "creating $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(call QUIETLY,pip,$(PY) -m pip install --upgrade pip)

# editable_mode=compat: a plain path entry instead of setuptools' import finder, which costs
# ~10 ms at every start of the `pycontain` command (bench/start_latency.py).
EDITABLE := --config-settings editable_mode=compat

$(VENV)/.lab: pyproject.toml | $(VENV)/bin/activate
	@echo "installing pycontain and JupyterLab into $(VENV)"
	@$(call QUIETLY,pip,$(PY) -m pip install $(EDITABLE) -e '.[lab]')
	@$(PY) -m pycontain.launcher $(VENV)/bin  # the lean console scripts, over pip's
	@touch $@

$(VENV)/.dev: pyproject.toml | $(VENV)/bin/activate
	@echo "installing pycontain, JupyterLab and the test tools into $(VENV)"
	@$(call QUIETLY,pip,$(PY) -m pip install $(EDITABLE) -e '.[dev]')
	@$(PY) -m pycontain.launcher $(VENV)/bin  # the lean console scripts, over pip's
	@touch $@ $(VENV)/.lab

debs: | $(VENV)/bin/activate
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(call QUIETLY,apt,apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing); \
	fi

# `pycontain` on PATH, as the README writes it: a link in /usr/local/bin to this checkout's
# command (made when absent or already a link; a program of that name that is not a link is
# left alone).
PATH_LINK := /usr/local/bin/pycontain
path: $(VENV)/.lab
	@want=$(CURDIR)/$(VENV)/bin/pycontain; \
	if [ "$$(readlink $(PATH_LINK))" != "$$want" ]; then \
	  if [ -e $(PATH_LINK) ] && [ ! -L $(PATH_LINK) ]; then \
	    echo "make: $(PATH_LINK) is not pycontain's link, left alone: run $$want"; \
	  else ln -sfn "$$want" $(PATH_LINK) && echo "pycontain is on PATH: $(PATH_LINK) -> $$want"; fi; \
	fi

rootfs: $(VENV)/.lab debs
	$(VENV)/bin/pycontain rootfs

# Learners get the learner notebooks only; `make lab SOLUTIONS=1` (an instructor) serves the
# solutions too. The token travels in Jupyter's environment, readable by root only, never on
# its command line, where any local user's `ps` would show it (the lab VM's service does the same).
SOLUTIONS ?= 0
# what learners see: links to the learner notebooks (their edits land in notebooks/ as before)
LEARNER_DIR := build/lab
lab: $(VENV)/.lab
	@$(PY) -c 'from pycontain import lab, settings; exit(not (lab.in_lab_vm() or settings.host_allowed()))' \
	  || { echo "make lab: this is not the lab VM; to run the lessons here anyway: export PYCONTAIN_ALLOW_HOST=1, then make lab (in that same shell)" >&2; exit 2; }
	@$(MAKE) --no-print-directory debs path
	@$(VENV)/bin/pycontain rootfs >/dev/null
	@$(VENV)/bin/pycontain doctor || true
	@export JUPYTER_TOKEN=$${PYCONTAIN_TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_hex(24))')}; \
	if [ "$(SOLUTIONS)" = 1 ]; then root=notebooks; else root=$(LEARNER_DIR); \
	  rm -rf $$root && mkdir -p $$root && for nb in notebooks/*.ipynb; do ln -s "$$PWD/$$nb" $$root/; done; fi; \
	echo; echo "  JupyterLab is starting. Open this URL in your browser:"; \
	echo "    http://$(HOST):$(PORT)/lab?token=$$JUPYTER_TOKEN"; echo; \
	exec $(VENV)/bin/jupyter lab --allow-root --no-browser --ip=$(HOST) --port=$(PORT) \
	  --ServerApp.root_dir=$$root --ServerApp.log_level=WARN --LabApp.log_level=WARN

# nbgrader, for tests/lessons/test_nbgrader.py only, in an environment of its own: installed
# beside JupyterLab, its server extensions would start (and complain) in every `make lab`.
NBGRADER := $(VENV)/nbgrader
$(NBGRADER)/bin/python: | $(VENV)/bin/activate
	@echo "installing nbgrader into $(NBGRADER)"
	@$(PYTHON) -m venv $(NBGRADER)
	@$(call QUIETLY,nbgrader,$(NBGRADER)/bin/python -m pip install 'nbgrader>=0.9')

test: $(VENV)/.dev debs path $(NBGRADER)/bin/python
	$(VENV)/bin/pycontain rootfs >/dev/null
	$(PY) -m pytest tests pycontain --nbval-lax notebooks/solutions

# The real-kernel tests and every lesson (solution build) again, in Debian 13 guests on
# cgroup v2 with Python 3.13, the lab VM's system (tools/cgroup2-guest/run.sh), and the cgroup
# tests and lessons once more from a delegated service cgroup, as the lab VM's Jupyter runs: two
# guests at once, sharing the suite file by file (tools/cgroup2-guest/lanes.sh).
# HOST_ONLY: integration files that test nothing that depends on the cgroup version (namespaces,
# the network, capabilities, seccomp), whose lessons' notebooks run in the guest all the same;
# under emulation they took a third of the guests' time, and CI has 60 minutes.
HOST_ONLY := net shaping mnt ipc uts pivot_root userns timens cli_time rootfs layers \
  capabilities seccomp progress make_lab launcher readme_commands
GUEST_SUITE := tests/integration $(foreach f,$(HOST_ONLY),--ignore=tests/integration/test_$(f).py) \
  --nbval-lax notebooks/solutions
CGROUP_SUITE := tests/integration/test_cgroups.py tests/integration/test_cgroupns.py \
  tests/integration/test_limits.py tests/integration/test_monitor.py \
  tests/integration/test_lesson14.py --nbval-lax notebooks/solutions/1[023]-*.ipynb
test-cgroup2: $(VENV)/.dev
	bash tools/cgroup2-guest/lanes.sh "$(GUEST_SUITE)" "$(CGROUP_SUITE)"

# The lab VM (vagrant/), for real: static checks, then `vagrant up` of vagrant/Vagrantfile with
# libvirt in a network namespace, a locally built Debian 13 box, provisioning offline from the
# bundle; checks inside; provision again (nothing changes); destroy (tools/lab-vm/test-vagrant.sh).
test-vagrant: $(VENV)/bin/activate
	bash tools/lab-vm/test-vagrant.sh

# Everything vagrant/provision.sh downloads, for a Debian 13 amd64 guest, into vagrant/bundle/
# (`vagrant up` uses it when present; hand it out on USB sticks). Needs the network.
offline-bundle: $(VENV)/bin/activate
	bash tools/lab-vm/offline-bundle.sh

notebooks: $(VENV)/.dev
	$(PY) tools/notebooks.py build

# Two archives in dist/, versioned (tools/release.py): the learner's, with no solution in it, and
# the instructor's (solutions, the guide, the grader). The standard library only: no venv.
release:
	$(PYTHON) tools/release.py --out dist

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check pycontain tests tools bench
	$(VENV)/bin/mypy pycontain

cleanup:
	@if [ -x $(VENV)/bin/pycontain ]; then $(VENV)/bin/pycontain cleanup; else $(PYTHON) -m pycontain cleanup; fi

bench: $(VENV)/.dev debs
	$(PY) bench/start_latency.py
	$(PY) bench/monitor_overhead.py
	$(PY) bench/cpu_accuracy.py
	$(PY) bench/io_accuracy.py
	$(PY) bench/net_accuracy.py
	$(PY) bench/stats_overhead.py
	$(PY) bench/lifecycle.py
