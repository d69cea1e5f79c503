"""Errors the core raises, importable without numpy-heavy modules so every layer can catch them."""


class Cancelled(Exception):
    """Long work stopped because the caller's cancel() said so; nothing partial is returned."""


class PartitionBudgetError(RuntimeError):
    """The partition would exceed the region budget; raised before memory runs out."""
