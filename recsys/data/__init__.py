"""Interaction data: schema, synthetic generator, importer, preprocessing."""
