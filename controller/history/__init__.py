"""History (the data warehouse): samples of hosts and VMs, hourly and daily roll-ups.

Only the tables are imported here: controller.store.tables imports this package to put
them on the store's metadata, so nothing here may import the store package itself.
"""

from controller.history import tables

__all__ = ["tables"]
