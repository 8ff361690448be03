"""Supplier-list screening against the graph's firms and export-control lists."""
