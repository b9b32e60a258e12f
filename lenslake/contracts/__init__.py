"""Contracts: the Avro schema registry (``registry/``, ``registry.py``), the event contracts derived from it
(``avro.py``, ``events.py``), the table contracts and the quarantine reason codes."""
