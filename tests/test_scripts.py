"""The setup scripts, run against fake system tools in a private PATH: what serving and
testing install, what they say without root or without apt-get, that a package install runs
with services kept from starting, and that no script stops, kills or disables a service."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVE = ["gcc", "python3-dev", "python3-venv", "libssl-dev", "libnghttp2-dev"]
LAB = ["nsd", "unbound", "nginx", "valgrind", "dnsperf", "bind9-utils", "ldnsutils", "strace"]


def fake_system(tmp_path: Path, *, uid: int, apt: bool = True) -> tuple[Path, Path]:
    """A bin directory with the real tools the scripts use, a dpkg-query that knows no
    package, an id that reports ``uid`` and (if ``apt``) an apt-get that logs its calls and
    the policy-rc.d it finds. No python3: setup stops once the packages are dealt with."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "dirname", "basename", "grep", "rm", "chmod", "tail", "cat", "mkdir"):
        os.symlink(shutil.which(tool), bindir / tool)
    log = tmp_path / "apt.log"
    policy = tmp_path / "policy-rc.d"
    scripts = {"dpkg-query": "exit 1", "id": f'[ "$1" = -u ] && echo {uid}'}
    if apt:
        scripts["apt-get"] = (f'echo "apt-get $*" >> {log}\n'
                              f'if [ -e {policy} ]; then /bin/cat {policy} >> {log}; fi')
    for name, body in scripts.items():
        path = bindir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return bindir, log


def run_setup(tmp_path: Path, bindir: Path, mode: str) -> subprocess.CompletedProcess:
    env = {"PATH": str(bindir), "HOME": str(tmp_path), "SETUP_FOR": mode,
           "POLICY_RC_D": str(tmp_path / "policy-rc.d")}
    return subprocess.run([str(bindir / "bash"), str(ROOT / "scripts" / "setup.sh")], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("mode", ["serve", "test"])
def test_without_root_the_setup_prints_the_install_line_and_exits_1(tmp_path, mode):
    bindir, log = fake_system(tmp_path, uid=1000)
    proc = run_setup(tmp_path, bindir, mode)
    assert proc.returncode == 1, proc.stderr
    line = next(l for l in proc.stderr.splitlines() if "apt-get install" in l)
    packages = line.split("--no-install-recommends", 1)[1].split()
    assert packages[:len(SERVE)] == SERVE
    if mode == "serve":
        assert packages == SERVE
    else:
        assert set(LAB) <= set(packages)
    assert not log.exists(), "apt-get must not run without root"
    assert "Traceback" not in proc.stderr and "command not found" not in proc.stderr


def test_without_apt_get_the_setup_lists_what_to_install_and_exits_1(tmp_path):
    bindir, _ = fake_system(tmp_path, uid=0, apt=False)
    proc = run_setup(tmp_path, bindir, "serve")
    assert proc.returncode == 1
    assert "apt-get" in proc.stderr and "not found here" in proc.stderr
    assert "C compiler" in proc.stderr and "Python headers" in proc.stderr
    assert "NSD" not in proc.stderr, "serving needs no lab tool"
    assert "command not found" not in proc.stderr


@pytest.mark.parametrize("mode, services", [("serve", []), ("test", ["nsd", "unbound", "nginx"])])
def test_as_root_packages_install_with_services_kept_from_starting(tmp_path, mode, services):
    bindir, log = fake_system(tmp_path, uid=0)
    proc = run_setup(tmp_path, bindir, mode)
    calls = log.read_text()
    install = next(l for l in calls.splitlines() if l.startswith("apt-get install"))
    if mode == "serve":
        assert install.split("--no-install-recommends", 1)[1].split() == SERVE
    # The policy existed, refusing every start, while apt-get ran; it is gone afterwards.
    assert "exit 101" in calls
    assert not (tmp_path / "policy-rc.d").exists()
    for service in services:
        assert re.search(rf"systemctl disable .*\b{service}\b", proc.stderr), proc.stderr
    if not services:
        assert "systemctl" not in proc.stderr
    assert "installing Debian packages" in proc.stderr        # a progress line
    assert proc.returncode == 1 and "python3" in proc.stderr    # no python3 in the fake PATH


def test_a_policy_the_host_already_has_is_left_as_it_is(tmp_path):
    bindir, log = fake_system(tmp_path, uid=0)
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\n# the host's own\nexit 101\n")
    run_setup(tmp_path, bindir, "serve")
    assert policy.read_text() == "#!/bin/sh\n# the host's own\nexit 101\n"
    assert "the host's own" in log.read_text()


def test_no_script_stops_kills_or_disables_a_service():
    """Commands only: a message that tells the operator how to disable a service is fine."""
    forbidden = re.compile(r"\b(pkill|killall|service\s+\S+\s+stop)\b"
                           r"|\bsystemctl\s+(stop|disable|mask|kill)\b|\bkill\s+-?\w*\s*%")
    files = sorted((ROOT / "scripts").glob("*.sh")) + [ROOT / ".ci" / "run"]
    assert len(files) >= 6
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.match(r"\s*say\b", code):
                continue
            assert not forbidden.search(code), f"{path.name}:{number}: {line.strip()}"


def test_the_man_pages_install_where_man_finds_them_and_again_without_harm(tmp_path):
    """scripts/man.sh (which serve.sh runs as root) puts both pages in MAN_DIR's sections;
    a second run leaves the same files."""
    env = dict(os.environ, MAN_DIR=str(tmp_path / "man"))
    for _ in range(2):
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "man.sh")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        installed = sorted(p.relative_to(tmp_path / "man").as_posix()
                           for p in (tmp_path / "man").rglob("*") if p.is_file())
        assert installed == ["man5/corenet-resolver.toml.5", "man8/corenet-resolver.8"]
    for page in installed:
        assert (tmp_path / "man" / page).read_bytes() == (
            ROOT / "docs" / "man" / page.split("/")[1]).read_bytes()
    if shutil.which("man"):
        found = subprocess.run(["man", "-M", str(tmp_path / "man"), "-w", "corenet-resolver"],
                               capture_output=True, text=True, timeout=60)
        assert found.stdout.strip() == str(tmp_path / "man" / "man8" / "corenet-resolver.8")
    serve = (ROOT / "scripts" / "serve.sh").read_text()
    install = serve.index('bash "$ROOT/scripts/man.sh"')
    assert serve.rfind('if [ "$(id -u)" = 0 ]; then', 0, install) > 0      # as root only
    assert install < serve.index("exec .venv/bin/corenet-resolver serve")


