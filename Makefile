# One entry point. `make bench ALGO=shac TASK=cartpole` creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ALGO ?= shac
TASK ?= cartpole
ARGS ?=
BUDGET ?=
PRESET ?=
TORCH_VERSION := 2.13.0
EXTRAS ?= dev,mujoco
# torch's build: GPU=1 the CUDA one (PyPI's default wheel), GPU=0 the CPU one (PyTorch's CPU index when
# it is reachable, else the configured index: mirrors such as this project's CI serve the CPU build
# there). Unset: this machine's (CUDA where nvidia-smi lists a GPU). `make install GPU=1` on a login node
# without a GPU installs the CUDA build for the GPU nodes, and replaces a CPU build already installed.
# DETERMINISTIC=1: GPU runs that repeat bit for bit (Warp's run-to-run atomics, deterministic torch); see envs/__init__.py
ifeq ($(DETERMINISTIC),1)
export DVA_DETERMINISTIC := 1
endif
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
# SAPIEN (renderer=maniskill) finds a private lavapipe (tests/vulkan/setup-lavapipe.sh) here, on machines
# without a GPU only: with one, its own Vulkan driver renders (lavapipe there would render on the CPU)
LAVAPIPE_ICD ?= /opt/lavapipe/lvp_icd.json
ifeq ($(origin VK_ICD_FILENAMES)$(HAS_GPU),undefined)
ifneq ($(wildcard $(LAVAPIPE_ICD)),)
export VK_ICD_FILENAMES := $(LAVAPIPE_ICD)
endif
endif
GPU ?= $(if $(HAS_GPU),1,0)
CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX = $(if $(filter 1,$(GPU)),,$(shell curl -sfI --max-time 5 $(CPU_INDEX)/torch/ >/dev/null 2>&1 && echo --index-url $(CPU_INDEX)))
TORCH_IS_WANTED = $(PY) -c "import sys, torch; sys.exit((torch.version.cuda is None) == ('$(GPU)' == '1'))"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==$(TORCH_VERSION) $(TORCH_INDEX)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed
ifneq ($(filter command line environment,$(origin GPU)),)
	@$(TORCH_IS_WANTED) 2>/dev/null || { echo "installing torch's $(if $(filter 1,$(GPU)),CUDA,CPU) build (GPU=$(GPU))"; \
		$(PY) -m pip uninstall -q -y torch && $(PY) -m pip install -q torch==$(TORCH_VERSION) $(TORCH_INDEX); }
endif

# Without a GPU, and with neither PRESET nor BUDGET (nor preset=/budget= in ARGS), the CPU preset for an
# hour: the paper's settings take days on a CPU. PRESET=paper runs the paper's settings anywhere.
AUTO_CPU = $(if $(HAS_GPU),,$(if $(PRESET)$(BUDGET)$(findstring preset=,$(ARGS))$(findstring budget=,$(ARGS)),,1))
bench: install
	$(if $(AUTO_CPU),@echo "no GPU: PRESET=cpu BUDGET=1h; PRESET=paper runs the paper's settings" >&2)
	$(PY) -m benchmark.run $(ALGO) $(TASK) $(ARGS) $(if $(AUTO_CPU),preset=cpu budget=1h,$(if $(BUDGET),budget=$(BUDGET)) \
		$(if $(PRESET),preset=$(PRESET)))

test: install
	$(PY) -m pytest -q tests -n auto --maxprocesses 4 --dist loadgroup --durations 10

lint: install
	$(VENV)/bin/ruff check envs algorithms benchmark tests examples
	$(VENV)/bin/ruff format --check envs algorithms benchmark tests examples

gpu-check: install  # a minute's check of devices, builds, a captured step, a frame, a raster, repeatability
	$(PY) -m benchmark.diagnostics.gpu_check $(ARGS)

gradcheck: install
	$(PY) -m benchmark.diagnostics.gradient_check

contact-laws: install
	$(PY) -m benchmark.diagnostics.gradient_check --contact-laws

bench-physics: install
	$(PY) -m benchmark.speed.physics_speed $(ARGS)

BACKENDS ?= newton,diff
render: install
	$(PY) -m benchmark.figures.render_views $(TASK) --backends $(BACKENDS)

bench-render: install
	$(PY) -m benchmark.speed.render_speed

apg-costs: install  # Table 1 and Fig. 10: backward time and memory, dva vs shac_diffrender
	$(PY) -m benchmark.speed.apg_costs $(if $(PRESET),--preset $(PRESET)) $(ARGS)

update-costs: install  # seconds per update and replay memory of drqv2, curl and dreamerv3, CPU preset and paper settings
	$(PY) -m benchmark.speed.update_costs $(ARGS)

profile: install  # make profile ALGO=dva TASK=hopper: one iteration's time by operator group (CPU preset, one thread)
	$(PY) -m benchmark.speed.profile_iteration $(ALGO) $(TASK) $(if $(PRESET),--preset $(PRESET)) $(ARGS)

