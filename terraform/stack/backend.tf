# S3 state with native S3 locking (use_lockfile). bucket, region and the per-environment state key come
# from environments/<env>/backend.hcl at init (`recsys plan|deploy` passes it with -reconfigure and a
# per-environment TF_DATA_DIR; RECSYS_TF_STATE_BUCKET overrides the bucket).
terraform {
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
