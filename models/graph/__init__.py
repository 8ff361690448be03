"""The supply graph: schema, dataset files, loading and validation, editing, importers.

The bottom layer: imports nothing else of ``models`` but :mod:`models.errors`."""
