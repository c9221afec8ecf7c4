"""Segments over time: the reference profile a model keeps, drift measures, the streaming pass
over a period, customer migration by id, and the verdict rules (``fastseg.drift`` runs them)."""
