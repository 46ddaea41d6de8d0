"""Fixed logarithmic bins for durations, and nearest-rank percentiles (see docs/metrics.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

R = 1.1
_LOG_R = math.log(R)
NBINS = 400  # R**399 s is far beyond any period's length


def bin_of(seconds: float) -> int:
    """Bin 0 holds [0, 1) s; bin k >= 1 holds [R**(k-1), R**k) s."""
    if seconds < 1:
        return 0
    k = math.floor(math.log(seconds) / _LOG_R) + 1
    # Guard the float edge: the value must lie in [R**(k-1), R**k).
    if seconds < R ** (k - 1):
        k -= 1
    elif seconds >= R**k:
        k += 1
    return min(k, NBINS - 1)


def representative(k: int) -> float:
    """What a percentile falling in bin k is reported as: 0, or the bin's geometric middle."""
    return 0.0 if k == 0 else R ** (k - 0.5)


def rank(q: float, n: int) -> int:
    """The 1-based nearest rank of quantile q among n samples."""
    return max(1, math.ceil(q * n - 1e-9))


def exact_percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[rank(q, len(ordered)) - 1]


def percentile_from_bins(counts: Iterable[tuple[int, int]], q: float) -> float | None:
    """The nearest-rank quantile from (bin, count) pairs, as the bin's representative."""
    pairs = sorted((k, c) for k, c in counts if c)
    n = sum(c for _, c in pairs)
    if n <= 0:
        return None
    want, seen = rank(q, n), 0
    for k, c in pairs:
        seen += c
        if seen >= want:
            return representative(k)
    return representative(pairs[-1][0])
