"""Benchmarks of the ledger against raw PostgreSQL, measured in the same run (issue 2).

- :mod:`.append` append throughput (group commit and `append_batch`) and single-append latency;
- :mod:`.verify` full verification throughput and inclusion-proof latency;
- :mod:`.baseline` the raw PostgreSQL yardsticks (binary COPY in/out, one-row INSERT, PK SELECT);
- :mod:`.workload` realistic discrepancy entries;
- :mod:`.common` percentiles, rates and the report.

Run through `indelible bench append|verify`; see benchmarks/README.md for the figures.
"""
