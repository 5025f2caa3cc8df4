"""`earshot mqtt purge`: the device's retained discovery configs and state leave the broker."""
from __future__ import annotations

import pytest
from earshot.cli import main
from mqtt_broker import Mosquitto, Recorder, have_mosquitto, retained
from mqtt_events import DEVICE, now_playing, section, started, wait_until

pytestmark = pytest.mark.skipif(not have_mosquitto(), reason="mosquitto is not installed (scripts/setup-system)")


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def config_file(tmp_path, port: int) -> str:
    path = tmp_path / "earshot.toml"
    path.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ndevice_id = "{DEVICE}"\n')
    return str(path)


def test_purge_removes_discovery_configs_and_retained_state(broker, tmp_path, capsys):
    p = started(section(broker.port, sound_level_offset_db=90.0), tmp_path / "state")
    wait_until(lambda: p.connected, what="connect")
    p.publish(now_playing(2))
    wait_until(lambda: p.spool_depth == 0, what="delivery")
    p.stop(timeout=1.0)
    # a config left by an older version, and another device's, which must stay
    other = Recorder(broker, "nothing/here")
    other.client.publish(f"homeassistant/sensor/earshot_{DEVICE}/old_entity/config", b"{}", qos=1,
                         retain=True).wait_for_publish(5)
    other.client.publish("homeassistant/sensor/earshot_kitchen/now_playing/config", b"{}", qos=1,
                         retain=True).wait_for_publish(5)
    other.close()
    before = retained(broker, "#")
    assert len([t for t in before if f"earshot_{DEVICE}/" in t]) == 14
    assert {f"earshot/{DEVICE}/status", f"earshot/{DEVICE}/now_playing"} <= set(before)

    assert main(["mqtt", "purge", "--config", config_file(tmp_path, broker.port)]) == 0
    out = capsys.readouterr().out
    assert f"removed device {DEVICE}" in out and "16 retained topic(s) cleared" in out
    assert list(retained(broker, "#")) == ["homeassistant/sensor/earshot_kitchen/now_playing/config"]


def test_purge_without_a_broker_configured_is_a_config_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    assert main(["mqtt", "purge"]) == 78
    assert "host is not set" in capsys.readouterr().err


def test_purge_of_an_unreachable_broker_says_so(tmp_path, capsys):
    from mqtt_broker import free_port

    assert main(["mqtt", "purge", "--config", config_file(tmp_path, free_port()), "--timeout", "2"]) == 1
    assert "cannot reach the MQTT broker" in capsys.readouterr().err
