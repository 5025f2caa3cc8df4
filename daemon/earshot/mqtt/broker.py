"""How to reach the broker: the password (from the config, a file or a systemd credential)
and the TLS context, checked once at start so a mistake is a clear config error (exit 78)
rather than a reconnect loop. The password is never logged or put in an error message.
"""
from __future__ import annotations

import os
import ssl
from pathlib import Path

from ..config import MqttSection
from ..errors import ConfigError

CREDENTIAL_NAME = "mqtt_password"  # LoadCredential=mqtt_password:/etc/earshot/mqtt_password


def credential_path(environ: dict[str, str] | None = None) -> Path | None:
    """systemd's credential file for the password, when the unit provides one."""
    environ = dict(os.environ) if environ is None else environ
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / CREDENTIAL_NAME
    return path if path.is_file() else None


def resolve_password(section: MqttSection, environ: dict[str, str] | None = None) -> str | None:
    """The broker password: `password`, else `password_file`, else the systemd credential."""
    if section.password is not None:
        password: str | None = section.password.get_secret_value()
    else:
        path = section.password_file or credential_path(environ)
        password = _read_password(path) if path is not None else None
    if password is not None and section.username is None:
        raise ConfigError("[mqtt] a password is set but no username: set mqtt.username too")
    return password


def _read_password(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"[mqtt] password file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"[mqtt] cannot read the password file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"[mqtt] password file {path} is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ConfigError(f"[mqtt] password file {path} is empty (the first line is the password)")
    return lines[0]


def tls_context(section: MqttSection) -> ssl.SSLContext | None:
    """The TLS context for the broker, or None without TLS. The broker's certificate and host
    name are always verified (there is deliberately no 'insecure' switch)."""
    tls = section.tls
    if not tls.active:
        return None
    for name, path in (("ca_file", tls.ca_file), ("certfile", tls.certfile), ("keyfile", tls.keyfile)):
        if path is not None and not path.is_file():
            raise ConfigError(f"[mqtt.tls] {name} {path} does not exist")
    if tls.keyfile is not None and tls.certfile is None:
        raise ConfigError("[mqtt.tls] keyfile is set without certfile")
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"[mqtt.tls] ca_file {tls.ca_file} is not a usable CA certificate ({exc})") from None
    if tls.certfile is not None:
        try:
            context.load_cert_chain(str(tls.certfile), str(tls.keyfile) if tls.keyfile else None)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"[mqtt.tls] cannot use the client certificate {tls.certfile} ({exc})") from None
    return context
