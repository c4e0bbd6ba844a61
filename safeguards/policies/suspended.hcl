# An identity of suspended project {project}: nothing. Its tokens keep this policy's name
# and so lose every capability at once; `projects resume` writes its own policy back.
path "secret/data/projects/{project}/suspended" { capabilities = ["deny"] }
