"""Corral's controller: sources, store, planner, scheduler, executor and loop."""
