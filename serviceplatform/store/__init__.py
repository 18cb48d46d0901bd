"""Persistence: the database handle and migrations (``db``), the core's tables and the shared
``MetaData`` (``models``; integrations add theirs), and the stores built on them: routing data
(``repository``), audit trail (``audit``), replay cache (``replay``)."""
