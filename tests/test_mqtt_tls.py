"""TLS and passwords: a TLS broker with a password file (certificates made here with
openssl), a wrong password (a clear log line, retries, no crash, nothing lost), an
untrusted certificate, and how the password is found (config, file, systemd credential)."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from earshot.config import parse_config
from earshot.errors import ConfigError
from earshot.mqtt.broker import resolve_password, tls_context
from mqtt_broker import Mosquitto, Recorder, TlsFiles, have_mosquitto
from mqtt_events import DEVICE, match, section, started, wait_until

BASE = f"earshot/{DEVICE}"
PASSWORD = "s3cret-Pa55word"

needs_tools = pytest.mark.skipif(not (have_mosquitto() and shutil.which("openssl")),
                                 reason="mosquitto and openssl are needed (scripts/setup-system)")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=folder)
    return folder / f"{name}.crt", folder / f"{name}.key"


def make_server_cert(folder: Path, ca: tuple[Path, Path], name: str) -> TlsFiles:
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost", cwd=folder)
    ext = folder / f"{name}.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", str(ext), cwd=folder)
    return TlsFiles(ca=ca[0], cert=folder / f"{name}.crt", key=folder / f"{name}.key")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    good = make_server_cert(folder, make_ca(folder, "earshot-test-ca"), "server")
    stranger = make_ca(folder, "some-other-ca")
    return good, stranger[0]


@pytest.fixture
def tls_broker(tmp_path, certs):
    b = Mosquitto(tmp_path / "broker", users={"earshot": PASSWORD, "ha": "ha-pass"}, tls=certs[0],
                  persistent=True).start()
    yield b
    b.stop()


def tls_section(broker: Mosquitto, ca: Path, password_file: Path, **kw):
    return section(broker.port, username="earshot", password_file=str(password_file),
                   tls={"ca_file": str(ca)}, **kw)


@needs_tools
def test_tls_with_a_password_file_delivers(tls_broker, certs, tmp_path):
    pw = tmp_path / "mqtt_password"
    pw.write_text(PASSWORD + "\n")
    rec = Recorder(tls_broker, f"{BASE}/#", username="ha", password="ha-pass", tls_ca=certs[0].ca)
    p = started(tls_section(tls_broker, certs[0].ca, pw), tmp_path / "state")
    try:
        wait_until(lambda: p.connected, what="a TLS connection")
        p.publish(match(7))
        msgs = rec.wait_for(lambda ms: any(m.topic == f"{BASE}/match" for m in ms))
        assert any(m.topic == f"{BASE}/status" and m.payload == b"online" for m in msgs)
        wait_until(lambda: p.spool_depth == 0, what="the acknowledgement")
        assert p.status_text() == "broker connected"
    finally:
        p.stop(timeout=1.0)
        rec.close()


@needs_tools
def test_a_wrong_password_is_logged_clearly_retried_and_loses_nothing(tls_broker, certs, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="earshot.mqtt")
    wrong = "not-the-password"
    rec = Recorder(tls_broker, f"{BASE}/#", username="ha", password="ha-pass", tls_ca=certs[0].ca,
                   session="ha")
    p = started(tls_section(tls_broker, certs[0].ca, _file(tmp_path, wrong)), tmp_path / "state")
    try:
        wait_until(lambda: "refused the login" in p.status_text(), what="the refusal")
        for n in (1, 2, 3):
            p.publish(match(n))
        # it keeps trying (a repeated identical refusal is logged at debug level)
        wait_until(lambda: sum("refused the login" in r.getMessage() for r in caplog.records) >= 2,
                   what="a retry")
        assert p.spool_depth == 3 and not p.connected
        refusals = [r for r in caplog.records if "refused the login" in r.getMessage()]
        assert refusals and refusals[0].levelno == logging.WARNING
        assert "check [mqtt] username and password" in refusals[0].getMessage()
        assert all(wrong not in r.getMessage() and PASSWORD not in r.getMessage() for r in caplog.records)
        # the administrator fixes the broker's side: what was spooled arrives, in order
        tls_broker.stop()
        tls_broker.users["earshot"] = wrong
        tls_broker._write_conf()
        tls_broker.start()
        msgs = rec.wait_for(lambda ms: sum(m.topic == f"{BASE}/match" for m in ms) >= 3, timeout=15)
        assert [json.loads(m.payload)["track_id"] for m in msgs if m.topic == f"{BASE}/match"] == [1, 2, 3]
        wait_until(lambda: p.spool_depth == 0, what="the spool to drain")
    finally:
        p.stop(timeout=1.0)
        rec.close()


@needs_tools
def test_an_untrusted_broker_certificate_is_refused_with_a_clear_reason(tls_broker, certs, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="earshot.mqtt")
    p = started(tls_section(tls_broker, certs[1], _file(tmp_path, PASSWORD)), tmp_path / "state")
    try:
        wait_until(lambda: "certificate" in p.status_text(), what="the TLS refusal")
        assert "broker unreachable (TLS: the broker's certificate was not accepted" in p.status_text()
        assert any("certificate" in r.getMessage() for r in caplog.records)
        assert not p.connected
    finally:
        p.stop(timeout=1.0)


def _file(folder: Path, text: str) -> Path:
    path = folder / "pw"
    path.write_text(text + "\n")
    return path


# --- where the password comes from (no broker needed) -----------------------------------------

def mqtt(**options):
    return parse_config({"mqtt": {"host": "broker.lan"} | options}).mqtt


def test_password_from_the_config_file_or_the_systemd_credential(tmp_path):
    assert resolve_password(mqtt(username="u", password="inline")) == "inline"
    assert resolve_password(mqtt(username="u", password_file=str(_file(tmp_path, "from-file")))) == "from-file"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("from-systemd\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert resolve_password(mqtt(username="u"), env) == "from-systemd"
    assert resolve_password(mqtt(username="u", password="inline"), env) == "inline"  # explicit wins
    assert resolve_password(mqtt(), {}) is None


@pytest.mark.parametrize("options, message", [
    ({"username": "u", "password_file": "/nonexistent/pw"}, "password file /nonexistent/pw does not exist"),
    ({"password": "p"}, "a password is set but no username"),
    ({"tls": {"ca_file": "/nonexistent/ca.pem"}}, r"\[mqtt.tls\] ca_file /nonexistent/ca.pem does not exist"),
])
def test_credential_and_tls_mistakes_are_config_errors_without_the_secret(options, message):
    with pytest.raises(ConfigError, match=message) as info:
        section_ = mqtt(**options)
        resolve_password(section_, {})
        tls_context(section_)
    assert "p\"" not in str(info.value)


def test_an_empty_password_file_is_a_config_error(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_password(mqtt(username="u", password_file=str(empty)))


def test_tls_defaults_to_port_8883_and_system_cas():
    s = mqtt(tls={"enabled": True})
    assert s.effective_port == 8883 and tls_context(s) is not None
    assert mqtt().effective_port == 1883 and tls_context(mqtt()) is None
