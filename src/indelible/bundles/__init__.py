"""Evidence bundles: one zip an auditor verifies offline (format: `indelible.proofs.bundle`).

`export.py` writes a bundle from the store; `readme.py` is the text it carries for the
auditor; the use case that also records the export is `usecases/bundles.py`.
"""
