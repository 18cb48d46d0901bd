"""The message log: every call and every outward message, searchable, with details and resend.

The core contributes the calls (``calls.py``, the audit table); each integration contributes
its own outward messages through ``Integration.message_sources`` (OOTS requests, the nightly
outbox). ``log.MessageLog`` merges them into one newest-first list with keyset paging.
``usage.py`` is the usage overview built from the same audit table.
"""
