"""Shared helpers for tests: prerequisites, tiny guests on libvirt, a running agent."""
