"""Model evaluation for serving without the training libraries."""
