"""The C kernels' own tests (native/tests/test_<kernel>.c), driven from pytest.

Natively always: each kernel and test program is compiled with gcc and the extension's
flags plus -Werror, and must report no failed check. For aarch64, the Raspberry Pi's
architecture, when Debian's cross compiler and qemu-user are installed (scripts/setup-system
installs them as root): the same programs cross-compiled, run under qemu-aarch64, and every
figure they print compared with the native run's (fingerprint peaks and hashes bit for bit).
Otherwise that part is skipped, saying why. `make test-aarch64` runs the same from make.
"""
from __future__ import annotations

import importlib.util
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = ROOT / "native" / "tests"
# one program per kernel (evidence.c, the postings join, is tested from Python)
KERNELS = ("fft", "resample", "fingerprint", "loudness", "score")
CLOSING = re.compile(r"^test_(\w+): (\d+) passed, (\d+) failed$", re.MULTILINE)
RUN_TIMEOUT_S = 300


def _compare_module():
    spec = importlib.util.spec_from_file_location("compare_outputs", TESTS_DIR / "compare_outputs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _build(target: str, out: Path, **variables: str) -> None:
    """make -C native/tests <target> OUT=<out>; a compiler warning fails it (-Werror)."""
    args = [f"OUT={out}"] + [f"{k}={v}" for k, v in variables.items()]
    done = subprocess.run(["make", "-s", "-j2", "-C", str(TESTS_DIR), target, *args],
                          check=False, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, f"make {target} failed:\n{done.stdout}\n{done.stderr}"


def _run_all(commands: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the test programs concurrently (two cores; emulation is the slow part)."""
    procs = {k: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, cmd in commands.items()}
    results = {}
    for k, p in procs.items():
        stdout, stderr = p.communicate(timeout=RUN_TIMEOUT_S)
        results[k] = subprocess.CompletedProcess(commands[k], p.returncode, stdout, stderr)
    return results


def _assert_passed(kernel: str, result: subprocess.CompletedProcess[str], where: str) -> None:
    found = CLOSING.findall(result.stdout)
    assert found, f"{where} test_{kernel} printed no closing line:\n{result.stdout}\n{result.stderr}"
    name, passed, failed = found[-1]
    assert name == kernel and int(failed) == 0 and result.returncode == 0, (
        f"{where} test_{kernel}: {failed} failed checks (exit {result.returncode}):\n{result.stderr}")
    assert int(passed) > 10, f"{where} test_{kernel} ran only {passed} checks"


@pytest.fixture(scope="module")
def native_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("native-c")
    _build("build-native", out)
    return _run_all({k: [str(out / "native" / f"test_{k}")] for k in KERNELS})


def _aarch64_runner() -> list[str]:
    """The command prefix that runs an aarch64 binary here, or pytest.skip with the reason."""
    if platform.machine() == "aarch64":
        pytest.skip("this machine is aarch64: the native run is the aarch64 run")
    missing = []
    if not shutil.which("aarch64-linux-gnu-gcc"):
        missing.append("aarch64-linux-gnu-gcc (Debian: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)")
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if not qemu:
        missing.append("qemu-aarch64 (Debian: qemu-user)")
    if missing:
        pytest.skip("aarch64 kernel tests skipped, not installed: " + "; ".join(missing)
                    + ". Run scripts/setup-system or `make test-aarch64` as root.")
    assert qemu
    return [qemu, "-L", "/usr/aarch64-linux-gnu"]


@pytest.fixture(scope="module")
def aarch64_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    runner = _aarch64_runner()
    out = tmp_path_factory.mktemp("aarch64-c")
    _build("build-aarch64", out, CROSS_CC="aarch64-linux-gnu-gcc")
    return _run_all({k: [*runner, str(out / "aarch64" / f"test_{k}")] for k in KERNELS})


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_c_tests_pass_natively(native_runs, kernel: str) -> None:
    _assert_passed(kernel, native_runs[kernel], "native")


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_c_tests_pass_on_aarch64_under_qemu(aarch64_runs, kernel: str) -> None:
    _assert_passed(kernel, aarch64_runs[kernel], "aarch64")


@pytest.mark.parametrize("kernel", KERNELS)
def test_aarch64_figures_match_the_native_ones(native_runs, aarch64_runs, kernel: str) -> None:
    compare = _compare_module()
    problems, summary = compare.compare(native_runs[kernel].stdout, aarch64_runs[kernel].stdout)
    assert not problems, f"test_{kernel}: aarch64 differs from native:\n" + "\n".join(problems)
    assert "values within tolerance" in summary and not summary.startswith("0 values")


def test_compare_catches_a_difference() -> None:
    """The comparison is not vacuous: a figure off by more than the tolerance, a changed
    hash checksum or a missing figure are each reported."""
    compare = _compare_module()
    ref = "value a 1.0\nexact h 00ff\nvalue b 2.0\n"
    assert compare.compare(ref, ref)[0] == []
    assert compare.compare(ref, "value a 1.0000000001\nexact h 00ff\nvalue b 2.0\n")[0] == []
    assert compare.compare(ref, "value a 1.001\nexact h 00ff\nvalue b 2.0\n")[0]
    assert compare.compare(ref, "value a 1.0\nexact h 00fe\nvalue b 2.0\n")[0]
    assert compare.compare(ref, "value a 1.0\nexact h 00ff\n")[0]


def test_c_tests_use_the_extension_compiler_flags() -> None:
    """native/tests builds the kernels as the Python extension does (plus -Werror), so what
    passes there is what runs in earshot._native."""
    makefile = (TESTS_DIR / "Makefile").read_text()
    cflags = re.search(r"^CFLAGS := (.*)$", makefile, re.MULTILINE)
    assert cflags, "no CFLAGS line in native/tests/Makefile"
    builder = (ROOT / "native" / "build_native.py").read_text()
    flags = re.search(r"^_flags = \[(.*)\]$", builder, re.MULTILINE)
    assert flags, "no _flags list in native/build_native.py"
    extension = re.findall(r'"([^"]+)"', flags.group(1))
    assert cflags.group(1).split() == extension + ["-Werror"]
