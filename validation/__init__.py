"""Cross-simulator validation: scenarios, the runner that compares every backend with the reference, reports.

Modules: :mod:`~validation.scenario_library` (the scenarios), :mod:`~validation.compare` (one result
against the reference), :mod:`~validation.runner` (scenarios x backends: :func:`~validation.runner.run_validation`),
:mod:`~validation.cells` (one scenario on every backend), :mod:`~validation.outcomes` (cells, outcomes,
progress callbacks), :mod:`~validation.builds` (build keys and the order of the scenarios),
:mod:`~validation.workers` (worker processes), :mod:`~validation.report` and :mod:`~validation.plots`
(report.json, report.html, terminal table), :mod:`~validation.schema` (report.json's schema),
:mod:`~validation.compare_reports` (two reports cell by cell), :mod:`~validation.perturb` (a
deliberately broken backend for the self-test), :mod:`~validation.cli` (``eprop validate``).
"""
