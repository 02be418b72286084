"""The generated tables of the docs (access, alerts, cost), spliced by ``scripts/docs.py``."""
