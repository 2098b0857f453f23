"""OVF 2.x import and export: envelopes (pure) and the commands around them."""

from controller.ovf.envelope import OvfDisk, OvfError, OvfSystem, build_envelope, parse_envelope

__all__ = ["OvfDisk", "OvfError", "OvfSystem", "build_envelope", "parse_envelope"]
