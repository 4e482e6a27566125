"""Escalation: tenant rules that act on discrepancies left lingering (DESIGN section 8).

Pure modules (no I/O): `durations` (ISO 8601 thresholds), `rules` (the rule set a tenant
keeps in its ledger), `calendar` (business time), `evaluate` (what is due, for a clock).
`engine` runs passes in the background of `indelible up`; the passes themselves are the use
case in `indelible.usecases.escalation`, and storage is `indelible.store.escalation`.
"""
