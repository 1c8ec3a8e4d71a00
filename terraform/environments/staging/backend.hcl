bucket = "videorecsystem-terraform-state"
key    = "recsys/staging/terraform.tfstate"
region = "us-east-1"
