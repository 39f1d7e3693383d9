"""What scripts/package.sh built: an sdist with every source a build needs and nothing a
build generates, and a manylinux wheel with stripped extensions, no C and no .pyx."""
from __future__ import annotations

import re
import struct
import tarfile
import zipfile
from email.parser import Parser

import corenet

def sdist_members(path: str) -> list[str]:
    with tarfile.open(path) as tar:
        names = tar.getnames()
    top = names[0].split("/")[0]
    return [n[len(top) + 1:] for n in names if n.startswith(top + "/")]


def elf_section_names(data: bytes) -> set[str]:
    """The section names of a 64-bit little-endian ELF file."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = headers[shstrndx][4], headers[shstrndx][5]
    strtab = data[str_off:str_off + str_size]
    return {strtab[h[0]:strtab.index(b"\0", h[0])].decode() for h in headers}


def test_the_sdist_has_every_source_and_nothing_generated(artifact):
    members = sdist_members(artifact("CORENET_SDIST"))
    package_files = [m for m in members if m.startswith(("corenet/", "resolver/"))]
    pyx = {m for m in package_files if m.endswith(".pyx")}
    assert "corenet/_loop.pyx" in pyx and any(m.startswith("resolver/") for m in pyx)
    assert "corenet/include/batch.h" in package_files
    generated = [m for m in package_files if m.endswith((".c", ".so", ".o", ".html"))]
    assert not generated, generated
    for needed in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "setup.py",
                   "MANIFEST.in", "corenet/py.typed", "resolver/py.typed",
                   "resolver/data/root.hints", "resolver/data/root.key",
                   "docs/man/corenet-resolver.8", "docs/man/corenet-resolver.toml.5",
                   "scripts/man.sh"):
        assert needed in members, needed


def test_the_sdist_holds_every_source_file_of_the_tree(artifact):
    """scripts/package.sh lists the tree's files under corenet/ and resolver/ (git ls-files)
    in CORENET_SOURCES; each must be in the sdist, or a build from it is not the tree's."""
    listed = [line for line in open(artifact("CORENET_SOURCES")).read().split("\n") if line]
    assert any(name.endswith(".pyx") for name in listed)
    members = set(sdist_members(artifact("CORENET_SDIST")))
    missing = [n for n in listed if n not in members]
    assert not missing, missing


def test_the_wheel_is_manylinux_and_carries_no_c_and_no_symbols(artifact):
    wheel = artifact("CORENET_WHEEL")
    platforms = wheel.rsplit("-", 1)[1].removesuffix(".whl").split(".")
    assert all(re.fullmatch(r"manylinux(_\d+_\d+|\d+)_x86_64", p) for p in platforms), wheel
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert not [n for n in names if n.endswith((".c", ".pyx", ".o"))]
        shared = [n for n in names if n.endswith(".so")]
        assert len(shared) >= 10, shared
        for name in shared:
            sections = elf_section_names(z.read(name))
            assert ".symtab" not in sections, f"{name} is not stripped"
            assert not {s for s in sections if s.startswith(".debug")}, f"{name} has debug info"
        for typed in ("corenet/py.typed", "resolver/py.typed", "corenet/include/batch.h"):
            assert typed in names, typed
        meta_dir = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        assert any(n.startswith(meta_dir) and n.endswith("LICENSE") for n in names)
        meta = Parser().parsestr(z.read(f"{meta_dir}/METADATA").decode())
    assert meta["Name"] == "corenet-io"
    assert meta["Version"] == corenet.__version__
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = meta.get_all("Classifier")
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers


def test_the_unrepaired_wheel_was_plain_linux(artifact):
    """The repair step is what gives the manylinux tag (setuptools tags linux_x86_64)."""
    assert artifact("CORENET_UNREPAIRED_WHEEL").endswith("linux_x86_64.whl")
    assert "manylinux" in artifact("CORENET_WHEEL")


def test_the_strip_check_sees_symbols_in_an_unstripped_object(tmp_path):
    """The check above can fail: an object linked without -s has a symbol table."""
    import subprocess

    src = tmp_path / "x.c"
    src.write_text("int corenet_probe(int x) { return x + 1; }\n")
    subprocess.run(["gcc", "-g", "-shared", "-fPIC", "-o", str(tmp_path / "x.so"), str(src)],
                   check=True, timeout=60)
    sections = elf_section_names((tmp_path / "x.so").read_bytes())
    assert ".symtab" in sections and ".debug_info" in sections
    subprocess.run(["gcc", "-s", "-shared", "-fPIC", "-o", str(tmp_path / "y.so"), str(src)],
                   check=True, timeout=60)
    assert ".symtab" not in elf_section_names((tmp_path / "y.so").read_bytes())
