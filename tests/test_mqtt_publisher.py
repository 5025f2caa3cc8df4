"""The Publisher against a real mosquitto: topics, payloads, retain flags and QoS, discovery,
availability (clean stop and last will), Home Assistant's restart, and nothing lost across
broker outages and publisher restarts."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from earshot.errors import ConfigError
from earshot.mqtt import Publisher
from mqtt_broker import Mosquitto, Recorder, have_mosquitto, retained
from mqtt_events import (
    DEVICE,
    health,
    loudness,
    match,
    now_playing,
    report,
    section,
    started,
    wait_until,
)

pytestmark = pytest.mark.skipif(not have_mosquitto(), reason="mosquitto is not installed (scripts/setup-system)")

BASE = f"earshot/{DEVICE}"


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker", persistent=True).start()
    yield b
    b.stop()


@pytest.fixture
def recorder(broker):
    rec = Recorder(broker, [f"{BASE}/#", "homeassistant/#"], session="recorder")
    yield rec
    rec.close()


@pytest.fixture
def stopping():
    """Publishers a test starts are stopped at its end, whatever happens."""
    publishers: list[Publisher] = []
    yield publishers
    for p in publishers:
        p.stop(timeout=1.0)


def online(rec: Recorder, count: int = 1):
    return rec.wait_for(lambda ms: sum(m.topic == f"{BASE}/status" and m.payload == b"online"
                                       for m in ms) >= count)


def payloads(rec: Recorder, leaf: str) -> list[dict]:
    return [json.loads(m.payload) for m in rec.on(f"{BASE}/{leaf}")]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_each_event_goes_to_its_topic_with_its_qos_and_retain_flag(broker, recorder, tmp_path, stopping,
                                                                   protocol):
    p = started(section(broker.port, protocol=protocol), tmp_path / "state")
    stopping.append(p)
    online(recorder)
    # health first: nothing is spooled yet, so its spool_depth is exactly 0
    events = {"health": health(), "match": match(), "now_playing": now_playing(), "report": report(),
              "loudness": loudness()}
    for event in events.values():
        p.publish(event)
    recorder.wait_for(lambda ms: all(any(m.topic == f"{BASE}/{leaf}" for m in ms) for leaf in events))
    expected = {"status": (1, True), "now_playing": (1, True), "match": (1, False), "report": (1, False),
                "loudness": (0, False), "health": (0, False)}
    for leaf, (qos, retain) in expected.items():
        (msg,) = [m for m in recorder.on(f"{BASE}/{leaf}")][:1]
        assert (msg.qos, msg.retain) == (qos, retain), leaf
    assert recorder.on(f"{BASE}/status")[0].payload == b"online"  # the plain word, HA's convention
    for leaf, event in events.items():
        body = payloads(recorder, leaf)[-1]
        assert body["id"] == event.id and body["schema"] == 1
        assert body["ts"].endswith("Z") and body["event"] == event.event
    assert payloads(recorder, "health")[-1]["spool_depth"] == 0  # filled in by the publisher
    assert payloads(recorder, "health")[-1]["spool_dropped"] == 0
    assert payloads(recorder, "now_playing")[-1]["track"]["title"] == "Song 1"


def test_discovery_configs_are_retained_and_sent_on_connect(broker, recorder, tmp_path, stopping):
    p = started(section(broker.port, sound_level_offset_db=95.0), tmp_path / "state",
                device_name="Living room")
    stopping.append(p)
    online(recorder)
    recorder.wait_for(lambda ms: sum(m.topic.startswith("homeassistant/") for m in ms) >= 13)
    configs = {m.topic: m for m in recorder.messages if m.topic.startswith("homeassistant/")}
    assert len(configs) == 13
    assert all(m.qos == 1 and m.retain for m in configs.values())
    now = json.loads(configs[f"homeassistant/sensor/earshot_{DEVICE}/now_playing/config"].payload)
    assert now["device"]["name"] == "Living room" and now["state_topic"] == f"{BASE}/now_playing"
    assert set(retained(broker, "homeassistant/#")) == set(configs)


def test_without_discovery_nothing_goes_to_home_assistants_prefix(broker, recorder, tmp_path, stopping):
    p = started(section(broker.port, discovery=False), tmp_path / "state")
    stopping.append(p)
    online(recorder)
    p.publish(match())
    recorder.wait_for(lambda ms: any(m.topic == f"{BASE}/match" for m in ms))
    assert not [m for m in recorder.messages if m.topic.startswith("homeassistant/")]


def test_clean_stop_says_offline_retained(broker, recorder, tmp_path):
    p = started(section(broker.port), tmp_path / "state")
    online(recorder)
    p.publish(now_playing(3))
    p.stop()
    msgs = recorder.wait_for(lambda ms: any(m.topic == f"{BASE}/status" and m.payload == b"offline" for m in ms))
    last = [m for m in msgs if m.topic == f"{BASE}/status"][-1]
    assert (last.payload, last.retain, last.qos) == (b"offline", True, 1)
    held = retained(broker, f"{BASE}/#")
    assert held[f"{BASE}/status"].payload == b"offline"
    assert json.loads(held[f"{BASE}/now_playing"].payload)["track"]["track_id"] == 3
    assert p.spool_depth == 0 and not p.connected


HOLDER = """
import sys, time
from pathlib import Path
from mqtt_events import section, started
p = started(section(int(sys.argv[1])), Path(sys.argv[2]))
while not p.connected:
    time.sleep(0.01)
