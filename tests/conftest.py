import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from helpers_notify import notify_socket  # noqa: E402,F401  (fixture: systemd's end of NOTIFY_SOCKET)


import pytest  # noqa: E402
from catalogs import song_catalog  # noqa: E402
from earshot.catalog import Catalog  # noqa: E402

LIVE_RATE = 48000


@pytest.fixture(scope="module")
def live_catalog(tmp_path_factory):
    """Five synthetic 60 s songs at 48 kHz in a real LMDB catalog, opened for reading: the
    live tests' (path, catalog, {track id: song})."""
    path = tmp_path_factory.mktemp("live") / "catalog"
    songs = song_catalog(path, range(300, 305), 60.0, LIVE_RATE)
    cat = Catalog.open(path, readonly=True)
    yield path, cat, songs
    cat.close()
