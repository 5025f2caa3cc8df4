"""Check earshot against a real Home Assistant core (not part of make test).

Runs Home Assistant in-process with its MQTT integration on a private mosquitto, starts
the earshot publisher (publisher.py, project venv) and prints the discovered device, every
entity and its state, then the states after a clean stop (unavailable). Needs a separate
venv: python3 -m venv /tmp/hav; /tmp/hav/bin/pip install homeassistant==2024.1.6
janus==1.0.0 paho-mqtt==1.6.1; then /tmp/hav/bin/python scripts/ha_verify/home_assistant.py
"""
import asyncio
import os
import pathlib
import socket
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
import homeassistant.bootstrap  # noqa: F401
from homeassistant import config_entries, loader
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

work = tempfile.mkdtemp()
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
pathlib.Path(f"{work}/m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n")
broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", f"{work}/m.conf"], stderr=subprocess.DEVNULL)
time.sleep(0.3)

async def main():
    os.makedirs(f"{work}/ha", exist_ok=True)
    pathlib.Path(f"{work}/ha/configuration.yaml").write_text("{}\n")
    hass = HomeAssistant(f"{work}/ha")
    if hasattr(loader, "async_setup"):
        loader.async_setup(hass)
    hass.config.skip_pip = True
    import homeassistant.bootstrap as bs
    await bs.load_registries(hass)
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    from homeassistant.auth import auth_manager_from_config
    hass.auth = await auth_manager_from_config(hass, [], [])
    assert await async_setup_component(hass, "homeassistant", {})
    s2 = socket.socket(); s2.bind(("127.0.0.1", 0)); hport = s2.getsockname()[1]; s2.close()
    assert await async_setup_component(hass, "http", {"http": {"server_host": "127.0.0.1", "server_port": hport}})
    entry = config_entries.ConfigEntry(version=1, minor_version=1, domain="mqtt", title="mqtt",
                                       data={"broker": "127.0.0.1", "port": port, "discovery": True},
                                       source="user", options={})
    await hass.config_entries.async_add(entry)
    await hass.async_start()
    await asyncio.sleep(1)
    pub = await asyncio.create_subprocess_exec(str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/ha_verify/publisher.py"),
                                               str(port), f"{work}/state", "3", stdout=asyncio.subprocess.PIPE)
    await pub.stdout.readline()
    await asyncio.sleep(8)
    from homeassistant.helpers import device_registry as dr
    from homeassistant.helpers import entity_registry as er
    devs = [d for d in dr.async_get(hass).devices.values() if ("mqtt", "earshot_living-room") in d.identifiers]
    print("DEVICE", [(d.name, d.manufacturer, d.model, d.sw_version) for d in devs])
    ents = [e for e in er.async_get(hass).entities.values() if devs and e.device_id == devs[0].id]
    for e in sorted(ents, key=lambda e: e.entity_id):
        st = hass.states.get(e.entity_id)
        print("ENTITY", e.entity_id, "|", st.state if st else None, "|",
              {k: v for k, v in (st.attributes.items() if st else []) if k not in ("friendly_name", "icon")})
    await pub.stdout.readline()  # stopped
    await asyncio.sleep(1)
    print("AFTER STOP", {e.entity_id: hass.states.get(e.entity_id).state for e in ents[:3]})
    await pub.wait()
    await hass.async_stop(force=True)

try:
    asyncio.run(main())
finally:
    broker.terminate()
