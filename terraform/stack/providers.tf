provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "recsys"
      Stack       = "VideoRecSystem-${var.environment}"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
