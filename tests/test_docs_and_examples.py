"""The documentation builds without warnings, its examples run, and the code cites the model contract as it is."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_RST = ROOT / "docs" / "model.rst"
#: what is searched for citations: the packages, the docs, the tests, the examples, the top-level texts
CITING = ["eprop_plugins", "brian2_ext", "nest_models", "pynn_ext", "validation", "docs", "tests", "examples",
          "README.md", "CONTRIBUTING.md"]
SUFFIXES = {".py", ".rst", ".md", ".nestml", ".h", ".cpp", ".jinja2", ".txt", ".toml"}


def _text_files():
    for name in CITING:
        path = ROOT / name
        if path.is_file():
            yield path
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.suffix in SUFFIXES and "_build" not in p.parts and "_generated" not in p.parts:
                    yield p


def _model_sections() -> set[str]:
    """Section numbers of the model contract, from its Sphinx labels ``.. _model-s<n>:``."""
    return set(re.findall(r"^\.\. _model-s(\w+):$", MODEL_RST.read_text(), flags=re.M))


def test_quickstart_example_runs_and_matches_nest(capsys):
    runpy.run_path(str(ROOT / "examples" / "train_sine_reference.py"), run_name="__main__")
    out = capsys.readouterr().out
    diffs = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "relative difference" in line]
    assert len(diffs) == 5 and max(diffs) < 1e-8


def test_sphinx_builds_with_warnings_as_errors(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(ROOT / "docs"), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "parameters.html").read_text()
    assert "surrogate_gradient_function" in html and "isi_trace_cutoff" in html
    for page in ("model", "scenarios", "reference", "cli", "validation", "api"):
        assert (tmp_path / f"{page}.html").exists(), page
    model = (tmp_path / "model.html").read_text()
    for n in ("0", "1", "2", "3", "3b", "4", "5", "6", "7", "8"):
        assert f'id="model-s{n}"' in model, f"docs/model.rst has no linkable section §{n}"


def test_model_contract_has_the_numbered_sections():
    text = MODEL_RST.read_text()
    assert _model_sections() == {"0", "1", "2", "3", "3b", "4", "5", "6", "7", "8"}
    for n in _model_sections():
        # the label is followed by its numbered heading
        assert re.search(rf"^\.\. _model-s{n}:\n\n§{n} \S", text, flags=re.M), n


def test_every_cited_model_section_exists():
    """``docs/model.rst §n`` (also ``§0/§2``, ``§2, §3``) in code and docs names an existing section."""
    sections = _model_sections()
    cited, missing = 0, []
    for path in _text_files():
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for m in re.finditer(r"docs/model\.rst\s+((?:§\d+b?(?:\s*(?:,|/|and|–|-)\s*)?)+)", line):
                for n in re.findall(r"§(\d+b?)", m.group(1)):
                    cited += 1
                    if n not in sections:
                        missing.append(f"{path.relative_to(ROOT)}:{lineno}: §{n}")
    assert cited >= 20
    assert not missing, "citations of sections that docs/model.rst does not have:\n" + "\n".join(missing)


def test_no_code_cites_a_contract_outside_the_repository():
    """The model contract is docs/model.rst: no ``eprop-model.md`` and no bare ``spec §n``."""
    offenders = []
    for path in _text_files():
        if path == Path(__file__).resolve():  # this test names what it forbids
            continue
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if "eprop-model.md" in line or re.search(r"\bspec §", line):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert not offenders, ("cite the contract as docs/model.rst §n:\n" + "\n".join(offenders))
