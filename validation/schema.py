"""The schema of ``report.json`` (``eprop-validation-report/3``) and a small validator for it.

The schema is JSON Schema (the subset used: ``type``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``enum``, ``minimum``); :func:`validate` checks a document
against it without third-party packages.  ``python -m validation --schema`` prints it; the
documentation (``docs/validation.rst``) explains each field.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMAT", "READABLE_FORMATS", "REPORT_SCHEMA", "validate", "SchemaError"]

FORMAT = "eprop-validation-report/3"
#: formats :mod:`validation.compare_reports` reads (version 1 had no compile times, jobs or timing;
#: version 2 no memory)
READABLE_FORMATS = ("eprop-validation-report/1", "eprop-validation-report/2", FORMAT)

_STATUS = ["pass", "fail", "error", "not installed", "n/a"]
_NUM = {"type": ["number", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}

_QUANTITY = {
    "type": "object",
    "required": ["name", "status", "unit", "compared", "max_abs_err", "max_rel_err", "scale",
                 "first_diverging_step", "first_diverging_index", "worst_step", "worst_index", "note"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},  # spikes, traces/<name>, synapse/<name>, weight_events/w, weights/<name>, losses
        "status": {"enum": ["pass", "fail", "missing"]},
        "unit": {"type": "string"},
        "compared": {"type": "integer", "minimum": 0},
        "max_abs_err": _NUM,
        "max_rel_err": _NUM,
        "scale": _NUM,
        "first_diverging_step": _INT_OR_NULL,
        "first_diverging_index": _INT_OR_NULL,
        "worst_step": _INT_OR_NULL,
        "worst_index": _INT_OR_NULL,
        "note": {"type": "string"},
    },
}

_COMPARISON = {
    "type": "object",
    "required": ["status", "rtol", "n_steps", "horizon", "first_spike_mismatch", "first_failure", "summary",
                 "losses_reference", "losses_backend", "quantities"],
    "additionalProperties": False,
    "properties": {
        "status": {"enum": ["pass", "fail"]},
        "rtol": {"type": "number", "minimum": 0},
        "n_steps": {"type": "integer", "minimum": 0},
        "horizon": {"type": "integer", "minimum": 0},
        "first_spike_mismatch": {
            "type": ["object", "null"],
            "required": ["step", "neuron", "source"],
            "properties": {"step": {"type": "integer", "minimum": 0}, "neuron": _INT_OR_NULL,
                           "source": {"enum": ["traces/z", "weight_events"]}},
        },
        "first_failure": {
            "type": ["object", "null"],
            "required": ["quantity", "step", "index", "max_rel_err", "worst_step", "note"],
            "additionalProperties": False,
            "properties": {"quantity": {"type": ["string", "null"]}, "step": _INT_OR_NULL, "index": _INT_OR_NULL,
                           "max_rel_err": _NUM, "worst_step": _INT_OR_NULL, "note": {"type": "string"}},
        },
        "summary": {"type": "string"},
        "losses_reference": {"type": "array", "items": _NUM},
        "losses_backend": {"type": "array", "items": _NUM},
        "quantities": {"type": "array", "items": _QUANTITY},
    },
}

_CELL = {
    "type": "object",
    "required": ["backend", "status", "reason", "seconds", "compile_seconds", "build_key", "comparison", "memory"],
    "additionalProperties": False,
    "properties": {
        "backend": {"type": "string"},
        "status": {"enum": _STATUS},
        "reason": {"type": "string"},
        "seconds": _NUM,  # wall time of the cell, compilation included
        "compile_seconds": _NUM,  # of which compiling (Result.meta["compile_seconds"]; null: not reported)
        "build_key": {"type": ["string", "null"]},  # the compiled code the cell used (null: none)
        "comparison": {"anyOf": [{"type": "null"}, _COMPARISON]},
        "memory": {  # MB (10^6 bytes) of the process that ran the cell (validation.memory); null: not measured
            "type": "object",
            "required": ["rss_start_mb", "peak_rss_mb", "worker_peak_mb", "rss_growth_mb", "child_peak_mb",
                         "isolated"],
            "additionalProperties": False,
            "properties": {
                "rss_start_mb": _NUM,  # resident when the cell started
                "peak_rss_mb": _NUM,  # the process's peak (ru_maxrss) when the cell ended
                "worker_peak_mb": _NUM,  # peak of the process running the scenario when the cell ended
                "rss_growth_mb": _NUM,  # how much the cell raised that peak
                "child_peak_mb": _NUM,  # largest finished child process (compiler, binary) so far
                "isolated": {"type": "boolean"},  # the backend ran in a process of its own (validation.isolated)
            },
        },
    },
}

_MEMORY = {
    "type": "object",
    "required": ["largest_process_mb", "scenario", "backend", "largest_worker_mb", "main_process_mb",
                 "largest_child_mb", "goal_mb", "within_goal"],
    "additionalProperties": False,
    "properties": {
        "largest_process_mb": {"type": "number", "minimum": 0},  # the run's largest process (MB)
        "scenario": {"type": ["string", "null"]},  # the cell that raised it (null: the main process)
        "backend": {"type": ["string", "null"]},  # its backend, or "(figures)"
        "largest_worker_mb": {"type": "number", "minimum": 0},
        "main_process_mb": {"type": "number", "minimum": 0},
        "largest_child_mb": {"type": "number", "minimum": 0},
        "goal_mb": {"type": "number", "minimum": 0},
        "within_goal": {"type": "boolean"},
    },
}

_TIMING = {
    "type": "object",
    "required": ["cells", "seconds", "compile_seconds", "builds"],
    "additionalProperties": False,
    "properties": {
        "cells": {"type": "integer", "minimum": 0},  # cells that ran
        "seconds": {"type": "number", "minimum": 0},  # their total wall time
        "compile_seconds": {"type": "number", "minimum": 0},  # of which compiling
        "builds": {"type": "integer", "minimum": 0},  # cells that compiled
    },
}

_SCENARIO = {
    "type": "object",
    "required": ["name", "family", "description", "tolerance", "source", "n_steps", "n_iterations", "sizes",
                 "reference", "results", "plots", "memory"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "family": {"type": "string"},  # "original", "event" ("" if the scenario could not be built)
        "description": {"type": "string"},
        "tolerance": {"type": "object", "properties": {"rtol": {"type": "number"}, "why": {"type": "string"}}},
        "source": {"type": "string"},  # "saved <file>.json" or "generated"
        "n_steps": {"type": "integer", "minimum": 0},
        "n_iterations": {"type": "integer", "minimum": 0},
        "sizes": {"type": "object"},
        "reference": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["ok", "error"]},
                "seconds": _NUM,
                "losses": {"type": "array", "items": _NUM},
                "expected_losses": {
                    "type": ["object", "null"],
                    "required": ["values", "rtol", "source", "max_rel_err", "status"],
                    "properties": {"status": {"enum": ["pass", "fail"]}},
                },
                "reason": {"type": "string"},
            },
        },
        "results": {"type": "object", "additionalProperties": _CELL},
        "plots": {"type": "array", "items": {"type": "string"}},
        "memory": {"type": "object", "additionalProperties": _NUM},  # peak_rss_mb, rss_growth_mb after the figures
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "e-prop cross-simulator validation report",
    "type": "object",
    "required": ["format", "created", "seconds", "jobs", "command", "environment", "backends", "scenarios",
                 "summary"],
    "additionalProperties": False,
    "properties": {
        "format": {"enum": [FORMAT]},
        "created": {"type": "string"},
        "seconds": {"type": "number", "minimum": 0},
        "jobs": {"type": "integer", "minimum": 1},
        "command": {"type": "array", "items": {"type": "string"}},
        "environment": {"type": "object"},
        "backends": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "available", "reason", "families", "required", "extra"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "available": {"type": "boolean"},
                    "reason": {"type": "string"},
                    "families": {"type": "array", "items": {"enum": ["original", "event"]}},
                    "required": {"type": "boolean"},
                    "extra": {"type": "boolean"},
                },
            },
        },
        "scenarios": {"type": "array", "items": _SCENARIO},
        "summary": {
            "type": "object",
            "required": ["counts", "ok", "exit_status", "missing_required", "failures", "timing", "memory"],
            "additionalProperties": False,
            "properties": {
                "counts": {"type": "object", "required": _STATUS,
                           "additionalProperties": {"type": "integer", "minimum": 0}},
                "ok": {"type": "boolean"},
                "exit_status": {"type": "integer", "minimum": 0},
                "missing_required": {"type": "array", "items": {"type": "string"}},
                "failures": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["scenario", "backend", "status", "quantity", "step", "reason"],
                        "additionalProperties": False,
                        "properties": {
                            "scenario": {"type": "string"},
                            "backend": {"type": "string"},
                            "status": {"enum": ["fail", "error"]},
                            "quantity": {"type": ["string", "null"]},
                            "step": _INT_OR_NULL,
                            "reason": {"type": "string"},
                        },
                    },
                },
                "timing": {"type": "object", "additionalProperties": _TIMING},
                "memory": _MEMORY,
            },
        },
    },
}


class SchemaError(ValueError):
    """A document does not match the schema; the message lists every violation with its JSON path."""


_TYPES = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def _errors(x: Any, schema: dict[str, Any], path: str) -> list[str]:
    errs: list[str] = []
    if "anyOf" in schema:
        if all(_errors(x, s, path) for s in schema["anyOf"]):
            alts = [e for s in schema["anyOf"] for e in _errors(x, s, path)]
            errs.append(f"{path}: matches none of the alternatives ({'; '.join(alts[:3])})")
        return errs
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](x) for t in types):
            return [f"{path}: {type(x).__name__} is not of type {'/'.join(types)}"]
    if "enum" in schema and x not in schema["enum"]:
        errs.append(f"{path}: {x!r} is not one of {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](x) and x < schema["minimum"]:
        errs.append(f"{path}: {x} < minimum {schema['minimum']}")
    if isinstance(x, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in x:
                errs.append(f"{path}: required field {key!r} is missing")
        for key, value in x.items():
            if key in props:
                errs += _errors(value, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}: unexpected field {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += _errors(value, schema["additionalProperties"], f"{path}.{key}")
    if isinstance(x, list) and "items" in schema:
        for i, item in enumerate(x):
            errs += _errors(item, schema["items"], f"{path}[{i}]")
    return errs


def validate(document: Any, schema: dict[str, Any] | None = None) -> None:
    """Check ``document`` against ``schema`` (default :data:`REPORT_SCHEMA`).

    Raises
    ------
    SchemaError
        Listing every violation as ``$.path: problem``.
    """
    errs = _errors(document, REPORT_SCHEMA if schema is None else schema, "$")
    if errs:
        raise SchemaError(f"{len(errs)} schema violation(s):\n" + "\n".join(errs[:50]))
