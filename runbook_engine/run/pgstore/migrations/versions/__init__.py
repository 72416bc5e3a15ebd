"""The schema revisions of the PostgreSQL store, one module each (``NNNN_what.py``)."""
