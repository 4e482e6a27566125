"""A C2SP tlog-witness anyone can run: `indelible witness serve` (no PostgreSQL).

- :mod:`.keyfile` the witness's private key file (0600) and its verifier key;
- :mod:`.state` the latest cosigned checkpoint per log, persisted atomically under a lock;
- :mod:`.core` the add-checkpoint decision (404, 403, 400, 409, 422, or a cosignature);
- :mod:`.server` the HTTP server (standard library, keep-alive).
"""
