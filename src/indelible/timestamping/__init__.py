"""Trusted time for checkpoints: RFC 3161 tokens from a Time Stamping Authority.

`client.py` asks the TSA (HTTP, RFC 3161 §3.4) and checks the reply before it is kept;
`worker.py` dates every checkpoint that has no token yet, newest first, so a TSA that is
down never blocks signing and its tokens are fetched once it answers again.
"""
