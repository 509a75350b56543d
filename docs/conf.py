"""Sphinx configuration for eprop-plugins."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "eprop-plugins"
author = "eprop-plugins developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_mock_imports: list[str] = []
html_theme = "alabaster"
exclude_patterns = ["_build", "_generated/README"]


def _write_parameter_tables(app):
    """Generate the parameter tables from the one canonical table (never written by hand)."""
    from eprop_plugins.parameters import TABLES, parameter_table_rst

    out = Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    for name in TABLES:
        (out / f"parameters_{name}.rst").write_text(parameter_table_rst(name))


def setup(app):
    app.connect("builder-inited", _write_parameter_tables)
