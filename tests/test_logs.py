"""Logging: readable stderr lines, structured journal fields, no double printing, no secrets."""
from __future__ import annotations

import io
import logging
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from earshot import logs
from earshot.cli import main

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_stderr_lines_are_time_logger_level_message() -> None:
    out = io.StringIO()
    assert logs.configure("info", journal=False, stream=out) == "stderr"
    logging.getLogger("earshot.listener").info("listening on %s", "USB PnP Sound Device")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d earshot\.listener INFO "
                        r"listening on USB PnP Sound Device\n", out.getvalue())


def test_level_filters_and_a_bad_level_is_refused() -> None:
    out = io.StringIO()
    logs.configure("warning", journal=False, stream=out)
    logging.getLogger("earshot.x").info("quiet")
    logging.getLogger("earshot.x").warning("loud")
    assert "quiet" not in out.getvalue() and "WARNING loud" in out.getvalue()
    with pytest.raises(ValueError, match="unknown log level 'chatty'"):
        logs.configure("chatty", journal=False)


def test_configuring_twice_keeps_one_handler() -> None:
    out = io.StringIO()
    logs.configure("info", journal=False, stream=out)
    logs.configure("info", journal=False, stream=out)
    logging.getLogger("earshot.x").info("once")
    assert out.getvalue().count("once") == 1


def _record(msg: str = "matched", **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("earshot.listener")
    return logger.makeRecord(logger.name, logging.INFO, "listener.py", 42, msg, (), None,
                             func="on_match", extra=extra)


def test_earshot_extras_become_upper_case_journal_fields() -> None:
    fields = logs.journal_fields(_record(earshot_event="match", earshot_track_id=3,
                                         earshot_confidence=0.9995, earshot_unset=None,
                                         MESSAGE_ID="0123456789abcdef0123456789abcdef", other="x"))
    assert fields["EARSHOT_EVENT"] == "match"
    assert fields["EARSHOT_TRACK_ID"] == "3"
    assert fields["EARSHOT_CONFIDENCE"] == "0.9995"
    assert fields["MESSAGE_ID"] == "0123456789abcdef0123456789abcdef"
    assert fields["PRIORITY"] == "6" and fields["LOGGER"] == "earshot.listener"
    assert fields["CODE_FUNC"] == "on_match" and fields["CODE_LINE"] == 42
    assert fields["SYSLOG_IDENTIFIER"] == "earshot"
    assert "EARSHOT_UNSET" not in fields
    # journald drops fields whose names are not upper case: none are sent
    assert all(re.fullmatch(r"[A-Z0-9][A-Z0-9_]*", name) for name in fields)


@pytest.mark.parametrize(("level", "priority"), [
    (logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3), (logging.CRITICAL, 2)])
def test_levels_map_to_syslog_priorities(level: int, priority: int) -> None:
    assert logs.syslog_priority(level) == priority


def test_journal_handler_sends_message_and_fields_once() -> None:
    sent: list[tuple[str, dict[str, str | int]]] = []
    handler = logs.JournalFieldsHandler(send=lambda msg, **fields: sent.append((msg, fields)))
    handler.handle(_record("now playing: %s", earshot_event="now_playing"))
    [(msg, fields)] = sent
    assert msg == "now playing: %s"  # no args: the message is taken as it is
    assert fields["EARSHOT_EVENT"] == "now_playing"


def test_hidden_secrets_never_reach_lines_or_fields() -> None:
    out = io.StringIO()
    logs.configure("info", journal=False, stream=out)
    logs.hide("hunter2")
    logs.configure("info", journal=False, stream=out)  # a reconfigure keeps them hidden
    logging.getLogger("earshot.mqtt").warning("login failed with password hunter2")
    assert "hunter2" not in out.getvalue() and "password ***" in out.getvalue()

    sent: list[dict[str, str | int]] = []
    handler = logs.JournalFieldsHandler(send=lambda msg, **f: sent.append({"MESSAGE": msg, **f}))
    handler.redactor.add("hunter2")
    handler.handle(_record("pw hunter2", earshot_detail="was hunter2"))
    assert sent[0]["MESSAGE"] == "pw ***" and sent[0]["EARSHOT_DETAIL"] == "was ***"


def test_stderr_is_journal_compares_device_and_inode(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as f:
        st = os.fstat(f.fileno())
        assert logs.stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fd=f.fileno())
        assert not logs.stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, fd=f.fileno())
        assert not logs.stderr_is_journal({"JOURNAL_STREAM": "garbage"}, fd=f.fileno())
        assert not logs.stderr_is_journal({}, fd=f.fileno())


