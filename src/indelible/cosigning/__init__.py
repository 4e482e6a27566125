"""The log side of witnessing: ask each configured witness to cosign every new checkpoint.

- :mod:`.config` the INDELIBLE_WITNESSES file (`<witness verifier key> <URL prefix>` lines);
- :mod:`.client` one add-checkpoint request over HTTP;
- :mod:`.feeder` a background thread per witness: submit, learn sizes from 409s, store
  verified cosignatures, retry with backoff — never in the way of appends or checkpoints;
- :mod:`.reads` the cosigned note and a witness policy applied to what the API serves.
"""
