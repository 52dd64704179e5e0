"""A sweep's output: the table, streaming writers, aggregates across runs, charts and the
HParams export."""
