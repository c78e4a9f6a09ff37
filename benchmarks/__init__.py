"""Scripts that print figures. Each runs from the repository's root as
``.venv/bin/python -m benchmarks.<name>`` (``make bench`` runs them all)."""
