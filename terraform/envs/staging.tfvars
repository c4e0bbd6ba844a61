# terraform init -backend-config=staging.s3.tfbackend
# terraform plan -var-file=staging.tfvars -var-file=projects.staging.tfvars.json
# With a control plane, the RDS CA bundle of the primary region, from AWS's trust store:
# export TF_VAR_database_ca_bundle="$(curl -fsS https://truststore.pki.rds.amazonaws.com/us-east-1/us-east-1-bundle.pem)"
environment        = "staging"
primary_region     = "us-east-1"
secondary_region   = "eu-central-1"
bucket_prefix      = "example-hmlops-stag"
key_administrators = ["arn:aws:iam::111122223333:role/hipaa-mlops-staging-terraform"]
rotation_lambda_arns = {
  "us-east-1"    = "arn:aws:lambda:us-east-1:111122223333:function:hipaa-mlops-rotate"
  "eu-central-1" = "arn:aws:lambda:eu-central-1:111122223333:function:hipaa-mlops-rotate"
}
