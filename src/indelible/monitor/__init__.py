"""Continuous verification: the verifier process, its alarms, and what they become."""
