"""Corral's node agent: the only component that touches a host's libvirt.

It serves the contract in `agentapi` (wire models and verbs, importable without libvirt);
every module here needs libvirt.
"""

__version__ = "0.1.0"
