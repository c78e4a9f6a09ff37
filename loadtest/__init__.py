"""Locust load test of the nine-stage acceptance scenario (see ``loadtest/README.md``)."""
