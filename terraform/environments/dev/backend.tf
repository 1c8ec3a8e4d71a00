# S3 state with native S3 locking (use_lockfile). bucket and region come from backend.hcl at init
# (`recsys plan|deploy` passes it; RECSYS_TF_STATE_BUCKET overrides the bucket).
terraform {
  backend "s3" {
    key          = "recsys/dev/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