def test_a_build_profile_mode_other_than_generate_or_use_is_refused():
    """A misspelt CORENET_PROFILE stops the build instead of building without a profile."""
    env = {**os.environ, "CORENET_PROFILE": "yes", "CORENET_METADATA_ONLY": "1"}
    proc = subprocess.run([sys.executable, "setup.py", "--name"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "CORENET_PROFILE is generate or use, not 'yes'" in proc.stderr
    env["CORENET_PROFILE"] = "use"
    proc = subprocess.run([sys.executable, "setup.py", "--name"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


FAKE_PYTHON = """#!/bin/bash
# Stands in for the interpreter build_profiled drives: logs each build, fails the workload.
case "$1" in
    -c) case "$2" in *cache_tag*) echo cpython-311 ;; *) echo 3.11.7 ;; esac ;;
    scripts/profile_workload.py) echo "the workload ran" >> "$CALLS"; exit 1 ;;
    setup.py) echo "build CORENET_PROFILE=${CORENET_PROFILE:-} $*" >> "$CALLS"
              if [ "${CORENET_PROFILE:-}" = generate ]; then
                  mkdir -p build/profile-cpython-311 && : > build/profile-cpython-311/x.gcda
              fi ;;
    -m) ;;
esac
"""


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_failing_profile_workload_builds_without_a_profile_except_in_ci(tmp_path, ci):
    """The profile makes the code faster, it is not needed to serve: outside CI a failed
    workload leaves an ordinary build (every extension compiled again, the instrumented
    ones replaced) and no profile; under CI=true it stops the set-up."""
    root = tmp_path / "tree"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "profile_workload.py").write_text("")
    (root / "setup.py").write_text("")
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "CALLS": str(calls), "CI": ci}
    proc = subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source {ROOT}/scripts/lib.sh; ROOT={root}; '
                       f'build_profiled {python}'],
        env=env, capture_output=True, text=True, timeout=60)
    log = calls.read_text().splitlines()
    assert log[:2] == ["build CORENET_PROFILE=generate setup.py -q build_ext --inplace --force",
                       "the workload ran"], log
    assert "the profile's workload failed" in proc.stderr
    if ci:
        assert proc.returncode == 1 and len(log) == 2
    else:
        assert proc.returncode == 0, proc.stderr
        assert log[2:] == ["build CORENET_PROFILE= setup.py -q build_ext --inplace --force"]
        assert "compiling without a profile" in proc.stderr
        assert not (root / "build" / "profile-cpython-311").exists()
