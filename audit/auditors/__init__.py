"""Built-in auditors. Each module is a plugin registered through the ``rai_audit.auditors``
entry-point group in pyproject.toml; nothing here imports them eagerly."""
