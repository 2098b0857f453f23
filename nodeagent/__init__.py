"""Corral's node agent: the only component that touches a host's libvirt.

`nodeagent.models` (the wire models) imports without libvirt; everything else needs it.
"""

__version__ = "0.1.0"
