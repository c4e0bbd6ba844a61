terraform {
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }

  # State holds no secret (secrets are written by their rotation function, not here),
  # but it names every resource: keep it in an encrypted, versioned bucket of the
  # account, one key per environment (`terraform init -backend-config=<env>.s3.tfbackend`).
  backend "s3" {}
}