def test_without_systemd_python_the_journal_gets_prefixed_stderr_lines(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "systemd.journal", None)  # import fails as if not installed
    out = io.StringIO()
    assert logs.configure("info", journal=True, stream=out) == "journal-stream"
    logging.getLogger("earshot.listener").warning("device lost\nretrying")
    assert out.getvalue() == "<4>earshot.listener: device lost\n<4>retrying\n"


def test_log_level_option_sets_the_root_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("earshot.config.SYSTEM_CONFIG", tmp_path / "absent.toml")
    assert main(["--log-level", "debug", "config", "check"]) == 0
    assert logging.getLogger().level == logging.DEBUG
    with pytest.raises(SystemExit) as exc:
        main(["--log-level", "loud", "config", "check"])
    assert exc.value.code == 2
    assert "invalid choice: 'loud'" in capsys.readouterr().err


# --- the real thing: libsystemd's journal protocol, caught on journald's socket ---------

def parse_native(datagram: bytes) -> dict[str, str]:
    """journald's native protocol: KEY=value lines, or KEY\\n<le64 size><bytes>\\n."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            (size,) = struct.unpack("<Q", datagram[nl + 1:nl + 9])
            key, value = line, datagram[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        fields[key.decode()] = value.decode()
    return fields


@pytest.fixture
def fake_journald() -> Iterator[socket.socket]:
    """A datagram socket bound where libsystemd sends journal entries (only where no
    journald runs, as root; removed afterwards)."""
    if JOURNAL_SOCKET.exists() or JOURNAL_SOCKET.parent.exists():
        pytest.skip("a journald socket folder exists here; not intercepting it")
    if os.geteuid() != 0:
        pytest.skip("needs root to bind /run/systemd/journal/socket")
    pytest.importorskip("systemd.journal", reason="systemd-python is not installed")
    JOURNAL_SOCKET.parent.mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(JOURNAL_SOCKET))
        sock.settimeout(10)
        yield sock
    finally:
        sock.close()
        JOURNAL_SOCKET.unlink(missing_ok=True)
        JOURNAL_SOCKET.parent.rmdir()


def test_under_systemd_records_go_to_the_journal_with_fields_and_not_to_stderr(
        fake_journald: socket.socket, tmp_path: Path) -> None:
    child = textwrap.dedent("""
        import logging, sys
        from earshot import logs
        print(logs.configure("info"), file=sys.stdout, flush=True)
        logging.getLogger("earshot.listener").info(
            "matched %s", "Battle Music", extra={"earshot_event": "match", "earshot_track_id": 3})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("earshot.listener").exception("pipeline failed")
    """)
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "w") as err:
        st = os.fstat(err.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        done = subprocess.run([sys.executable, "-c", child], stderr=err, stdout=subprocess.PIPE,
                              env=env, text=True, timeout=60, check=False)
    assert done.returncode == 0, stderr_path.read_text()
    assert done.stdout.strip() == "journal"
    assert stderr_path.read_text() == ""  # nothing printed twice (nor a logging error)
    first = parse_native(fake_journald.recv(65536))
    second = parse_native(fake_journald.recv(65536))
    assert first["MESSAGE"] == "matched Battle Music"
    assert first["EARSHOT_EVENT"] == "match" and first["EARSHOT_TRACK_ID"] == "3"
    assert first["PRIORITY"] == "6" and first["LOGGER"] == "earshot.listener"
    assert first["SYSLOG_IDENTIFIER"] == "earshot"
    assert second["PRIORITY"] == "3"
    assert second["MESSAGE"].startswith("pipeline failed\nTraceback")  # multi-line: binary framing
    assert "RuntimeError: boom" in second["MESSAGE"]
