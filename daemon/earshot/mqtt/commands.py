"""Commands arriving on `<base>/<device>/cmd`, validated before anything acts on them.

A command is JSON: `{"command": "pause", "id": "42", "args": {}}` (`id` and `args` are
optional; a bare word such as `pause` is accepted as shorthand). The reply goes to
`cmd/result`: `{"ok": true, "result": {...}}` or `{"ok": false, "error": "..."}`, with the
request's `id`, the command, `ts` and `schema`. Anything oversized, malformed, unknown or
with unexpected arguments gets an error reply and reaches no handler, so it changes nothing.

Handlers run one at a time on a worker thread of their own: a slow `reload` never stalls
the MQTT connection (keep-alives, acknowledgements), and a burst of commands beyond the
small queue is answered "busy" instead of piling up.
"""
from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import EarshotError
from ..events import SCHEMA_VERSION, utc_now

log = logging.getLogger("earshot.mqtt")

MAX_COMMAND_BYTES = 4096
MAX_PENDING = 8

# name, validated args -> result payload (JSON-serialisable); raises CommandError (or any
# EarshotError) with a message for the reply
CommandHandler = Callable[[str, dict], dict]


class CommandError(Exception):
    """A command was understood but could not be carried out; the message goes to the reply."""


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# every known command and the model of its arguments
COMMANDS: dict[str, type[BaseModel]] = {
    "reload": NoArgs,        # re-read the config and catalog (as SIGHUP)
    "pause": NoArgs,         # stop listening (the microphone is released)
    "resume": NoArgs,        # listen again
    "identify_now": NoArgs,  # publish the current best guess
    "health": NoArgs,        # a health report in the reply
}


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1, max_length=64)
    id: str | int | None = Field(None, description="echoed in the reply")
    args: dict[str, Any] = Field(default_factory=dict)


class Command(BaseModel):
    """A command that passed validation."""

    model_config = ConfigDict(frozen=True)

    name: str
    args: dict[str, Any]
    request_id: str | int | None = None


class InvalidCommand(Exception):
    """Why a message on `cmd` is refused; `request_id` when it could still be read."""

    def __init__(self, message: str, request_id: str | int | None = None, command: str | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.command = command


_BARE_WORD = re.compile(r"^[a-z_]{1,64}$")


def parse_command(payload: bytes) -> Command:
    """Validate a message from `cmd`; InvalidCommand says what is wrong in words."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise InvalidCommand(f"command too large ({len(payload)} bytes, at most {MAX_COMMAND_BYTES})")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidCommand("command is not UTF-8 text") from None
    if _BARE_WORD.match(text):
        data: Any = {"command": text}
    else:
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidCommand('command is not JSON (expected {"command": NAME, "id": ..., "args": {...}})') from None
    if not isinstance(data, dict):
        raise InvalidCommand('command must be a JSON object: {"command": NAME, ...}')
    request_id = data.get("id") if isinstance(data.get("id"), (str, int)) else None
    name = data.get("command") if isinstance(data.get("command"), str) else None
    try:
        request = CommandRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidCommand(_describe(exc), request_id, name) from None
    model = COMMANDS.get(request.command)
    if model is None:
        raise InvalidCommand(f"unknown command {request.command!r} (known: {', '.join(COMMANDS)})",
                             request.id, request.command)
    try:
        args = model.model_validate(request.args).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidCommand(f"bad arguments for {request.command}: {_describe(exc)}",
                             request.id, request.command) from None
    return Command(name=request.command, args=args, request_id=request.id)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "command"
        msg = "unexpected field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def reply(request_id: str | int | None, command: str | None, *, result: dict | None = None,
          error: str | None = None) -> bytes:
    """The JSON published on `cmd/result`."""
    body: dict[str, Any] = {
        "ts": utc_now().isoformat().replace("+00:00", "Z"),
        "schema": SCHEMA_VERSION,
        "id": request_id,
        "command": command,
        "ok": error is None,
    }
    if error is None:
        body["result"] = result if result is not None else {}
    else:
        body["error"] = error
    return json.dumps(body, ensure_ascii=False, default=str).encode()


class CommandRunner:
    """Runs valid commands through the handler on one worker thread; replies via `send`."""

    def __init__(self, handler: CommandHandler | None, send: Callable[[bytes], None]):
        self._handler = handler
        self._send = send
        self._queue: queue.Queue[Command | None] = queue.Queue(maxsize=MAX_PENDING)
        self._thread = threading.Thread(target=self._run, name="earshot-mqtt-commands", daemon=True)
        self._thread.start()

    def submit(self, payload: bytes) -> None:
        """A message from `cmd` (called on the MQTT thread: never blocks)."""
        try:
            command = parse_command(payload)
        except InvalidCommand as exc:
            log.warning("refused MQTT command: %s", exc)
            self._send(reply(exc.request_id, exc.command, error=str(exc)))
            return
        if self._handler is None:
            self._send(reply(command.request_id, command.name, error="commands are not available"))
            return
        try:
            self._queue.put_nowait(command)
        except queue.Full:
            self._send(reply(command.request_id, command.name,
                             error=f"busy: {MAX_PENDING} commands are already waiting"))

    def _run(self) -> None:
        while True:
            command = self._queue.get()
            if command is None:
                return
            self._send(self._execute(command))

    def _execute(self, command: Command) -> bytes:
        assert self._handler is not None
        log.info("MQTT command: %s", command.name)
        try:
            result = self._handler(command.name, dict(command.args))
            json.dumps(result, default=str)  # a result we cannot publish is an error too
        except (CommandError, EarshotError) as exc:  # a refusal in words, not a failure
            return reply(command.request_id, command.name, error=str(exc))
        except Exception as exc:
            log.exception("MQTT command %s failed", command.name)
            return reply(command.request_id, command.name, error=f"internal error: {type(exc).__name__}: {exc}")
        return reply(command.request_id, command.name, result=result)

    def close(self, timeout: float = 1.0) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)
