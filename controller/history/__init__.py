"""History (the data warehouse): samples of hosts and VMs, hourly and daily roll-ups.

Importing the package registers the history_* tables on the store's metadata (see
tables.py); the store itself never imports history.
"""

from controller.history import tables

__all__ = ["tables"]
