"""The recsys pipeline: the ASL interpreter, the local and remote runners, SageMaker training."""
