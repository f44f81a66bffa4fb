"""A local-first e-commerce data platform: Dagster assets, a Polars lake, a DuckDB warehouse."""

import os

#: jemalloc options for Polars' allocator, appended to Polars' own (a later option wins)
ALLOCATOR_OPTIONS = "dirty_decay_ms:5000,muzzy_decay_ms:0"

# Polars returns memory it freed to the kernel after half a second; ingest and staging free
# and allocate buffers of hundreds of MiB every second or two, and each came back as fresh
# pages to fault in and zero: a 10M-item ingest spent 111 of its 391 CPU seconds in the
# kernel. Kept five seconds, freed buffers are reused: that ingest took 185 s, not 230 s,
# for 0.16 GiB more peak RSS (muzzy 0: a page past its five seconds is returned at once,
# not left counted in the RSS). jemalloc reads this when Polars loads, so it is set before
# any module of the package imports Polars, and inherited by the processes a run starts;
# a value already in the environment is kept.
os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR_OPTIONS)
