"""A virtual microphone (for the tests and the demo): a private PulseAudio server with a null sink, whose
monitor PortAudio sees as the ALSA device `vmic` (through libasound2-plugins' pulse plugin).

Audio played into the sink with `paplay --device=vmic` is what the "microphone" hears.
Everything lives under one temporary folder (HOME, XDG_RUNTIME_DIR, the socket, `.asoundrc`),
so the machine's own sound setup is never touched.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

SINK = "vmic"


def available() -> str | None:
    """Why the virtual microphone cannot be made here, or None when it can."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian packages pulseaudio, pulseaudio-utils)"
    if not any(Path(p).exists() for p in ("/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
                                           "/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so",
                                           "/usr/lib/arm-linux-gnueabihf/alsa-lib/libasound_module_pcm_pulse.so")):
        return "the ALSA pulse plugin is not installed (Debian package libasound2-plugins)"
    return None


class VirtualMic:
    """Start, stop (kill) and restart a private PulseAudio with the `vmic` null sink."""

    def __init__(self, root: Path, rate: int = 48000):
        self.root = Path(root)
        self.rate = rate
        self.run_dir = self.root / "run"
        self.socket = self.run_dir / "native"
        self.proc: subprocess.Popen | None = None
        self.players: list[subprocess.Popen] = []
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "pa.pa").write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name={SINK} rate={rate} channels=2\n"
            "load-module module-always-sink\n"
        )
        (self.root / ".asoundrc").write_text(
            f'pcm.{SINK} {{ type pulse device "{SINK}.monitor" '
            'hint { show on description "earshot virtual microphone" } }\n'
            f"ctl.{SINK} {{ type pulse }}\n"
        )

    @property
    def env(self) -> dict[str, str]:
        """The environment a client (earshot, paplay) needs to reach this server."""
        env = dict(os.environ)
        env.update(HOME=str(self.root), XDG_RUNTIME_DIR=str(self.run_dir),
                   PULSE_SERVER=f"unix:{self.socket}")
        return env

    def start(self, timeout: float = 10.0) -> None:
        if self.socket.exists():
            self.socket.unlink()
        log = open(self.root / "pulseaudio.log", "ab")
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(self.root / "pa.pa"), "--daemonize=no", "--exit-idle-time=-1",
             "--use-pid-file=no", "--disable-shm=yes", "--log-target=stderr"],
            env=self.env, stdout=log, stderr=log, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: see {self.root / 'pulseaudio.log'}")
            ok = subprocess.run(["pactl", "list", "short", "sinks"], env=self.env, capture_output=True, text=True)
            if ok.returncode == 0 and SINK in ok.stdout:
                # an idle null sink is suspended and its monitor delivers 2 s chunks: wake it
                subprocess.run(["pactl", "suspend-sink", SINK, "0"], env=self.env, capture_output=True)
                return
            time.sleep(0.1)
        raise RuntimeError("pulseaudio did not come up")

    def kill(self) -> None:
        """The sound server dies (as when it crashes or is restarted)."""
        for p in self.players:
            if p.poll() is None:
                p.kill()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def play(self, wav: Path) -> subprocess.Popen:
        """Play a file into the virtual microphone (returns at once)."""
        p = subprocess.Popen(["paplay", f"--device={SINK}", str(wav)], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.players.append(p)
        return p

    def stop(self) -> None:
        self.kill()
