"""The model and the rows: loading (target), the shared batched prediction pass (inference), data
files (data), and offline resources for TextAttack (resources)."""
