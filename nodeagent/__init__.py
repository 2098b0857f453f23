"""Corral's node agent: the only component that touches a host's libvirt."""
