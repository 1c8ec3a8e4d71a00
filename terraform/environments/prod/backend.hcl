bucket = "videorecsystem-terraform-state"
key    = "recsys/prod/terraform.tfstate"
region = "us-east-1"
