"""The installed distribution: imports come from site-packages, every compiled module loads,
one version everywhere, type information ships, and no source or generated C is installed."""
from __future__ import annotations

import ast
import importlib
import inspect
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import corenet
import resolver

DIST = "corenet-io"
SITE = Path(sysconfig.get_paths()["platlib"]).resolve()


def installed_files() -> list[Path]:
    return [Path(f.locate()).resolve() for f in importlib.metadata.files(DIST)]


def compiled_modules() -> list[str]:
    names = []
    for path in installed_files():
        if path.suffix == ".so" and path.is_relative_to(SITE):
            rel = path.relative_to(SITE)
            names.append(".".join(rel.parts[:-1] + (rel.name.split(".")[0],)))
    return sorted(names)


def test_both_packages_come_from_site_packages():
    for module in (corenet, resolver):
        assert Path(module.__file__).resolve().is_relative_to(SITE), module.__file__


def test_every_compiled_module_imports_from_site_packages():
    names = compiled_modules()
    assert "corenet._loop" in names and "corenet._epoll" in names
    assert any(n.startswith("resolver.") for n in names)
    for name in names:
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().is_relative_to(SITE), name


def test_no_source_or_generated_c_is_installed():
    leftovers = [p for p in installed_files() if p.suffix in (".c", ".pyx", ".o")]
    assert not leftovers, leftovers


def test_one_version_for_the_distribution_the_packages_and_the_command():
    version = importlib.metadata.version(DIST)
    assert corenet.__version__ == version
    assert resolver.__version__ == version
    exe = Path(sys.executable).parent / "corenet-resolver"
    assert exe.exists()
    help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    assert "serve" in help_text and "--version" in help_text
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"corenet-resolver {version}"


def test_type_information_ships():
    for package in (corenet, resolver):
        assert (Path(package.__file__).parent / "py.typed").is_file(), package.__name__


def public_names(module) -> set[str]:
    return {n for n in dir(module) if not n.startswith("_")} - {"annotations"}


def defined_in(module, name: str) -> bool:
    """Whether ``module.name`` is the module's own (not an import of another module's)."""
    value = getattr(module, name)
    return not inspect.ismodule(value) and getattr(value, "__module__", module.__name__) == module.__name__


def stub_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def test_every_public_compiled_module_of_corenet_has_a_stub_naming_its_public_api():
    """corenet's compiled modules (not the HTTPS client's internals) each ship a .pyi that
    declares every public name the module has, and nothing it lacks."""
    modules = [n for n in compiled_modules()
               if n.startswith("corenet.") and not n.startswith("corenet.https.")]
    assert len(modules) >= 5, modules
    for name in modules:
        module = importlib.import_module(name)
        stub = Path(module.__file__).with_name(name.rsplit(".", 1)[1] + ".pyi")
        assert stub.is_file(), f"no stub for {name}"
        declared, actual = stub_names(stub), public_names(module)
        assert declared <= actual, f"{stub.name} declares what {name} lacks: {declared - actual}"
        undeclared = {n for n in actual - declared if defined_in(module, n)}
        assert not undeclared, f"{stub.name} misses {sorted(undeclared)}"


def test_the_installed_command_prints_a_unit_that_runs_it():
    exe = Path(sys.executable).parent / "corenet-resolver"
    out = subprocess.run([str(exe), "service-unit"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"ExecStart={exe.absolute()} serve --config " in out.stdout
    assert "[Install]" in out.stdout
