# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint check-config schema kubernetes run bench bench-render alert-quality clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: exporter + built-in simulator, offline, no keys (http://127.0.0.1:7860/metrics)
demo: $(STAMP)
	$(BIN)/crypto-api-exporter demo --log.format=console

## test: the whole suite; pytest's "no tests ran" (exit 5) counts as a failure
test: $(STAMP)
	@$(BIN)/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests ran" >&2; exit 1; fi; exit $$rc

## lint: the gate .ci/run passes before the tests: ruff (lint and format) and mypy --strict
lint: $(STAMP)
	$(BIN)/ruff check exporter tests bench grafana tools
	$(BIN)/ruff format --check exporter tests bench grafana tools
	$(BIN)/mypy

check-config: $(STAMP)
	$(BIN)/crypto-api-exporter check-config

## schema: regenerate providers.schema.json (editors validate providers.yaml with it) from exporter/config_file.py
schema: $(STAMP)
	$(BIN)/python -m exporter.config_file > providers.schema.json

## kubernetes: regenerate deploy/kubernetes/base's PrometheusRule (from prometheus/rules/) and key-file env (from providers.yaml), and monitoring/config/ (from alertmanager/)
kubernetes: $(STAMP)
	$(BIN)/python -m tools.kubernetes

run: $(STAMP)
	$(BIN)/crypto-api-exporter run

## bench: by hand, not in CI: exporter vs blackbox_exporter on loopback (see bench/README.md)
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## bench-render: /metrics plain and gzip against prometheus-client's exposition, in-process
bench-render: $(STAMP)
	$(BIN)/python bench/render.py $(BENCH_ARGS)

## alert-quality: by hand, not in CI (about 65 min): real Prometheus and Alertmanager on loopback with the repo's rules and routes, the demo, issue 10's scenarios and noise (docs/alerts.md)
alert-quality: $(STAMP)
	$(BIN)/python -m bench.alert_quality $(ALERT_QUALITY_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