first-iteration: install  # what the first iteration costs once, fresh machine vs next run: kernel builds, cache loads, graph captures
	$(PY) -m benchmark.speed.first_iteration $(if $(PRESET),--preset $(PRESET)) $(ARGS)

scene-growth: install  # Fig. 10, growing scenes: memory as extra shapes are added (TASK, default cartpole)
	$(PY) -m benchmark.speed.apg_costs --scene-growth $(or $(TASK),cartpole) $(if $(PRESET),--preset $(PRESET)) $(ARGS)

TASKS ?= cartpole,hopper,ant,humanoid
postures: install  # Fig. 8, measured: final policies of shipped D.Va, DAgger and state-expert cells through the training camera (TASKS=ant,humanoid)
	$(PY) -m benchmark.diagnostics.postures $(if $(filter command line,$(origin TASKS)),--tasks $(TASKS)) $(ARGS)

apg-vs-dpg: install  # Fig. 3: cosine and norm ratio of APG vs DPG at checkpoints of state SHAC runs
	$(PY) -m benchmark.diagnostics.apg_vs_dpg --tasks $(TASKS) $(if $(PRESET),--preset $(PRESET)) $(ARGS)

# make sweep ALGOS=dva,shac TASKS=cartpole SEEDS=0-4 EXECUTOR=slurm|local|inline [PRESET=cpu] [BUDGET=30min]
#            [NAME=...] [SWEEP_ARGS="--partition gpu --time-min 600 --gpus 1"] [ARGS="num_envs=32"]
ALGOS ?= dva,shac
SEEDS ?= 0-4
EXECUTOR ?= local
sweep: install
	$(PY) -m benchmark.sweep run --algos $(ALGOS) --tasks $(TASKS) --seeds $(SEEDS) --executor $(EXECUTOR) \
		$(if $(NAME),--name $(NAME)) $(SWEEP_ARGS) $(ARGS) $(if $(BUDGET),budget=$(BUDGET)) $(if $(PRESET),preset=$(PRESET))

sweep-status: install
	$(PY) -m benchmark.sweep status $(if $(NAME),--name $(NAME))

campaign: install  # every cell of configs/campaigns/$(NAME).yaml not yet finished here or in the reference set
# ([TASKS=hopper,ant] [LEARNERS=shac,dva] [SEEDS=0]: only those cells; [PARALLEL=1]: runs at once, local)
	$(PY) -m benchmark.campaign run --name $(or $(NAME),cpu) $(if $(filter command line,$(origin TASKS)),--tasks $(TASKS)) \
		$(if $(LEARNERS),--learners $(LEARNERS)) $(if $(filter command line,$(origin SEEDS)),--seeds $(SEEDS)) $(if $(PARALLEL),--parallel $(PARALLEL)) $(SWEEP_ARGS)

campaign-status: install
	$(PY) -m benchmark.campaign status --name $(or $(NAME),cpu)

campaign-publish: install  # copy the campaign's finished cells into results/reference/
	$(PY) -m benchmark.campaign publish --name $(or $(NAME),cpu)

publish: install  # one finished run into results/reference/ (ALLOW_DIRTY=1: from a dirty tree, recorded; TEACHER=1: with its last checkpoint)
	$(PY) -m benchmark.reference publish $(RUN) $(if $(ALLOW_DIRTY),--allow-dirty) $(if $(TEACHER),--with-checkpoint)

floors: install  # the random-policy and zero-action returns of every task, into results/reference/floors.csv
	$(PY) -m benchmark.floors $(if $(filter command line,$(origin TASKS)),--tasks $(TASKS))

video: install  # make video RUN=results/<run> [ENVS=4] [EPISODES=1]: the trained policy as WebM, MP4 and PNG
	$(PY) -m benchmark.figures.video $(RUN) --envs $(or $(ENVS),4) --episodes $(or $(EPISODES),1)

site: install  # results/site/index.html: one offline page of a campaign (NAME=cpu) from the reference set
	$(PY) -m benchmark.figures.site --name $(or $(NAME),cpu) $(ARGS)

docs: install  # rewrite the generated tables of docs/learners.md from the code (a test checks them)
	$(PY) -m benchmark.doc_tables

paper: install  # the paper's figures and tables, ours beside them (docs/paper.md); `make -n paper` lists what it would run
	+$(PY) -m benchmark.paper $(if $(findstring n,$(firstword -$(MAKEFLAGS))),--dry-run) $(ARGS)

plots: install  # every figure and table the runs in results/ allow, into results/figures/
	$(PY) -m benchmark.figures

slurm-up:  # a one-node SLURM cluster on this machine (Debian, root): try the sweep path on a laptop
	bash tests/slurm/start.sh

slurm-down:
	bash tests/slurm/stop.sh

pytorch3d: install  # PyTorch3D 0.7.9 for renderer=pytorch3d: the vendored wheel where it fits, else a build
	$(PY) -m envs.render.install_pytorch3d

vulkan:  # CPU Vulkan driver for renderer=maniskill (Debian, root); then: make install EXTRAS=dev,mujoco,maniskill
	bash tests/vulkan/setup-lavapipe.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
