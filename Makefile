# Clinic waitlist SMS assistant.
#   make run    set up everything needed (venvs, model, database) and run the product
#   make test   set up everything needed and run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

BACKEND_VENV := .venv-backend
RASA_VENV    := .venv-rasa
BPY          := $(BACKEND_VENV)/bin/python
RPY          := $(RASA_VENV)/bin/python
RASA         := $(RASA_VENV)/bin/rasa
MODEL        := models/waitlist.tar.gz
RASA_DATA    := $(shell find data nlu_components -type f 2>/dev/null) domain.yml config.yml

export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1
# Rasa and TensorFlow are chatty and phone home for telemetry unless told not to
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help run demo admin test lint test-backend test-simulator test-launcher test-rasa test-actions test-e2e \
        test-faults test-nlu simulate test-simulation \
        validate train nlu-cross-validation bench clean

help:
	@echo "make run     run the product (backend, Rasa, action server, SMS simulator)"
	@echo "make test    run every test"
	@echo "make demo    narrate a scripted scenario against a running 'make run'"
	@echo "make admin   add a staff account (the first admin) for the console and the staff API"
	@echo "make bench   run the benchmarks under bench/"
	@echo "make simulate   compare batch policies on a modelled clinic (SCENARIO=default|calibrated|tiny, REPLAY=past.csv)"
	@echo "make nlu-cross-validation   5-fold NLU cross-validation, report in results/"
	@echo "make review  patient texts to review (DAYS=7 LIMIT=200 OUT=results/review.md)"

# ---------------------------------------------------------------------------------------------
# Set-up: virtual environments and the trained model. Re-done only when their inputs change.

$(BACKEND_VENV)/.installed: backend/requirements.txt backend/requirements-dev.txt
	@python=$$(scripts/find_python.sh 3.11 3.12 3.13) && \
	  echo "creating $(BACKEND_VENV) with $$python" && \
	  "$$python" -m venv $(BACKEND_VENV)
	$(BPY) -m pip install --quiet --upgrade pip
	$(BPY) -m pip install --quiet -r backend/requirements-dev.txt
	@touch $@

$(RASA_VENV)/.installed: requirements-rasa.txt requirements-rasa-dev.txt
	@python=$$(scripts/find_python.sh 3.10) && \
	  echo "creating $(RASA_VENV) with $$python (Rasa 3.6 needs Python 3.10)" && \
	  "$$python" -m venv $(RASA_VENV)
	$(RPY) -m pip install --quiet --upgrade pip
	$(RPY) -m pip install --quiet -r requirements-rasa-dev.txt
	@touch $@

venvs: $(BACKEND_VENV)/.installed $(RASA_VENV)/.installed

$(MODEL): $(RASA_VENV)/.installed $(RASA_DATA)
	@mkdir -p models
	@start=$$(date +%s); \
	  $(RASA) train --fixed-model-name waitlist --out models --quiet && \
	  echo "rasa train took $$(( $$(date +%s) - start )) s"

train: $(MODEL)

# ---------------------------------------------------------------------------------------------
# The product

run: venvs $(MODEL)
	$(BPY) -m launcher

demo: venvs
	$(BPY) -m launcher.demo

# A staff account for the console and the staff API; the first one is an admin.
admin: $(BACKEND_VENV)/.installed
	@name="$(STAFF_USERNAME)"; [ -n "$$name" ] || read -r -p "username: " name; \
	  $(BPY) -m launcher.admin users add "$$name" --role $(or $(ROLE),admin)

# ---------------------------------------------------------------------------------------------
# Tests

test: lint test-backend test-simulator test-launcher test-rasa test-nlu test-actions test-e2e test-faults \
      test-simulation
	@echo "all test suites passed"

lint: venvs
	$(BACKEND_VENV)/bin/ruff check backend launcher sms_simulator sms_common bench tests actions channels nlu_components rasa_runtime scripts simulation

test-backend: $(BACKEND_VENV)/.installed
	TEST_DATABASE_ADMIN_URL=$$($(BPY) -m launcher.test_database) && export TEST_DATABASE_ADMIN_URL && \
	  $(BPY) -m pytest tests/backend -q -p no:cacheprovider

