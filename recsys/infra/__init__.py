"""Infrastructure: the Terraform wrapper, deployed outputs and names, Lambda packaging, tool environments."""
