"""Compare two runs of a kernel test program (e.g. native x86-64 and aarch64 under qemu).

Each program prints `value NAME NUMBER` (compared within a floating-point tolerance),
`exact NAME HEX` (must be equal: the fingerprint's peaks and hashes, since a catalog built
on one machine serves another) and `digest NAME HEX` (a checksum of a whole output array:
reported, not required, since the tolerance is what the contract promises).
Usage: compare_outputs.py REFERENCE.out OTHER.out   (exit 1 when they disagree)
Standard library only, so it runs without the project's virtual environment.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

REL_TOL = 1e-6
ABS_TOL = 1e-9


def parse(text: str) -> dict[str, tuple[str, str]]:
    """NAME -> (kind, token) for every value / exact / digest line."""
    items: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("value", "exact", "digest"):
            items[parts[1]] = (parts[0], parts[2])
    return items


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= ABS_TOL + REL_TOL * max(abs(a), abs(b))


def compare(reference: str, other: str) -> tuple[list[str], str]:
    """(problems, one-line summary) for two programs' outputs."""
    ref, oth = parse(reference), parse(other)
    problems = [f"{name}: missing" for name in ref if name not in oth]
    problems += [f"{name}: unexpected" for name in oth if name not in ref]
    n_values = identical = n_exact = digests_equal = n_digests = 0
    for name, (kind, token) in ref.items():
        if name not in oth:
            continue
        other_token = oth[name][1]
        if kind == "value":
            n_values += 1
            a, b = float(token), float(other_token)
            identical += token == other_token
            if not close(a, b):
                problems.append(f"{name}: {token} vs {other_token}")
        elif kind == "exact":
            n_exact += 1
            if token != other_token:
                problems.append(f"{name}: {token} vs {other_token} (must be identical)")
        else:
            n_digests += 1
            digests_equal += token == other_token
    parts = [f"{n_values} values within tolerance ({identical} bit-identical)"]
    if n_exact:
        parts.append(f"{n_exact} exact checksums identical")
    if n_digests:
        parts.append(f"{digests_equal} of {n_digests} array digests identical")
    summary = ", ".join(parts)
    return problems, summary


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    ref_path, other_path = Path(argv[1]), Path(argv[2])
    problems, summary = compare(ref_path.read_text(), other_path.read_text())
    label = f"{other_path.parent.name} vs {ref_path.parent.name}, {ref_path.stem}"
    if problems:
        print(f"{label}: {len(problems)} differences", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"{label}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
