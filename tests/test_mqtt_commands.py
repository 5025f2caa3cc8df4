"""Commands on `cmd`: validation in isolation, then good and bad commands through mosquitto
with the replies on `cmd/result` (a refused command reaches no handler)."""
from __future__ import annotations

import json
import threading

import pytest
from earshot.errors import EarshotError
from earshot.mqtt import CommandError
from earshot.mqtt.commands import MAX_COMMAND_BYTES, InvalidCommand, parse_command
from mqtt_broker import Mosquitto, Recorder, have_mosquitto
from mqtt_events import DEVICE, section, started, wait_until

BASE = f"earshot/{DEVICE}"


# --- validation -----------------------------------------------------------------------------

def test_a_json_command_with_an_id_is_accepted():
    c = parse_command(b'{"command": "pause", "id": "req-7", "args": {}}')
    assert (c.name, c.args, c.request_id) == ("pause", {}, "req-7")


def test_a_bare_word_is_shorthand_for_a_command():
    assert parse_command(b"identify_now\n").name == "identify_now"


@pytest.mark.parametrize("payload, message", [
    (b'{"command": "self_destruct", "id": 3}', "unknown command 'self_destruct'"),
    (b'{"command": "pause", "args": {"for_s": 10}}', "bad arguments for pause: for_s: unexpected field"),
    (b'{"command": "pause", "colour": "red"}', "colour: unexpected field"),
    (b'{"id": 4}', "command: Field required"),
    (b'{"command": 5}', "command: Input should be a valid string"),
    (b"pause please", "not JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"command": "pause", "pad": "' + b"x" * MAX_COMMAND_BYTES + b'"}', "command too large"),
])
def test_bad_commands_are_refused_with_a_reason(payload, message):
    with pytest.raises(InvalidCommand, match=message):
        parse_command(payload)


def test_the_request_id_survives_a_refusal_so_the_reply_can_carry_it():
    with pytest.raises(InvalidCommand) as info:
        parse_command(b'{"command": "nope", "id": "abc"}')
    assert (info.value.request_id, info.value.command) == ("abc", "nope")


# --- over the broker ------------------------------------------------------------------------

@pytest.fixture
def broker(tmp_path):
    if not have_mosquitto():
        pytest.skip("mosquitto is not installed (scripts/setup-system)")
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


class Handler:
    """The service's side: records calls; `pause` works, `reload` refuses, `health` breaks."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, args: dict) -> dict:
        with self.lock:
            self.calls.append((name, args))
        if name == "reload":
            raise CommandError("reload refused: the new config is invalid")
        if name == "resume":
            raise EarshotError("not listening yet")
        if name == "health":
            raise RuntimeError("boom")
        return {"state": "paused"} if name == "pause" else {"title": "Song 1"}


@pytest.fixture
def session(broker, tmp_path):
    handler = Handler()
    rec = Recorder(broker, f"{BASE}/#")
    p = started(section(broker.port), tmp_path / "state", handler)
    wait_until(lambda: p.connected, what="connect")
    rec.wait_for(lambda ms: any(m.topic == f"{BASE}/status" for m in ms))
    yield p, rec, handler
    p.stop(timeout=1.0)
    rec.close()


def send(rec: Recorder, payload: bytes | str, retain: bool = False) -> None:
    rec.client.publish(f"{BASE}/cmd", payload, qos=1, retain=retain).wait_for_publish(5)


def replies(rec: Recorder, count: int) -> list[dict]:
    msgs = rec.wait_for(lambda ms: sum(m.topic == f"{BASE}/cmd/result" for m in ms) >= count)
    results = [m for m in msgs if m.topic == f"{BASE}/cmd/result"]
    assert all(m.qos == 1 and not m.retain for m in results)
    return [json.loads(m.payload) for m in results]


def test_a_good_command_runs_and_its_result_comes_back_with_the_id(session):
    _p, rec, handler = session
    send(rec, json.dumps({"command": "pause", "id": "r1"}))
    (answer,) = replies(rec, 1)
    assert answer["ok"] is True and answer["id"] == "r1" and answer["command"] == "pause"
    assert answer["result"] == {"state": "paused"} and answer["schema"] == 1 and answer["ts"].endswith("Z")
    assert handler.calls == [("pause", {})]


def test_bad_commands_get_error_replies_and_reach_no_handler(session):
    p, rec, handler = session
    send(rec, json.dumps({"command": "format_disk", "id": 9}))
    send(rec, b"{not json")
    send(rec, json.dumps({"command": "pause", "args": {"minutes": 5}, "id": "x"}))
    send(rec, b'{"command": "pause", "pad": "' + b"y" * 5000 + b'"}')
    answers = replies(rec, 4)
    assert [a["ok"] for a in answers] == [False] * 4
    assert answers[0]["id"] == 9 and "unknown command 'format_disk'" in answers[0]["error"]
    assert "not JSON" in answers[1]["error"]
    assert answers[2]["id"] == "x" and "unexpected field" in answers[2]["error"]
    assert "too large" in answers[3]["error"]
    assert handler.calls == []
    assert p.connected  # and the connection is unharmed


def test_a_refusing_or_failing_handler_gives_an_error_reply_not_a_crash(session):
    _p, rec, _handler = session
    send(rec, "reload")
    send(rec, "resume")
    send(rec, "health")
    send(rec, json.dumps({"command": "identify_now", "id": "after"}))
    answers = replies(rec, 4)
    assert answers[0] == answers[0] | {"ok": False, "command": "reload",
                                       "error": "reload refused: the new config is invalid"}
    assert answers[1]["error"] == "not listening yet"
    assert answers[2]["ok"] is False and answers[2]["error"].startswith("internal error: RuntimeError")
    assert answers[3] == answers[3] | {"ok": True, "id": "after", "result": {"title": "Song 1"}}


def test_a_retained_command_is_not_replayed_at_connect(broker, tmp_path):
    # a retained command would run again at every reconnect: one found at subscription
    # time (the broker marks it retained) is refused
    rec = Recorder(broker, f"{BASE}/#")
    send(rec, "pause", retain=True)
    handler = Handler()
    p = started(section(broker.port), tmp_path / "state", handler)
    try:
        (answer,) = replies(rec, 1)
        assert answer["ok"] is False and "retained" in answer["error"]
        assert handler.calls == []
    finally:
        rec.client.publish(f"{BASE}/cmd", b"", qos=1, retain=True).wait_for_publish(5)
        p.stop(timeout=1.0)
        rec.close()
