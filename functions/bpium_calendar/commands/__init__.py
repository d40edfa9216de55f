"""Workstation commands (authorize, doctor, backfill, secrets): run by an operator with
`make`, never on the request path; no entry point imports them, and they are not deployed."""
