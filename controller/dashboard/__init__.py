"""The web dashboard: fleet overview, host and VM pages, plan history, operator actions.

`mount_dashboard(app)` adds the /ui pages and their static files to an API app made by
controller.api.create_app.
"""

from controller.dashboard.mount import mount_dashboard

__all__ = ["mount_dashboard"]
