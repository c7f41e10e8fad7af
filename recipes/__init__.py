"""The recipes: scripts to read, copy and run with ``accelerate launch recipes/<name>.py``.

Installed from the wheel they are the package ``tlnlp.recipes``, which is what ``tlnlp train <name>`` runs; each
file stays a script that imports only ``tlnlp``.
"""
