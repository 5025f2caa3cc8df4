"""What importing earshot sets up before numpy loads."""
import os
import subprocess
import sys

PROBE = ("import earshot, numpy, os; "
         "threads = [l.split()[1] for l in open('/proc/self/status') if l.startswith('Threads:')][0]; "
         "print(os.environ['OPENBLAS_NUM_THREADS'], threads)")


def _probe(env: dict) -> list[str]:
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_numpy_starts_no_blas_threads_under_earshot():
    """earshot does no linear algebra: OpenBLAS gets one thread (no spinning workers)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert _probe(env) == ["1", "1"]


def test_an_explicit_blas_setting_is_kept():
    assert _probe(dict(os.environ, OPENBLAS_NUM_THREADS="2"))[0] == "2"
