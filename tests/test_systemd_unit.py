"""systemd/earshot.service: `systemd-analyze verify` is silent, the exposure is 2.0 or less,
and the settings the service relies on are there.

verify checks that ExecStart/ExecReload binaries exist, so it runs against a staged root:
the host's unit files (for the targets the unit pulls in), stubs at the unit's command
paths, and the unit in etc/systemd/system. No systemd is started: systemd-analyze reads files.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "earshot.service"
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed "
                                "(Debian package systemd; scripts/setup-system installs it)")
MAX_EXPOSURE = 2.0


def settings(text: str) -> dict[str, list[str]]:
    """Every Key=value of a unit file, keys repeated as systemd allows."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def host_unit_dir() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    pytest.skip("no systemd unit files on this machine")


def stage_root(root: Path, unit_text: str) -> Path:
    """A root with the host's units, stub executables at the unit's command paths and the unit."""
    shutil.copytree(host_unit_dir(), root / "usr/lib/systemd/system", symlinks=True)
    for merged in ("bin", "sbin", "lib"):  # Debian's merged /usr
        (root / "usr" / merged).mkdir(parents=True, exist_ok=True)
        (root / merged).symlink_to(f"usr/{merged}")
    for key in ("ExecStart", "ExecReload", "ExecStop", "ExecStartPre"):
        for command in settings(unit_text).get(key, []):
            binary = root / command.lstrip("-@:+!").split()[0].lstrip("/")
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("#!/bin/sh\n")
            binary.chmod(0o755)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    (unit_dir / "earshot.service").write_text(unit_text)
    return root


def verify(root: Path) -> str:
    done = subprocess.run([ANALYZE, "verify", f"--root={root}", "/etc/systemd/system/earshot.service"],
                          capture_output=True, text=True, timeout=60, check=False)
    return (done.stdout + done.stderr).strip()


def exposure(root: Path) -> tuple[float, str]:
    done = subprocess.run([ANALYZE, "security", "--offline=yes", f"--root={root}", "--no-pager",
                           "earshot.service"], capture_output=True, text=True, timeout=60, check=False)
    out = done.stdout + done.stderr
    found = re.search(r"Overall exposure level for earshot\.service: (\d+(?:\.\d+)?)", out)
    assert found, f"no exposure line in systemd-analyze security's output:\n{out}"
    return float(found.group(1)), out


def test_verify_prints_nothing(tmp_path: Path) -> None:
    assert verify(stage_root(tmp_path, UNIT.read_text())) == ""


def test_verify_does_complain_about_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a missing man page are reported."""
    broken = UNIT.read_text().replace("[Service]\n", "[Service]\nProtectSystm=strict\n", 1)
    broken = broken.replace("[Unit]\n", "[Unit]\nDocumentation=man:earshot-nonexistent(8)\n", 1)
    out = verify(stage_root(tmp_path, broken))
    assert "Unknown key 'ProtectSystm'" in out
    assert "earshot-nonexistent" in out


def test_exposure_is_at_most_2(tmp_path: Path) -> None:
    level, out = exposure(stage_root(tmp_path, UNIT.read_text()))
    assert level <= MAX_EXPOSURE, out


def test_the_unit_has_what_the_service_relies_on() -> None:
    s = settings(UNIT.read_text())
    one = {key: values[-1] for key, values in s.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert one["ExecStart"] == "/opt/earshot/venv/bin/earshot run --wait-for-input"   # a late USB mic
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert 10 <= int(one["WatchdogSec"]) <= 60
    assert one["Restart"] == "on-failure"
    assert "78" in one["RestartPreventExitStatus"].split()  # a bad config must not restart-loop
    assert "StartLimitIntervalSec" in s and "StartLimitBurst" in s
    assert one["User"] == "earshot" and "audio" in one["SupplementaryGroups"].split()
    assert one["StateDirectory"] == "earshot" and one["ConfigurationDirectory"] == "earshot"
    assert one["DevicePolicy"] == "closed" and one["DeviceAllow"] == "char-alsa rw"
    assert one["CapabilityBoundingSet"] == "" and one["UMask"] == "0077"
    assert one["SystemCallFilter"] != "" and "@system-service" in s["SystemCallFilter"]
    # /dev/snd must stay visible, and cffi callbacks need writable+executable memory
    assert one.get("PrivateDevices", "no") == "no"
    assert one.get("MemoryDenyWriteExecute", "no") == "no"


def test_the_password_credential_may_be_missing() -> None:
    """LoadCredential= with an absolute path fails the start when the file is missing, and
    systemd 252 (Debian 12) takes no empty SetCredential= fallback; a credential-store name
    is searched for and skipped when absent, so a broker without a password still starts."""
    [credential] = settings(UNIT.read_text())["LoadCredential"]
    name, _, source = credential.partition(":")
    assert name == "mqtt_password"  # the name earshot's MQTT code reads in $CREDENTIALS_DIRECTORY
    assert source and not source.startswith("/"), credential
