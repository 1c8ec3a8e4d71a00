bucket = "videorecsystem-terraform-state"
region = "us-east-1"
