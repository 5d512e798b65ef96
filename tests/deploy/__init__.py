"""Deployment tests: the documented multi-process layout, started for real."""
