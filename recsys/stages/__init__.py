"""Pipeline stages: `run(event: dict, settings: Settings) -> dict`, JSON in and out, artifacts on S3.

`recsys.stages.table` lists them; the Lambda handlers, the local pipeline runner and the training-job entry
point all run a stage through that table, which validates its input and output (`recsys.stages.contracts`).
"""