print("connected", flush=True)
time.sleep(600)
"""


def test_last_will_says_offline_after_sigkill(broker, recorder, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(broker.port), str(tmp_path / "state")],
                            stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "connected"
        online(recorder)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        msgs = recorder.wait_for(lambda ms: any(m.topic == f"{BASE}/status" and m.payload == b"offline"
                                                for m in ms))
        will = [m for m in msgs if m.topic == f"{BASE}/status"][-1]
        assert (will.payload, will.retain) == (b"offline", True)
        assert retained(broker, f"{BASE}/status")[f"{BASE}/status"].payload == b"offline"
    finally:
        proc.kill()


def test_home_assistant_birth_brings_discovery_and_state_again(broker, recorder, tmp_path, stopping):
    p = started(section(broker.port), tmp_path / "state")
    stopping.append(p)
    online(recorder)
    p.publish(now_playing(5))
    p.publish(health())
    recorder.wait_for(lambda ms: any(m.topic == f"{BASE}/health" for m in ms))
    before = len(recorder.messages)
    ha = Recorder(broker, "nothing/here")
    ha.client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
    ha.close()
    # the latest periodic values come last, for HA's fresh start
    recorder.wait_for(lambda ms: any(m.topic == f"{BASE}/health" for m in ms[before:]))
    again = {m.topic: m for m in recorder.messages[before:]}
    assert again[f"{BASE}/status"].payload == b"online"
    assert json.loads(again[f"{BASE}/now_playing"].payload)["track"]["track_id"] == 5
    assert again[f"{BASE}/now_playing"].retain
    sensors = [m for t, m in again.items() if t.startswith("homeassistant/sensor/")]
    assert sum(bool(m.payload) for m in sensors) == 9  # 5 audio + 4 diagnostics; no offset, so:
    assert again[f"homeassistant/sensor/earshot_{DEVICE}/sound_level/config"].payload == b""
    assert f"homeassistant/event/earshot_{DEVICE}/match/config" in again


def stream_matches(p: Publisher, first: int, count: int, every_s: float) -> threading.Thread:
    def run():
        for n in range(first, first + count):
            p.publish(match(n))
            time.sleep(every_s)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def check_all_in_order(rec: Recorder, total: int) -> list[dict]:
    """Every match 1..total arrived, in order; a duplicate repeats its event id."""
    rec.wait_for(lambda ms: {json.loads(m.payload)["track_id"] for m in ms if m.topic == f"{BASE}/match"}
                 >= set(range(1, total + 1)), timeout=30)
    got = payloads(rec, "match")
    first_seen: dict[int, str] = {}
    for body in got:
        assert first_seen.setdefault(body["track_id"], body["id"]) == body["id"]  # duplicates: same id
    order = list(dict.fromkeys(b["track_id"] for b in got))
    assert order == list(range(1, total + 1))
    return got


OUTAGE_S = [2.0] + ([30.0] if os.environ.get("EARSHOT_LONG_TESTS") else [])


@pytest.mark.parametrize("outage_s", OUTAGE_S)
def test_broker_outage_while_songs_play_loses_nothing_and_keeps_order(broker, recorder, tmp_path,
                                                                      stopping, outage_s):
    p = started(section(broker.port, reconnect_max_s=2.0), tmp_path / "state")
    stopping.append(p)
    online(recorder)
    every = 0.05
    before = int(1.0 / every)
    during = int(outage_s / every)
    after = 20
    stream_matches(p, 1, before, every).join()
    broker.stop()
    wait_until(lambda: not p.connected, what="the publisher to notice the outage")
    assert "unreachable" in p.status_text() or "lost" in p.status_text()
    stream_matches(p, before + 1, during, every).join()
    assert p.spool_depth >= during  # all waiting on disk
    assert "spooled" in p.status_text()
    broker.start()
    stream_matches(p, before + during + 1, after, every).join()
    got = check_all_in_order(recorder, before + during + after)
    wait_until(lambda: p.spool_depth == 0, what="the spool to empty")
    print(f"outage {outage_s:.0f} s: {before + during + after} matches, {len(got)} received "
          f"({len(got) - (before + during + after)} duplicates)")


def test_a_new_publisher_delivers_what_an_earlier_one_left_spooled(broker, recorder, tmp_path, stopping):
    state = tmp_path / "state"
    broker.stop()
    first = started(section(broker.port), state)
    for n in range(1, 6):
        first.publish(match(n))
    first.publish(now_playing(5))
    first.stop(timeout=0.5)
    assert first.spool_depth == 6  # nothing could be sent; all of it on disk
    broker.start()
    second = started(section(broker.port), state)
    stopping.append(second)
    check_all_in_order(recorder, 5)
    recorder.wait_for(lambda ms: any(m.topic == f"{BASE}/now_playing" for m in ms))
    wait_until(lambda: second.spool_depth == 0, what="the spool to empty")
    held = retained(broker, f"{BASE}/now_playing")[f"{BASE}/now_playing"]
    assert json.loads(held.payload)["id"] == first_now_playing_id(recorder)


def first_now_playing_id(rec: Recorder) -> str:
    (body,) = {json.loads(m.payload)["id"]: json.loads(m.payload) for m in rec.on(f"{BASE}/now_playing")}.values()
    return body["id"]


def test_health_reports_the_spool_depth_while_the_broker_is_away(broker, recorder, tmp_path, stopping):
    p = started(section(broker.port), tmp_path / "state")
    stopping.append(p)
    online(recorder)
    broker.stop()
    wait_until(lambda: not p.connected, what="disconnect")
    for n in range(1, 4):
        p.publish(match(n))
    p.publish(health())  # not sent (stale later), but kept as the latest
    broker.start()
    recorder.wait_for(lambda ms: sum(m.topic == f"{BASE}/match" for m in ms) >= 3)
    ha = Recorder(broker, "nothing/here")
    ha.client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
    ha.close()
    recorder.wait_for(lambda ms: any(m.topic == f"{BASE}/health" for m in ms))
    assert payloads(recorder, "health")[-1]["spool_depth"] == 3


def test_publish_never_waits_for_a_broker_that_does_not_answer(tmp_path):
    # a socket that accepts TCP connections (backlog) but never speaks MQTT
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    p = started(section(silent.getsockname()[1]), tmp_path / "state")
    try:
        done = threading.Event()

        def pipeline():
            for n in range(200):
                p.publish(match(n))
                p.publish(loudness())
            done.set()

        threading.Thread(target=pipeline, daemon=True).start()
        assert done.wait(30), "publish() blocked"
        assert p.spool_depth == 200 and not p.connected
        assert p.status_text().startswith("connecting to broker")
    finally:
        p.stop(timeout=0.5)
        silent.close()


def test_an_unset_host_is_a_config_error(tmp_path):
    from earshot.config import MqttSection

    with pytest.raises(ConfigError, match="host is not set"):
        Publisher(MqttSection(), tmp_path)


def test_a_full_disk_keeps_events_in_memory_and_in_order(broker, recorder, tmp_path, stopping, caplog):
    """The spool's disk fills while the broker is away: later events wait in memory, and once
    the disk has room again new ones still queue behind those, so everything arrives in order
    and the retained now_playing is the latest."""
    from small_disk import fill, small_tmpfs

    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        broker.stop()
        p = started(section(broker.port), disk / "state")
        stopping.append(p)
        for n in range(1, 21):
            p.publish(match(n))
        filler = fill(disk)
        n = 20
        while "keeping events in memory" not in caplog.text:   # the spool's file must grow
            n += 1
            assert n < 5000, "the spool never needed more of the full disk"
            p.publish(match(n))
        full_until = n
        for n in range(full_until + 1, full_until + 11):
            p.publish(match(n))
        filler.unlink()
        last = full_until + 20
        for n in range(full_until + 11, last + 1):
            p.publish(match(n))
        p.publish(now_playing(last))
        broker.start()
        check_all_in_order(recorder, last)
        wait_until(lambda: p.spool_depth == 0, timeout=30, what="the spool to empty")
        held = retained(broker, f"{BASE}/now_playing")[f"{BASE}/now_playing"]
        assert json.loads(held.payload)["track"]["track_id"] == last
