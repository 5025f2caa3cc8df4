"""`make install DESTDIR=…`: the service install into a staging root, inspected.

One real install per run (a virtualenv made with the system's python3, earshot and its
dependencies installed by pip from this source tree, the C kernels compiled: about 30 s,
the dependency wheels coming from pip's cache or PyPI), shared by the tests below. The last
test reinstalls and uninstalls, so it stays last.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(os.environ.get("EARSHOT_INSTALL_PYTHON", "/usr/bin/python3"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PYTHON.exists(), reason=f"{PYTHON} (the service's Python) is not installed"),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]


def run_install(stage: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-C", str(ROOT), *args, f"DESTDIR={stage}", f"PYTHON={PYTHON}"],
                          capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, **env})


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stage")
    done = run_install(root, "install")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DESTDIR set: not creating the user earshot" in done.stdout
    assert "systemd is not running here" in done.stdout  # never systemctl into a staging root
    return root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_files_and_modes(stage: Path) -> None:
    assert mode(stage / "etc/earshot") == 0o755
    for shipped, installed in (("config/earshot.toml", "etc/earshot/earshot.toml"),
                               ("config/genres.toml", "etc/earshot/genres.toml"),
                               ("systemd/earshot.service", "etc/systemd/system/earshot.service"),
                               ("README.md", "opt/earshot/README.md")):
        assert filecmp.cmp(ROOT / shipped, stage / installed, shallow=False), installed
        assert mode(stage / installed) == 0o644, installed
    assert mode(stage / "usr/lib/sysusers.d/earshot.conf") == 0o644
    link = stage / "usr/local/bin/earshot"
    assert link.is_symlink() and os.readlink(link) == "/opt/earshot/venv/bin/earshot"
    assert not (stage / "var/lib/earshot").exists()  # StateDirectory= makes it, for the right user


def test_the_venv_runs_earshot_with_its_c_kernels_and_systemd_python(stage: Path) -> None:
    venv = stage / "opt/earshot/venv"
    assert os.access(venv / "bin/earshot", os.X_OK)
    help_text = subprocess.run([venv / "bin/earshot", "--help"], capture_output=True, text=True,
                               timeout=60, check=True).stdout
    assert "usage: earshot" in help_text and "config" in help_text
    subprocess.run([venv / "bin/python", "-c", "import earshot._native, systemd.daemon, systemd.journal"],
                   timeout=60, check=True)
    config = stage / "etc/earshot/earshot.toml"
    check = subprocess.run([venv / "bin/earshot", "config", "check", str(config)], capture_output=True,
                           text=True, timeout=60, check=False)
    assert (check.returncode, check.stdout) == (0, f"OK: {config}\n"), check.stderr


def test_sysusers_file_makes_a_system_user_in_the_audio_group(stage: Path, tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed")
    (tmp_path / "etc").mkdir()  # an empty root: what a fresh system would get
    subprocess.run([sysusers, f"--root={tmp_path}", str(stage / "usr/lib/sysusers.d/earshot.conf")],
                   capture_output=True, timeout=60, check=True)
    [user] = [line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()
              if line.startswith("earshot:")]
    assert int(user[2]) < 1000 and user[5] == "/var/lib/earshot" and user[6].endswith("nologin")
    groups = {line.split(":")[0]: line.split(":")[3].split(",")
              for line in (tmp_path / "etc/group").read_text().splitlines()}
    assert "earshot" in groups["audio"]


def test_the_installed_unit_verifies_against_the_installed_tree(stage: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # the host's unit files (targets) and /bin/kill, for ExecReload, added to the stage
    units = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                 if (p / "sysinit.target").exists())
    shutil.copytree(units, stage / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    (stage / "usr/bin").mkdir(parents=True, exist_ok=True)
    if not (stage / "bin").exists():
        (stage / "bin").symlink_to("usr/bin")
    (stage / "usr/bin/kill").write_text("#!/bin/sh\n")
    (stage / "usr/bin/kill").chmod(0o755)
    done = subprocess.run([analyze, "verify", f"--root={stage}", "/etc/systemd/system/earshot.service"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.stdout + done.stderr).strip() == ""


def test_reinstall_keeps_the_config_then_uninstall_keeps_data_unless_purged(stage: Path) -> None:
    config = stage / "etc/earshot/earshot.toml"
    edited = config.read_text() + "# the admin was here\n"
    config.write_text(edited)
    done = run_install(stage, "install")
    assert done.returncode == 0, done.stdout + done.stderr
    assert config.read_text() == edited  # never overwritten
    assert filecmp.cmp(ROOT / "config/earshot.toml", stage / "etc/earshot/earshot.toml.new", shallow=False)
    assert "kept your /etc/earshot/earshot.toml" in done.stdout

    (stage / "var/lib/earshot/catalog").mkdir(parents=True)  # as the service would have made it
    done = run_install(stage, "uninstall")
    assert done.returncode == 0, done.stdout + done.stderr
    for gone in ("opt/earshot", "etc/systemd/system/earshot.service", "usr/local/bin/earshot"):
        assert not (stage / gone).exists() and not (stage / gone).is_symlink(), gone
    for kept in ("var/lib/earshot/catalog", "etc/earshot/earshot.toml", "usr/lib/sysusers.d/earshot.conf"):
        assert (stage / kept).exists(), kept

    done = run_install(stage, "uninstall", PURGE="1")
    assert done.returncode == 0, done.stdout + done.stderr
    for gone in ("var/lib/earshot", "etc/earshot", "usr/lib/sysusers.d/earshot.conf"):
        assert not (stage / gone).exists(), gone
