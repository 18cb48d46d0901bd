"""Persistence: the database handle and migrations (``db``), the tables (``models``), and the
stores built on them: routing data (``repository``), audit trail (``audit``), replay cache
(``replay``)."""
