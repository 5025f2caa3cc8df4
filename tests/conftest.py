import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from helpers_notify import notify_socket  # noqa: E402,F401  (fixture: systemd's end of NOTIFY_SOCKET)
