bucket = "videorecsystem-terraform-state"
key    = "recsys/dev/terraform.tfstate"
region = "us-east-1"
