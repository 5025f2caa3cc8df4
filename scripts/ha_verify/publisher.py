"""The earshot side of scripts/ha_verify/home_assistant.py: a Publisher that announces a
device and publishes a few events (run with the project venv)."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from mqtt_events import health, loudness, match, now_playing, section, started, wait_until

p = started(section(int(sys.argv[1]), device_id="living-room", sound_level_offset_db=94.5), Path(sys.argv[2]),
            device_name="Living room earshot")
wait_until(lambda: p.connected)
print("connected", flush=True)
time.sleep(3)   # let HA subscribe to the discovered entities' topics
p.publish(now_playing(3)); p.publish(health()); p.publish(loudness())
time.sleep(1)
p.publish(match(3))
time.sleep(2)
p.publish(loudness())
time.sleep(float(sys.argv[3]))
p.stop()
print("stopped", flush=True)
time.sleep(5)
