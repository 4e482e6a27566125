"""Use cases: every change a caller can ask of the ledger, defined once.

HTTP routes, the NATS consumer, the CLI (and the escalation engine, outbox dispatcher, report
worker and console to come) only translate their input into a principal and a domain
command, call one of these, and translate the result or the refusal back. Each use case
decides under the log-head lock through the appender, so the rule it enforces exists once.

    discrepancies.report            open a discrepancy, or record a re-report (amendment)
    discrepancies.close_as_matched  the engine matched it: auto-close (ingestion)
    discrepancies.move              a lifecycle transition
    discrepancies.assign / comment / change_severity / attach_evidence
"""
