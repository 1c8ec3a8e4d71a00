"""The serving layer: retrieval, filtering, ranking, cold start, caching and the recommendation API.

Nothing here imports TensorFlow or catboost; Parquet (polars) is read only when a version's serving
bundle has not been built yet (see `bundle.py`).
"""
