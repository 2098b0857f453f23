"""Lab infrastructure: the tiny guest, heartbeats, and real libvirtd hosts on one machine."""