test-simulator: $(BACKEND_VENV)/.installed
	$(BPY) -m pytest tests/sms_simulator -q -p no:cacheprovider

# secrets policy, supervision and logs of `make run`
# tests/review: `make review` against a scratch tracker store
test-launcher: $(BACKEND_VENV)/.installed
	$(BPY) -m pytest tests/launcher tests/review -q -p no:cacheprovider

validate: $(RASA_VENV)/.installed
	$(RASA) data validate --fail-on-warnings --quiet

test-rasa: validate $(MODEL)
	$(RASA) test core --stories tests/stories --model $(MODEL) \
	  --fail-on-prediction-errors --out results/stories --e2e

# Held-out NLU set (tests/nlu/README.md): its shape, then the model's score on it. Fails below
# 0.95 accuracy or on any non-accept read as a confident accept; report in results/nlu-heldout/
test-nlu: $(MODEL)
	$(RPY) -m pytest tests/nlu -q -p no:cacheprovider
	$(RPY) scripts/nlu_heldout.py

test-actions: $(RASA_VENV)/.installed
	TEST_DATABASE_ADMIN_URL=$$($(BPY) -m launcher.test_database) && export TEST_DATABASE_ADMIN_URL && \
	  $(RPY) -m pytest tests/actions tests/nlu_components tests/channels tests/rasa_runtime -q -p no:cacheprovider

test-e2e: venvs $(MODEL)
	TEST_DATABASE_ADMIN_URL=$$($(BPY) -m launcher.test_database) && export TEST_DATABASE_ADMIN_URL && \
	  $(BPY) -m pytest tests/e2e -q -p no:cacheprovider

# Two replicas of every part under kill -9, a frozen database and a failing Twilio; the invariants
# are counted in results/faults/report.json. Needs Redis (the shared lock store).
test-faults: venvs $(MODEL)
	$(BPY) -m pytest tests/faults -q -s -p no:cacheprovider

nlu-cross-validation: $(RASA_VENV)/.installed
	scripts/nlu_cross_validation.sh

# Patient texts a conversation designer should read, from Rasa's tracker store: low confidence,
# fallbacks, intents the patient contradicted, and a YAML block for data/nlu/. DAYS (7) back, LIMIT
# (200) per section, OUT=results/review.md writes a file. Phones are masked but the texts are not:
# the output stays inside the clinic.
.PHONY: review
review: $(BACKEND_VENV)/.installed
	$(BPY) -m scripts.review_conversations --days $(or $(DAYS),7) --limit $(or $(LIMIT),200) \
	  $(if $(OUT),--out "$(OUT)")

bench: venvs
	TEST_DATABASE_ADMIN_URL=$$($(BPY) -m launcher.test_database) && export TEST_DATABASE_ADMIN_URL && \
	  $(BPY) -m bench.selection && $(BPY) -m bench.claims && $(BPY) -m bench.sweep && $(MAKE) --no-print-directory $(MODEL) && $(BPY) -m bench.sms_latency

# ---------------------------------------------------------------------------------------------
# The time-to-fill simulator (simulation/): every batch policy on the same seeds, through the real
# engine on PostgreSQL with a simulated clock. Results in results/simulation/ (other scenarios in
# a folder of their name). REPLAY=file.csv (provider,slot_start,cancelled_at) replays a clinic's
# own past cancellations.
simulate: $(BACKEND_VENV)/.installed
	TEST_DATABASE_ADMIN_URL=$$($(BPY) -m launcher.test_database) && export TEST_DATABASE_ADMIN_URL && \
	  $(BPY) -m simulation --scenario $(or $(SCENARIO),default) $(if $(REPLAY),--replay "$(REPLAY)")

# the simulator on a tiny scenario: one seed gives the same figures twice, all-at-once texts most
test-simulation: $(BACKEND_VENV)/.installed
	TEST_DATABASE_ADMIN_URL=$$($(BPY) -m launcher.test_database) && export TEST_DATABASE_ADMIN_URL && \
	  $(BPY) -m pytest tests/simulation -q -p no:cacheprovider

clean:
	rm -rf $(BACKEND_VENV) $(RASA_VENV) models results .rasa
