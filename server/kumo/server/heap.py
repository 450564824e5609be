"""Short garbage-collector pauses for the API server and the gateway (and `kumo up`).

CPython's full (generation 2) collection walks every object the collector tracks, and a
started server holds a few hundred thousand from start-up alone: modules, protobuf
descriptors, SQLAlchemy mappers, gRPC's tables. Each full collection paused the API
server for 60-70 ms, and that pause was the p99 of POST /servers under
tests/bench/bench_nova.py. `freeze_startup_heap` moves everything alive once the process
has started into the collector's permanent generation, which later collections skip;
the collector still runs over what the process allocates afterwards.

The price: a frozen object that later becomes part of a reference cycle is never
freed. Start-up objects live as long as the process, so that is accepted.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collects once, then freezes every object still alive (`gc.freeze`). Call once the
    process has started, before it serves. Idempotent: a later call freezes what was
    made since. Raises nothing."""
    gc.collect()
    gc.freeze()
