"""Policy tests over the Terraform modules, parsed as HCL (no provider can be downloaded
here, so `terraform validate` and `plan` cannot run: these read what the modules declare).
Each test names the paragraph of 45 CFR 164.312 it serves.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import hypothesis
import pytest
import yaml
from hypothesis import strategies as st

from safeguards import objectstore
from safeguards.openbao import job_settings
from safeguards.settings import Settings, load_settings
from services import container, topology
from services.openbao import launcher
from services.postgres import external

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
# Buckets that are not under SSE-KMS, each with the reason: S3 delivers server access logs
# only into a bucket under SSE-S3. They hold requesters, operations and object keys, no
# object data, and the platform's object keys never carry identifiers.
SSE_S3_ONLY = {("data_lake", "access_logs")}
CONTROL_PLANE = TERRAFORM / "modules" / "control_plane"
JOBS = TERRAFORM / "modules" / "jobs"
# Task definitions that mount no data directory: the database setup needs none.
NO_DATA_DIRECTORY = {("control_plane", "database_setup")}


def _clean(value: Any) -> Any:
    """python-hcl2's output with string literals unquoted and its block markers dropped."""
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@functools.cache
def _module(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every block of a module's .tf files: kind ("resource", "data", "variable", ...) =>
    "type.name" (or name) => body."""
    blocks: dict[str, dict[str, dict[str, Any]]] = {}
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as f:
            parsed = _clean(hcl2.load(f))
        for kind, entries in parsed.items():
            for entry in entries:
                for first, body in entry.items():
                    if kind in ("resource", "data"):
                        for name, inner in body.items():
                            blocks.setdefault(kind, {})[f"{first}.{name}"] = inner
                    else:
                        blocks.setdefault(kind, {})[first] = body
    return blocks


def _resources(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(module, name, body) of every resource of `kind` in every module."""
    found = []
    for path in MODULES:
        for address, body in _module(path).get("resource", {}).items():
            rtype, name = address.split(".", 1)
            if rtype == kind:
                found.append((path.name, name, body))
    return found


def _attached(module: str, kind: str, bucket: str) -> list[dict[str, Any]]:
    """The `kind` resources of `module` that configure bucket resource `bucket` (by its
    `bucket` argument, or one each by `for_each` over it or over a local naming it)."""
    resource = f"aws_s3_bucket.{bucket}"
    local_values = _module(TERRAFORM / "modules" / module).get("locals", {})

    def configures(body: dict[str, Any]) -> bool:
        each = str(body.get("for_each", ""))
        if each.startswith("${local.") and each.endswith("}"):
            each = str(local_values[each.removeprefix("${local.").removesuffix("}")])
        return resource in str(body.get("bucket", "")) or resource in each

    return [body for m, _, body in _resources(kind) if m == module and configures(body)]


def _statements(module: str, document: str) -> list[dict[str, Any]]:
    return list(_module(TERRAFORM / "modules" / module)["data"][document]["statement"])


def test_terraform_fmt_leaves_every_file_as_it_is() -> None:
    terraform = shutil.which("terraform")
    assert terraform is not None, "terraform is not installed"
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"not formatted: {result.stdout}"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_every_module_has_its_files_and_every_variable_is_typed_and_described(
    module: Path,
) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (module / name).is_file(), name
    variables = _module(module)["variable"]
    assert variables
    for name, body in variables.items():
        assert body.get("type") and body.get("description"), name


def test_every_bucket_is_sse_kms_under_a_customer_managed_key() -> None:
    """164.312(a)(2)(iv): encryption of ePHI at rest, under keys the project controls."""
    buckets = _resources("aws_s3_bucket")
    assert buckets
    for module, name, _ in buckets:
        configs = _attached(module, "aws_s3_bucket_server_side_encryption_configuration", name)
        assert len(configs) == 1, (module, name)
        rule = configs[0]["rule"][0]
        default = rule["apply_server_side_encryption_by_default"][0]
        if (module, name) in SSE_S3_ONLY:
            assert default["sse_algorithm"] == "AES256"
            continue
        assert default["sse_algorithm"] == "aws:kms", (module, name)
        assert str(default["kms_master_key_id"]).startswith(
            ("${var.kms_keys", "${var.kms_key_arn")
        ), (
            module,
            name,
        )
        assert rule["bucket_key_enabled"] is True, (module, name)


def test_every_bucket_refuses_plaintext_transport_and_tls_below_12() -> None:
    """164.312(e)(1): transmission security."""
    for module, name, _ in _resources("aws_s3_bucket"):
        document = f"aws_iam_policy_document.{name}"
        denied = {
            (c["variable"], tuple(c["values"]))
            for s in _statements(module, document)
            if s.get("effect") == "Deny" and s["actions"] in (["s3:*"],)
            for c in s.get("condition", [])
        }
        assert ("aws:SecureTransport", ("false",)) in denied, (module, name)
        if (module, name) not in SSE_S3_ONLY:
            assert ("s3:TlsVersion", ("1.2",)) in denied, (module, name)


def test_every_kms_bucket_refuses_a_write_under_another_key_or_another_encryption() -> None:
    """164.312(a)(1) and (c)(1): no project writes a zone under a key it should not hold,
    and no object escapes the bucket's key; every zone and the evidence are such buckets."""
    statements = _statements("bucket", "aws_iam_policy_document.this")
    conditions = {
        c["variable"]: (c["test"], c["values"])
        for s in statements
        if s["effect"] == "Deny" and s["actions"] == ["s3:PutObject"]
        for c in s["condition"]
    }
    assert conditions["s3:x-amz-server-side-encryption"] == (
        "StringNotEqualsIfExists",
        ["aws:kms"],
    )
    test, values = conditions["s3:x-amz-server-side-encryption-aws-kms-key-id"]
    assert test == "StringNotEqualsIfExists"
    assert values == ["${var.kms_key_arn}"]
    assert conditions["s3:x-amz-server-side-encryption-customer-algorithm"][0] == "Null"
    zone = _module(TERRAFORM / "modules" / "data_lake")["module"]["zone"]
    assert (zone["source"], zone["kms_key_arn"]) == ("../bucket", "${var.kms_keys[each.value]}")
    evidence = _module(TERRAFORM / "modules" / "compliance")["module"]["evidence"]
    assert (evidence["source"], evidence["kms_key_arn"]) == ("../bucket", "${var.kms_key_arn}")
    # Every bucket of the modules is either made by module bucket or named an exception.
    assert {(m, n) for m, n, _ in _resources("aws_s3_bucket")} == {("bucket", "this"), *SSE_S3_ONLY}


def test_every_bucket_blocks_public_access_is_versioned_and_owner_enforced() -> None:
    """164.312(a)(1) access control and (c)(1) integrity: nothing public, nothing lost to
    an overwrite."""
    for module, name, _ in _resources("aws_s3_bucket"):
        (block,) = _attached(module, "aws_s3_bucket_public_access_block", name)
        for flag in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        ):
            assert block[flag] is True, (module, name, flag)
        (versioning,) = _attached(module, "aws_s3_bucket_versioning", name)
        assert versioning["versioning_configuration"][0]["status"] == "Enabled"
        (ownership,) = _attached(module, "aws_s3_bucket_ownership_controls", name)
        assert ownership["rule"][0]["object_ownership"] == "BucketOwnerEnforced"


def test_every_zone_is_access_logged_and_the_audit_zone_and_evidence_locked_six_years() -> None:
    """164.312(b): audit controls; the audit zone and the evidence in compliance mode for
    six years."""
    bucket = _module(TERRAFORM / "modules" / "bucket")
    (logging,) = _attached("bucket", "aws_s3_bucket_logging", "this")
    assert (logging["count"], logging["target_bucket"]) == (
        "${var.log_bucket == null ? 0 : 1}",
        "${var.log_bucket}",
    )
    lake = _module(TERRAFORM / "modules" / "data_lake")
    zone = lake["module"]["zone"]
    assert zone["log_bucket"] == "${aws_s3_bucket.access_logs.id}"
    assert zone["object_lock_days"] == '${each.key == "audit" ? var.audit_retention_days : null}'
    (lock,) = _attached("bucket", "aws_s3_bucket_object_lock_configuration", "this")
    retention = lock["rule"][0]["default_retention"][0]
    assert (retention["mode"], retention["days"]) == ("COMPLIANCE", "${var.object_lock_days}")
    for module, variable in ((bucket, "object_lock_days"), (lake, "audit_retention_days")):
        (validation,) = module["variable"][variable]["validation"]
        assert ">= 2192" in validation["condition"]
    assert lake["variable"]["audit_retention_days"]["default"] >= 2192
    evidence = _module(TERRAFORM / "modules" / "compliance")
    assert evidence["module"]["evidence"]["object_lock_days"] == "${var.retention_days}"
    assert evidence["variable"]["retention_days"]["default"] >= 2192


def test_keys_rotate_are_never_multi_region_and_only_named_roles_use_them() -> None:
    """164.312(a)(2)(iv) and (a)(1): a key per project, kind and region, that no other
    region and no unnamed principal can use."""
    ((_, _, key),) = _resources("aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert key["multi_region"] is False
    statements = _statements("kms", "aws_iam_policy_document.key")
    principals = [p for s in statements for p in s["principals"]]
    assert all(p["type"] == "AWS" for p in principals)
    assert {p["identifiers"] for p in principals} == {"${var.administrators}", "${var.users}"}
    for statement in statements:
        assert statement["effect"] == "Allow"
        assert "kms:*" not in statement["actions"]
    (administration,) = (s for s in statements if s["sid"] == "Administration")
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"} & set(
        administration["actions"]
    )


def test_keys_and_buckets_exist_only_in_the_projects_regions_and_replicate_only_there() -> None:
    """164.312(a)(1): data residency, as the platform enforces it with its lakes."""
    for module, name, body in [*_resources("aws_kms_key"), *_resources("aws_s3_bucket")]:
        if (module, name) in SSE_S3_ONLY:
            continue
        conditions = [p["condition"] for p in body["lifecycle"][0]["precondition"]]
        assert "${contains(var.allowed_regions, var.region)}" in conditions, (module, name)
        assert "${data.aws_region.current.name == var.region}" in conditions, (module, name)
    for instance in (
        _module(TERRAFORM / "modules" / "data_lake")["module"]["zone"],
        _module(TERRAFORM / "modules" / "compliance")["module"]["evidence"],
    ):
        assert (instance["region"], instance["allowed_regions"]) == (
            "${var.region}",
            "${var.allowed_regions}",
        )
    (replication,) = _resources("aws_s3_bucket_replication_configuration")
    conditions = [p["condition"] for p in replication[2]["lifecycle"][0]["precondition"]]
    assert any("keys(var.replicas)" in c and "var.allowed_regions" in c for c in conditions)
    rule = replication[2]["dynamic"][0]["rule"]["content"][0]
    encryption = rule["destination"][0]["encryption_configuration"][0]
    # Each replica under the destination region's own key: no key crosses a region.
    assert encryption["replica_kms_key_id"] == "${rule.value.kms_keys[each.key]}"


def test_workloads_have_no_route_out_and_nothing_admits_the_internet() -> None:
    """164.312(e)(1) and (a)(1): private subnets only, AWS services through endpoints."""
    for kind in ("aws_internet_gateway", "aws_nat_gateway", "aws_egress_only_internet_gateway"):
        assert not _resources(kind), kind
    for module, name, body in _resources("aws_route"):
        assert body.get("destination_cidr_block") != "0.0.0.0/0", (module, name)
    for kind in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
        for module, name, body in _resources(kind):
            assert body.get("cidr_ipv4") not in ("0.0.0.0/0",), (module, name)
            assert body.get("cidr_ipv6") not in ("::/0",), (module, name)
    for module, name, body in _resources("aws_security_group"):
        assert "ingress" not in body and "egress" not in body, (module, name)
    ((_, _, default),) = _resources("aws_default_security_group")
    assert "ingress" not in default and "egress" not in default
    for _, _, subnet in _resources("aws_subnet"):
        assert subnet["map_public_ip_on_launch"] is False
    network = _module(TERRAFORM / "modules" / "network")
    wanted = {"sagemaker.api", "sagemaker.runtime", "ecr.api", "ecr.dkr", "kms"}
    wanted |= {"secretsmanager", "logs", "sts", "ecs", "ecs-agent", "ecs-telemetry"}
    assert set(network["variable"]["interface_endpoints"]["default"]) == wanted
    endpoint = network["resource"]["aws_vpc_endpoint.interface"]
    assert endpoint["private_dns_enabled"] is True
    assert network["resource"]["aws_vpc_endpoint.s3"]["vpc_endpoint_type"] == "Gateway"


def test_every_log_group_is_encrypted_under_a_customer_key_and_kept_six_years() -> None:
    """164.312(b): audit controls, kept as long as 164.316(b)(2) keeps documentation."""
    groups = _resources("aws_cloudwatch_log_group")
    assert groups
    for module, name, body in groups:
        assert str(body["kms_key_id"]).startswith("${var."), (module, name)
        variable = str(body["retention_in_days"]).removeprefix("${var.").removesuffix("}")
        declared = _module(TERRAFORM / "modules" / module)["variable"][variable]
        allowed = declared["validation"][0]["condition"]
        assert "2192" in allowed and declared["default"] >= 2192, (module, name)
    ((_, _, flow),) = _resources("aws_flow_log")
    assert flow["traffic_type"] == "ALL"


def test_images_are_immutable_scanned_and_encrypted_under_a_customer_key() -> None:
    """164.312(c)(1): the image that passed the tests is the image that runs."""
    ((_, _, repository),) = _resources("aws_ecr_repository")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert repository["image_scanning_configuration"][0]["scan_on_push"] is True
    encryption = repository["encryption_configuration"][0]
    assert encryption["encryption_type"] == "KMS"
    assert encryption["kms_key"] == "${var.kms_key_arn}"


def test_secrets_are_under_the_projects_key_rotated_and_never_in_terraform_state() -> None:
    """164.312(a)(2)(iv) and (d): credentials encrypted under the project's key, rotated;
    the one exception, OpenBao's seal key, under the unseal key and not rotated (its
    checkov skip says why)."""
    secrets = {(m, n): body for m, n, body in _resources("aws_secretsmanager_secret")}
    assert set(secrets) == {("secrets", "this"), ("control_plane", "unseal")}
    assert secrets["secrets", "this"]["kms_key_id"] == "${var.kms_key_arn}"
    assert secrets["control_plane", "unseal"]["kms_key_id"] == "${var.unseal_key_arn}"
    assert not _resources("aws_secretsmanager_secret_version")
    ((module, _, rotation),) = _resources("aws_secretsmanager_secret_rotation")
    assert module == "secrets"
    assert rotation["rotation_rules"][0]["automatically_after_days"] == "${var.rotation_days}"
    declared = _module(TERRAFORM / "modules" / "secrets")["variable"]["rotation_days"]
    assert "var.rotation_days <= 90" in declared["validation"][0]["condition"]
    policies = {(m, n): body for m, n, body in _resources("aws_secretsmanager_secret_policy")}
    assert set(policies) == {("secrets", "this"), ("control_plane", "unseal")}
    for policy in policies.values():
        assert policy["block_public_policy"] is True
    unseal = policies["control_plane", "unseal"]
    assert unseal["secret_arn"] == "${aws_secretsmanager_secret.unseal.arn}"
    assert unseal["policy"] == "${data.aws_iam_policy_document.unseal.json}"
    deny = [
        s
        for s in _statements("control_plane", "aws_iam_policy_document.unseal")
        if s["effect"] == "Deny"
    ]
    assert any(
        c["variable"] == "aws:SecureTransport" and c["values"] == ["false"]
        for s in deny
        for c in s["condition"]
    )


def test_every_sagemaker_model_is_isolated_in_the_vpc_and_runs_an_image_by_digest() -> None:
    """164.312(a)(1) and (e)(1): the model reaches nothing; the image is the tested one."""
    models = _resources("aws_sagemaker_model")
    assert models
    for module, name, model in models:
        assert model["enable_network_isolation"] is True, (module, name)
        vpc = model["vpc_config"][0]
        assert vpc["subnets"] == "${var.subnet_ids}" and vpc["security_group_ids"]
        assert model["primary_container"][0]["image"] == "${var.image}"
        image = _module(TERRAFORM / "modules" / module)["variable"]["image"]
        assert "@sha256:[0-9a-f]{64}$" in image["validation"][0]["condition"]


def test_every_endpoint_configuration_has_the_projects_key_and_capture_is_opt_in() -> None:
    """164.312(a)(2)(iv): the instances' volumes, and any capture, under the project's key."""
    configurations = _resources("aws_sagemaker_endpoint_configuration")
    assert configurations
    for module, name, config in configurations:
        assert config["kms_key_arn"] == "${var.kms_key_arn}", (module, name)
        for dynamic in config.get("dynamic", []):
            capture = dynamic["data_capture_config"]
            assert capture["for_each"].startswith("${var.capture_destination == null ? []")
            assert capture["content"][0]["kms_key_id"] == "${var.kms_key_arn}"
        assert "data_capture_config" not in config, (module, name)
    endpoint = _module(TERRAFORM / "modules" / "endpoint")
    assert endpoint["variable"]["capture_destination"]["default"] is None


def test_endpoints_autoscale_and_production_runs_at_least_two_instances() -> None:
    """164.308(a)(7) availability, as far as the technical safeguards reach it."""
    ((_, _, policy),) = _resources("aws_appautoscaling_policy")
    tracking = policy["target_tracking_scaling_policy_configuration"][0]
    metric = tracking["predefined_metric_specification"][0]["predefined_metric_type"]
    assert metric == "SageMakerVariantInvocationsPerInstance"
    ((_, _, model),) = _resources("aws_sagemaker_model")
    conditions = [p["condition"] for p in model["lifecycle"][0]["precondition"]]
    assert '${var.environment != "production" || var.min_instances >= 2}' in conditions


def test_the_clouds_alarms_are_the_stacks_alert_rules() -> None:
    """164.312(b): the same alerts in the cloud as on the stack, with the same thresholds."""
    rules = yaml.safe_load((TERRAFORM.parent / "monitoring" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    module = _module(TERRAFORM / "modules" / "observability")
    alarms = {
        body["alarm_name"].removeprefix("${var.project}-"): body
        for address, body in module["resource"].items()
        if address.startswith("aws_cloudwatch_metric_alarm.")
    }
    assert set(alarms) == {"ServingErrorRate", "ServingLatencyHigh"}
    for name, alarm in alarms.items():
        rule = alerts[name]
        threshold = float(re.search(r">\s*([0-9.]+)\s*$", rule["expr"]).group(1))  # type: ignore[union-attr]
        variable = {"ServingErrorRate": "error_rate_threshold"}.get(name, "latency_p99_seconds")
        assert module["variable"][variable]["default"] == threshold, name
        # One-minute periods, as many as the rule's `for` has minutes.
        assert alarm["evaluation_periods"] == int(rule["for"].removesuffix("m")), name
    namespace = module["resource"]["aws_prometheus_rule_group_namespace.alerts"]
    assert namespace["data"] == "${var.alert_rules}"


def test_a_projects_cloud_roles_reach_exactly_the_platforms_zones_and_keys() -> None:
    """164.312(a)(1): the same least privilege in the cloud as on the stack; only the data
    steward reaches raw PHI, the endpoint reads models and nothing else."""
    project = _module(TERRAFORM / "modules" / "project")
    access = project["locals"]["zone_access"]
    assert access == {role: dict(zones) for role, zones in objectstore.ROLES.items()}
    users = project["locals"]["key_users"]
    assert users["phi"] == ["${aws_iam_role.ingest.arn}"]
    assert "${aws_iam_role.serving.arn}" not in users["proj"] + users["phi"]
    assert project["locals"]["role_keys"]["serving"] == ["models"]


def test_each_projects_instances_follow_its_regions_and_raw_phi_never_leaves_its_region() -> None:
    """164.312(a)(1): residency in the environments; replicas only into a project's regions."""
    envs = _module(TERRAFORM / "envs")
    instances = {k: v for k, v in envs["module"].items() if k.startswith("project_")}
    assert set(instances) == {"project_primary", "project_secondary"}
    for instance in instances.values():
        assert instance["allowed_regions"] == "${each.value.regions}"
        assert instance["source"] == "../modules/project"
    replicas = instances["project_primary"]["replicas"]
    assert replicas.startswith("${contains(each.value.regions, var.secondary_region) ?")
    assert "raw-phi" not in envs["locals"]["replicated"]
    conditions = [v["condition"] for v in envs["variable"]["projects"]["validation"]]
    assert any("contains(project.regions, region)" in c for c in conditions)
    assert any(
        "contains([var.primary_region, var.secondary_region], region)" in c for c in conditions
    )


def test_only_this_accounts_log_groups_trails_and_config_may_use_a_key_as_a_service() -> None:
    """164.312(a)(2)(iv): a service uses a key only for this account's logs, trails,
    configuration snapshots and the ephemeral storage of one named ECS cluster, and only on
    a key that asks for it."""
    key = _module(TERRAFORM / "modules" / "kms")["data"]["aws_iam_policy_document.key"]
    statements: dict[str, list[dict[str, Any]]] = {}
    for dynamic in key["dynamic"]:
        statement = dynamic["statement"]
        statements.setdefault(statement["for_each"], []).extend(statement["content"])
    fargate_cluster = "${var.fargate_cluster == null ? [] : [var.fargate_cluster]}"
    writers = "${length(var.secret_writers) > 0 ? [1] : []}"
    assert set(statements) == {
        "${length(var.service_principals) > 0 ? [1] : []}",
        "${var.cloudwatch_logs ? [1] : []}",
        "${var.evidence ? [1] : []}",
        fargate_cluster,
        writers,
    }
    # A secret's writer puts a value through Secrets Manager and can never decrypt it.
    (write,) = statements[writers]
    assert write["actions"] == ["kms:GenerateDataKey"]
    assert write["principals"][0]["identifiers"] == "${var.secret_writers}"
    (via,) = write["condition"]
    assert (via["variable"], via["values"]) == (
        "kms:ViaService",
        ["secretsmanager.${var.region}.amazonaws.com"],
    )
    (grants,) = statements["${length(var.service_principals) > 0 ? [1] : []}"]
    assert grants["principals"][0]["identifiers"] == "${var.users}"
    assert {c["variable"] for c in grants["condition"]} == {
        "kms:GrantIsForAWSResource",
        "kms:ViaService",
    }
    # Fargate: data keys without plaintext and decrypt-only grants, for this account's one
    # cluster.
    data_keys, fargate_grants = statements[fargate_cluster]
    assert data_keys["actions"] == ["kms:GenerateDataKeyWithoutPlaintext"]
    assert fargate_grants["actions"] == ["kms:CreateGrant"]
    for statement in (data_keys, fargate_grants):
        assert statement["principals"][0]["identifiers"] == ["fargate.amazonaws.com"]
        conditions = {c["variable"]: c["values"] for c in statement["condition"]}
        assert conditions["kms:EncryptionContext:aws:ecs:clusterName"] == ["${statement.value}"]
        account = conditions["kms:EncryptionContext:aws:ecs:clusterAccount"]
        assert account == ["${data.aws_caller_identity.current.account_id}"]
    operations = {c["variable"]: c["values"] for c in fargate_grants["condition"]}
    assert operations["kms:GrantOperations"] == ["Decrypt"]
    (logs,) = statements["${var.cloudwatch_logs ? [1] : []}"]
    assert logs["principals"][0]["identifiers"] == ["logs.${var.region}.amazonaws.com"]
    (condition,) = logs["condition"]
    assert condition["variable"] == "kms:EncryptionContext:aws:logs:arn"
    assert ":${data.aws_caller_identity.current.account_id}:" in condition["values"][0]
    trail, config = statements["${var.evidence ? [1] : []}"]
    assert trail["principals"][0]["identifiers"] == ["cloudtrail.amazonaws.com"]
    (condition,) = trail["condition"]
    assert condition["variable"] == "kms:EncryptionContext:aws:cloudtrail:arn"
    assert ":${data.aws_caller_identity.current.account_id}:trail/" in condition["values"][0]
    assert "kms:Decrypt" not in trail["actions"]
    (role,) = config["principals"][0]["identifiers"]
    assert role.endswith("/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig")
    assert ":${data.aws_caller_identity.current.account_id}:" in role


# The IAM service prefix of each Terraform resource type, by the longest prefix of its name.
SERVICES = {
    "aws_appautoscaling_": "application-autoscaling",
    "aws_cloudtrail": "cloudtrail",
    "aws_cloudwatch_event_": "events",
    "aws_cloudwatch_log_": "logs",
    "aws_cloudwatch_metric_alarm": "cloudwatch",
    "aws_config_": "config",
    "aws_db_": "rds",
    "aws_default_security_group": "ec2",
    "aws_ecr_": "ecr",
    "aws_ecs_": "ecs",
    "aws_efs_": "elasticfilesystem",
    "aws_flow_log": "ec2",
    "aws_glue_": "glue",
    "aws_iam_": "iam",
    "aws_kms_": "kms",
    "aws_lakeformation_": "lakeformation",
    "aws_lb": "elasticloadbalancing",
    "aws_organizations_": "organizations",
    "aws_prometheus_": "aps",
    "aws_route_table": "ec2",
    "aws_s3_": "s3",
    "aws_sagemaker_": "sagemaker",
    "aws_secretsmanager_": "secretsmanager",
    "aws_security_group": "ec2",
    "aws_sns_": "sns",
    "aws_subnet": "ec2",
    "aws_vpc": "ec2",
}
COMPLIANCE = TERRAFORM / "modules" / "compliance"


def _service(resource_type: str) -> str | None:
    matches = [p for p in SERVICES if resource_type.startswith(p)]
    return SERVICES[max(matches, key=len)] if matches else None


def test_only_hipaa_eligible_services_are_used_and_the_scp_allows_no_other() -> None:
    """The seed checkpoint "BAA-eligible services only", against a kept list with its
    source and date; a service not on it is created only behind an opt-in that is off."""
    kept = json.loads((COMPLIANCE / "eligible_services.json").read_text())
    assert kept["source"].startswith("https://aws.amazon.com/compliance/")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", kept["as_of"])
    allowed = set(kept["eligible"]) | set(kept["control_plane"])
    used = {
        (module, address.split(".")[0]): body
        for path in [*MODULES, TERRAFORM / "envs"]
        for module in [path.name]
        for address, body in _module(path).get("resource", {}).items()
    }
    for (module, rtype), body in used.items():
        service = _service(rtype)
        assert service is not None, f"{rtype}: add its service to SERVICES and the kept list"
        if service in allowed:
            continue
        assert service in kept["not_listed"], (module, rtype)
        flag = str(body.get("count", "")).removeprefix("${var.").split(" ")[0]
        assert body.get("count") == f"${{var.{flag} ? 1 : 0}}", (module, rtype)
        assert _module(TERRAFORM / "modules" / module)["variable"][flag]["default"] is False
    scp = _statements("compliance", "aws_iam_policy_document.scp")
    (services,) = (s for s in scp if s["sid"] == "OnlyHipaaEligibleServices")
    assert services["effect"] == "Deny" and "actions" not in services
    assert "keys(local.services.eligible)" in services["not_actions"]
    assert "keys(local.services.control_plane)" in services["not_actions"]
    assert "not_listed" not in str(scp)
    (regions,) = (s for s in scp if s["sid"] == "OnlyThePlatformsRegions")
    (condition,) = regions["condition"]
    assert (condition["test"], condition["variable"], condition["values"]) == (
        "StringNotEquals",
        "aws:RequestedRegion",
        "${var.allowed_regions}",
    )
    assert "eligible" not in regions["not_actions"]
    envs = _module(TERRAFORM / "envs")["module"]
    for name in ("compliance", "compliance_secondary"):
        assert envs[name]["allowed_regions"] == ["${var.primary_region}", "${var.secondary_region}"]


def test_config_records_everything_and_evaluates_awss_hipaa_pack_at_its_pinned_checksum() -> None:
    """164.312(b) and (c)(1): the account's configuration is recorded and evaluated by the
    HIPAA Security pack, and only by AWS's template at the pinned commit."""
    pin = json.loads((COMPLIANCE / "conformance_pack.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", pin["commit"])
    assert re.fullmatch(r"[0-9a-f]{64}", pin["sha256"])
    assert pin["path"].endswith("Operational-Best-Practices-for-HIPAA-Security.yaml")
    module = _module(COMPLIANCE)
    assert (
        str(module["locals"]["pack"])
        == '${jsondecode(file("${path.module}/conformance_pack.json"))}'
    )
    pack = module["resource"]["aws_config_conformance_pack.hipaa"]
    assert pack["template_body"] == "${file(var.conformance_pack_path)}"
    (check,) = pack["lifecycle"][0]["precondition"]
    assert check["condition"] == "${filesha256(var.conformance_pack_path) == local.pack.sha256}"
    assert pack["depends_on"] == ["${aws_config_configuration_recorder_status.this}"]
    recorder = module["resource"]["aws_config_configuration_recorder.this"]
    assert recorder["recording_group"][0]["all_supported"] is True
    status = module["resource"]["aws_config_configuration_recorder_status.this"]
    assert status["is_enabled"] is True
    channel = module["resource"]["aws_config_delivery_channel.this"]
    assert channel["s3_kms_key_arn"] == "${var.kms_key_arn}"
    envs = _module(TERRAFORM / "envs")
    # Global resources are recorded, and the trail created, in exactly one region.
    instances = [envs["module"][n] for n in ("compliance", "compliance_secondary")]
    assert [i.get("record_global_resources", True) for i in instances] == [True, False]
    assert [i.get("create_trail", True) for i in instances] == [True, False]
    makefile = (TERRAFORM.parent / "Makefile").read_text()
    assert "PACK_PIN := terraform/modules/compliance/conformance_pack.json" in makefile
    assert "sha256sum -c" in makefile
    assert str(envs["locals"]["conformance_pack"]).endswith(
        "/../.conformance-pack/Operational-Best-Practices-for-HIPAA-Security.yaml"
    )


def test_the_trail_covers_every_region_validates_its_files_and_records_object_access() -> None:
    """164.312(b) audit controls and (c)(1) integrity: every region, digest files, the
    platform's object reads and writes, under a customer key, kept six years."""
    module = _module(COMPLIANCE)
    trail = module["resource"]["aws_cloudtrail.this"]
    assert trail["is_multi_region_trail"] is True
    assert trail["enable_log_file_validation"] is True
    assert trail["include_global_service_events"] is True
    assert trail["kms_key_id"] == "${var.kms_key_arn}"
    selectors = {
        f["field"]: f.get("equals") or f.get("starts_with")
        for s in trail["advanced_event_selector"]
        for f in s["field_selector"]
    }
    assert selectors["resources.type"] == ["AWS::S3::Object"]
    assert selectors["resources.ARN"] == [
        "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_prefix}"
    ]
    assert {
        tuple(f["equals"])
        for s in trail["advanced_event_selector"]
        for f in s["field_selector"]
        if f["field"] == "eventCategory"
    } == {("Management",), ("Data",)}
    assert module["module"]["evidence"]["policy_documents"] == [
        "${data.aws_iam_policy_document.writers.json}"
    ]
    writes = [
        s
        for s in _statements("compliance", "aws_iam_policy_document.writers")
        if s["actions"] == ["s3:PutObject"]
    ]
    assert {s["principals"][0]["identifiers"][0] for s in writes} == {
        "cloudtrail.amazonaws.com",
        "config.amazonaws.com",
    }
    for statement in writes:
        (condition,) = statement["condition"]
        assert condition["variable"] in ("aws:SourceArn", "aws:SourceAccount")


def _rules(module: str, kind: str, group: str) -> list[dict[str, Any]]:
    """The `kind` security group rules of `module` on security group resource `group`."""
    resource = f"${{aws_security_group.{group}.id}}"
    return [b for m, _, b in _resources(kind) if m == module and b["security_group_id"] == resource]


def test_the_data_directory_is_under_a_customer_key_and_mounted_over_tls_by_named_roles() -> None:
    """164.312(a)(2)(iv) encryption at rest and (e)(1) transmission security; (a)(1): the
    data directory is mounted only by the named task roles, each through its access point."""
    systems = _resources("aws_efs_file_system")
    assert systems
    for module, name, system in systems:
        assert system["encrypted"] is True, (module, name)
        assert system["kms_key_id"] == "${var.kms_key_arn}", (module, name)
        (backup,) = [b for m, _, b in _resources("aws_efs_backup_policy") if m == module]
        assert backup["backup_policy"][0]["status"] == "ENABLED"
    statements = _statements("control_plane", "aws_iam_policy_document.data")
    deny = statements[0]
    assert (deny["effect"], deny["actions"], deny["principals"][0]["identifiers"]) == (
        "Deny",
        ["*"],
        ["*"],
    )
    (condition,) = deny["condition"]
    assert (condition["variable"], condition["values"]) == ("aws:SecureTransport", ["false"])
    (allow,) = [s for s in statements if s.get("effect", "Allow") == "Allow"]
    assert allow["actions"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert allow["principals"][0]["type"] == "AWS"
    assert allow["principals"][0]["identifiers"] == "${local.task_role_arns}"
    conditions = {c["variable"]: c["values"] for c in allow["condition"]}
    assert conditions["elasticfilesystem:AccessedViaMountTarget"] == ["true"]
    assert conditions["elasticfilesystem:AccessPointArn"] == ["${aws_efs_access_point.data.arn}"]
    ((_, _, policy),) = _resources("aws_efs_file_system_policy")
    assert policy["bypass_policy_lockout_safety_check"] is False
    assert policy["policy"] == "${data.aws_iam_policy_document.data.json}"
    # Every access point (the control plane's, each project's jobs'): the image's user, its
    # root created closed to everyone else.
    points = _resources("aws_efs_access_point")
    assert {m for m, _, _ in points} == {"control_plane", "jobs"}
    for module, name, point in points:
        assert point["posix_user"][0] == {"uid": 10001, "gid": 10001}, (module, name)
        (root,) = point["root_directory"]
        assert root["creation_info"][0] == {
            "owner_uid": 10001,
            "owner_gid": 10001,
            "permissions": "0700",
        }, (module, name)
    # Every ECS volume of it: TLS to the mount target, IAM authorization, its module's own
    # access point. Every task definition but the database setup's mounts it.
    definitions = _resources("aws_ecs_task_definition")
    assert {m for m, _, _ in definitions} == {"control_plane", "jobs"}
    for module, name, definition in definitions:
        efs = [v["efs_volume_configuration"][0] for v in definition["volume"] if "efs" in str(v)]
        assert bool(efs) != ((module, name) in NO_DATA_DIRECTORY), (module, name)
        for volume in efs:
            assert volume["transit_encryption"] == "ENABLED", (module, name)
            authorization = volume["authorization_config"][0]
            assert authorization["iam"] == "ENABLED", (module, name)
            assert authorization["access_point_id"] == "${aws_efs_access_point.data.id}"
    # NFS reaches the mount targets from the control plane's tasks and clients alone.
    ((_, _, target),) = _resources("aws_efs_mount_target")
    assert target["security_groups"] == ["${aws_security_group.efs.id}"]
    (ingress,) = _rules("control_plane", "aws_vpc_security_group_ingress_rule", "efs")
    assert (ingress["from_port"], ingress["to_port"]) == (2049, 2049)
    assert ingress["for_each"] == {
        "tasks": "${aws_security_group.tasks.id}",
        "clients": "${aws_security_group.clients.id}",
    }


EFS_CLIENT_ACTIONS = {
    "elasticfilesystem:ClientMount",
    "elasticfilesystem:ClientWrite",
    "elasticfilesystem:ClientRootAccess",
}
ACCESS_POINT_ARN = "elasticfilesystem:AccessPointArn"


def _local(module: Path, value: Any) -> Any:
    """`value`, or the local it names whole ("${local.name}")."""
    if isinstance(value, str):
        found = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        if found:
            return _module(module)["locals"][found[1]]
    return value


def _policy_statements(module: Path, document: str) -> list[dict[str, Any]]:
    """Every statement of a policy document, static or made by a dynamic block; each with
    its actions and principals' identifiers resolved when a local names them whole."""
    body = _module(module)["data"][document]
    statements = list(body.get("statement", []))
    for dynamic in body.get("dynamic", []):
        if "statement" in dynamic:
            statements += [
                {**c, "__for_each__": dynamic["statement"]["for_each"]}
                for c in dynamic["statement"]["content"]
            ]
    resolved = []
    for statement in statements:
        statement = {**statement, "actions": _local(module, statement.get("actions"))}
        statement["principals"] = [
            {**p, "identifiers": _local(module, p["identifiers"])}
            for p in statement.get("principals", [])
        ]
        resolved.append(statement)
    return resolved


def _conditions(statement: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(c["test"], c["variable"], tuple(c["values"])) for c in statement.get("condition", [])}


def _jobs_access_point() -> dict[str, Any]:
    ((_, _, point),) = [(m, n, b) for m, n, b in _resources("aws_efs_access_point") if m == "jobs"]
    return point


def test_no_job_mounts_the_control_planes_data_directory_only_its_projects_own() -> None:
    """164.312(a)(1) access control and 164.308(a)(4) minimum necessary: a project's jobs
    mount jobs/<project> of the control plane's data directory (where OpenBao keeps their
    CA bundle and credentials, safeguards.openbao.job_settings) as their whole /data; never
    the control plane's access point, which holds the operator's credentials, OpenBao's
    recovery key and every other project's."""
    jobs = _module(JOBS)
    point = _jobs_access_point()
    assert point["file_system_id"] == "${var.control_plane.file_system_id}"
    (root,) = point["root_directory"]
    assert root["path"] == "/hipaa-mlops/jobs/${var.project}"
    # Inside the control plane's access point, where the app puts a project's job dir.
    (control_root,) = _module(CONTROL_PLANE)["resource"]["aws_efs_access_point.data"][
        "root_directory"
    ]
    settings = load_settings(data_dir="/data")
    job_dir = job_settings(settings, "${var.project}").data_dir
    assert root["path"] == f"{control_root['path']}/{job_dir.relative_to(settings.data_dir)}"
    definitions = jobs["resource"]["aws_ecs_task_definition.job"]
    (volume,) = [v for v in definitions["volume"] if "efs_volume_configuration" in v]
    assert volume["name"] == "data"
    (efs,) = volume["efs_volume_configuration"]
    assert efs["file_system_id"] == "${var.control_plane.file_system_id}"
    assert efs["transit_encryption"] == "ENABLED"
    (authorization,) = efs["authorization_config"]
    assert authorization == {"access_point_id": "${aws_efs_access_point.data.id}", "iam": "ENABLED"}
    mounts = jobs["locals"]["container"]["mountPoints"]
    assert {"sourceVolume": "data", "containerPath": "/data", "readOnly": False} in mounts
    # The control plane's access point cannot even reach the module.
    assert "access_point_id" not in jobs["variable"]["control_plane"]["type"]
    for tf in sorted(JOBS.glob("*.tf")):
        assert "control_plane.access_point" not in tf.read_text(), tf.name
    instance = _module(TERRAFORM / "envs")["module"]["jobs"]
    assert "access_point_id" not in instance["control_plane"]
    assert instance["control_plane"]["file_system_id"] == (
        "${module.control_plane[0].file_system_id}"
    )


def test_the_jobs_role_mounts_its_own_access_point_and_no_other() -> None:
    """164.312(a)(1): the jobs' task role (the project's workload role) may mount and write
    the control plane's file system through its project's access point alone, and is denied
    every other way in, whatever else it is ever granted."""
    jobs = _module(JOBS)
    own = ["${aws_efs_access_point.data.arn}"]
    statements = _policy_statements(JOBS, "aws_iam_policy_document.data")
    efs = [s for s in statements if any("elasticfilesystem" in a for a in s["actions"])]
    assert efs == statements
    allows = [s for s in efs if s.get("effect", "Allow") == "Allow"]
    assert allows
    for allow in allows:
        assert set(allow["actions"]) <= EFS_CLIENT_ACTIONS - {"elasticfilesystem:ClientRootAccess"}
        assert allow["resources"] == ["${var.control_plane.file_system_arn}"]
        assert ("StringEquals", ACCESS_POINT_ARN, tuple(own)) in _conditions(allow)
    (deny,) = [s for s in efs if s.get("effect") == "Deny"]
    assert set(deny["actions"]) == EFS_CLIENT_ACTIONS
    assert deny["resources"] == ["${var.control_plane.file_system_arn}"]
    assert _conditions(deny) == {("StringNotEquals", ACCESS_POINT_ARN, tuple(own))}
    # Attached to the jobs' task role, and nothing else of the module grants EFS access.
    attached = jobs["resource"]["aws_iam_role_policy.data"]
    assert attached["policy"] == "${data.aws_iam_policy_document.data.json}"
    assert attached["role"] == "${local.workload_role_name}"
    derived = jobs["locals"]["workload_role_name"]
    assert derived == '${regex("[^/]+$", var.workload_role_arn)}'
    name = re.search("[^/]+$", "arn:aws:iam::111122223333:role/pima-production-workload")
    assert name is not None and name[0] == "pima-production-workload"
    definition = jobs["resource"]["aws_ecs_task_definition.job"]
    assert definition["task_role_arn"] == "${var.workload_role_arn}"
    others = [d for d in jobs["data"] if d != "aws_iam_policy_document.data"]
    for document in others:
        assert "elasticfilesystem" not in json.dumps(jobs["data"][document]), document
    # Nothing else in the Terraform grants an identity EFS client access: the control
    # plane's task roles their access point, the jobs' role its own.
    for path in MODULES:
        for document in _module(path).get("data", {}):
            if not document.startswith("aws_iam_policy_document."):
                continue
            for statement in _policy_statements(path, document):
                actions = statement["actions"]
                if not isinstance(actions, list):
                    actions = [str(actions)]
                granted = (
                    statement.get("effect", "Allow") == "Allow"
                    and not statement["principals"]
                    and any("elasticfilesystem" in a or a == "*" for a in actions)
                )
                if granted:
                    assert (path.name, document) in {
                        ("control_plane", "aws_iam_policy_document.task"),
                        ("jobs", "aws_iam_policy_document.data"),
                    }, (path.name, document)
                    assert ("StringEquals", ACCESS_POINT_ARN, tuple(own)) in _conditions(
                        statement
                    ), (path.name, document)


def test_only_the_control_planes_task_roles_may_use_its_access_point() -> None:
    """164.312(a)(1): the file system policy lets the control plane's access point (the
    whole data directory) be used by the control plane's task roles alone: no other
    principal is allowed anything, the jobs' roles are denied it, nobody mounts the file
    system around the access points, and the control plane's roles use no other."""
    statements = _policy_statements(CONTROL_PLANE, "aws_iam_policy_document.data")
    control = ["${aws_efs_access_point.data.arn}"]
    task_roles = "${[for role in aws_iam_role.task : role.arn]}"
    for statement in statements:
        # No statement widens by negation.
        assert not {"not_principals", "not_actions", "not_resources"} & set(statement)
        assert statement["resources"] == ["${aws_efs_file_system.data.arn}"]
    # The one allow: the control plane's task roles, through a mount target and their
    # access point, to read and write (not as root).
    (allow,) = [s for s in statements if s.get("effect", "Allow") == "Allow"]
    assert allow["principals"] == [{"type": "AWS", "identifiers": task_roles}]
    assert set(allow["actions"]) <= EFS_CLIENT_ACTIONS - {"elasticfilesystem:ClientRootAccess"}
    assert _conditions(allow) == {
        ("Bool", "elasticfilesystem:AccessedViaMountTarget", ("true",)),
        ("StringEquals", ACCESS_POINT_ARN, tuple(control)),
    }
    denies = [s for s in statements if s.get("effect") == "Deny"]

    def denied(principals: list[dict[str, Any]]) -> set[tuple[str, str, tuple[str, ...]]]:
        """The conditions under which `principals` are denied every client action, each
        the one condition of its statement (more would narrow it)."""
        found = set()
        for s in denies:
            if s["principals"] == principals and set(s["actions"]) >= EFS_CLIENT_ACTIONS:
                (condition,) = _conditions(s)
                found.add(condition)
        return found

    everyone = [{"type": "*", "identifiers": ["*"]}]
    assert ("Null", ACCESS_POINT_ARN, ("true",)) in denied(everyone)
    # The control plane's roles: their access point alone.
    roles = [{"type": "AWS", "identifiers": task_roles}]
    assert ("StringNotEquals", ACCESS_POINT_ARN, tuple(control)) in denied(roles)
    # The jobs' roles (data_clients): never the control plane's access point, whenever
    # there is one to name.
    (jobs,) = [s for s in denies if s.get("__for_each__")]
    assert jobs["__for_each__"] == "${length(var.data_clients) > 0 ? [var.data_clients] : []}"
    assert denied([{"type": "AWS", "identifiers": "${statement.value}"}]) == {
        ("StringEquals", ACCESS_POINT_ARN, tuple(control))
    }
    # data_clients are exactly the jobs' task roles.
    envs = _module(TERRAFORM / "envs")
    instance = envs["module"]["jobs"]
    assert instance["for_each"] == "${local.jobs}"
    assert instance["workload_role_arn"] == (
        '${module.project_primary[each.key].role_arns["workload"]}'
    )
    assert envs["module"]["control_plane"]["data_clients"] == (
        '${[for name in keys(local.jobs) : module.project_primary[name].role_arns["workload"]]}'
    )
    # The control plane's task roles' own policy: their access point alone too.
    (task,) = _statements("control_plane", "aws_iam_policy_document.task")
    assert ("StringEquals", ACCESS_POINT_ARN, tuple(control)) in _conditions(task)


def test_the_control_plane_keeps_each_projects_job_directory() -> None:
    """164.312(a)(1): the control plane runs with HIPAA_MLOPS_JOB_DIRS, so OpenBao's active
    node writes each project's job directory (the CA bundle and the project's workload
    credentials), which is all the jobs mount."""
    module = _module(CONTROL_PLANE)
    assert module["locals"]["environment"]["HIPAA_MLOPS_JOB_DIRS"] == "true"
    assert load_settings(job_dirs="true").job_dirs is True
    # The servers' common environment: OpenBao's task is given it, and nothing sets it
    # otherwise.
    given = _container_environment("control_plane")
    assert given["HIPAA_MLOPS_JOB_DIRS"] == ["true"]
    containers = module["resource"]["aws_ecs_task_definition.server"]["container_definitions"]
    assert "environment = [for name, value in merge(local.environment," in containers


def test_every_database_is_encrypted_private_tls_only_and_kept_35_days() -> None:
    """164.312(a)(2)(iv) at rest, (e)(1) in transit, (d) and (a)(1) who connects, (c)(1)
    integrity and 164.308(a)(7) recovery: the control plane's PostgreSQL."""
    instances = _resources("aws_db_instance")
    assert instances
    for module, name, db in instances:
        key = "${var.kms_key_arn}"
        assert db["storage_encrypted"] is True and db["kms_key_id"] == key, (module, name)
        assert db["performance_insights_kms_key_id"] == key, (module, name)
        assert db["manage_master_user_password"] is True, (module, name)
        assert db["master_user_secret_kms_key_id"] == key, (module, name)
        assert "password" not in db, (module, name)
        assert db["publicly_accessible"] is False, (module, name)
        assert db["iam_database_authentication_enabled"] is True, (module, name)
        assert db["deletion_protection"] is True, (module, name)
        assert db["skip_final_snapshot"] is False, (module, name)
        assert db["backup_retention_period"] >= 35, (module, name)
        assert db["copy_tags_to_snapshot"] is True, (module, name)
        assert db["auto_minor_version_upgrade"] is True, (module, name)
        assert db["multi_az"] == '${var.environment == "production"}', (module, name)
        assert db["enabled_cloudwatch_logs_exports"] == ["postgresql", "upgrade"]
        assert db["depends_on"] == ["${aws_cloudwatch_log_group.database}"]
        assert db["vpc_security_group_ids"] == ["${aws_security_group.database.id}"]
    module = _module(CONTROL_PLANE)
    groups = module["resource"]["aws_cloudwatch_log_group.database"]
    assert groups["for_each"] == '${toset(["postgresql", "upgrade"])}'
    assert groups["name"] == "/aws/rds/instance/${local.database}/${each.key}"
    ((_, _, parameters),) = _resources("aws_db_parameter_group")
    values = {p["name"]: p["value"] for p in parameters["parameter"]}
    assert values["rds.force_ssl"] == "1"
    assert values["ssl_min_protocol_version"] == "TLSv1.2"
    # No statement text in the logs: not logged, nor with a duration, nor with an error.
    assert values["log_statement"] == "none"
    assert values["log_min_duration_statement"] == "-1"
    assert values["log_min_error_statement"] == "panic"
    (ingress,) = _rules("control_plane", "aws_vpc_security_group_ingress_rule", "database")
    assert (ingress["from_port"], ingress["to_port"]) == (5432, 5432)
    assert ingress["referenced_security_group_id"] == "${aws_security_group.tasks.id}"


# What local.container hardens every container of a module with; no task definition's
# merge may set any of them again.
HARDENED = ("image", "user", "readonlyRootFilesystem", "privileged", "linuxParameters")
# The secrets each task definition is given, by reference; the jobs are given none.
GIVEN_SECRETS = {
    ("control_plane", "server"): "secrets = local.servers[each.key].secrets",
    ("control_plane", "database_setup"): "secrets = local.database_setup.secrets",
    ("jobs", "job"): None,
}
# Task definitions without a task role: their container calls no AWS API, so it gets no
# AWS credentials at all (a role without permissions would still hand it some).
NO_TASK_ROLE = {("control_plane", "database_setup")}


def test_every_ecs_task_runs_the_image_by_digest_read_only_unprivileged_logging_encrypted() -> None:
    """164.312(c)(1): the image that passed the tests is the image that runs; (a)(1) least
    privilege in the container; (b) its logs under a customer key; (d) secrets only by
    reference to Secrets Manager, never a value in Terraform. The servers, the jobs and
    the one-off database setup alike."""
    definitions = _resources("aws_ecs_task_definition")
    assert {(m, n) for m, n, _ in definitions} == set(GIVEN_SECRETS)
    for module, name, definition in definitions:
        blocks = _module(TERRAFORM / "modules" / module)
        container = blocks["locals"]["container"]
        assert container["image"] == "${var.image}", (module, name)
        image = blocks["variable"]["image"]
        assert "@sha256:[0-9a-f]{64}$" in image["validation"][0]["condition"], (module, name)
        assert container["readonlyRootFilesystem"] is True, (module, name)
        assert container["privileged"] is False, (module, name)
        assert container["user"] == "10001:10001", (module, name)
        assert container["linuxParameters"] == {"capabilities": {"drop": ["ALL"]}}
        # A scratch /tmp on the task's (encrypted) ephemeral storage: a volume without a
        # host path or a file system.
        tmp = {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
        assert tmp in container["mountPoints"], (module, name)
        assert {"name": "tmp"} in definition["volume"], (module, name)
        assert definition["requires_compatibilities"] == ["FARGATE"], (module, name)
        assert definition["network_mode"] == "awsvpc", (module, name)
        if (module, name) in NO_TASK_ROLE:
            assert "task_role_arn" not in definition, (module, name)
        else:
            assert definition["execution_role_arn"] != definition["task_role_arn"], (module, name)
        containers = definition["container_definitions"]
        assert containers.startswith("${jsonencode([merge(local.container, {"), (module, name)
        # Nothing the merge adds undoes the hardening; mounts only add to /tmp.
        for key in HARDENED:
            assert not re.search(rf"[{{,] *{key} =", containers), (module, name, key)
        if "mountPoints =" in containers:
            assert "local.container.mountPoints)" in containers, (module, name)
        assert 'logDriver = "awslogs"' in containers, (module, name)
        group = re.search(r"awslogs-group = aws_cloudwatch_log_group\.(\w+)", containers)
        assert group, (module, name)
        log_group = blocks["resource"][f"aws_cloudwatch_log_group.{group[1]}"]
        assert log_group["kms_key_id"] == "${var.kms_key_arn}", (module, name)
        assert log_group["retention_in_days"] == "${var.log_retention_days}", (module, name)
        given = GIVEN_SECRETS[module, name]
        assert (given in containers) if given else "secrets" not in containers, (module, name)
    locals_ = _module(CONTROL_PLANE)["locals"]
    for task in [*locals_["servers"].values(), locals_["database_setup"]]:
        for secret in task["secrets"]:
            assert secret["valueFrom"].startswith(
                (
                    "${module.secrets.secret_arns[",
                    "${aws_secretsmanager_secret.unseal.arn}",
                    "${aws_db_instance.this.master_user_secret[0].secret_arn}:",
                )
            ), secret
        assert not any(
            word in k for k in task["environment"] for word in ("PASSWORD", "TOKEN", "KEY", "LOGIN")
        )
    secrets = _module(CONTROL_PLANE)["module"]["secrets"]
    assert (secrets["source"], secrets["kms_key_arn"]) == ("../secrets", "${var.kms_key_arn}")


def test_every_ecs_cluster_service_and_scheduled_task_is_private_and_encrypted() -> None:
    """164.312(a)(2)(iv): every task's ephemeral storage under a customer key; (e)(1) and
    (a)(1): tasks only in the private subnets, never with a public IP, no exec."""
    ((module, _, cluster),) = _resources("aws_ecs_cluster")
    configuration = cluster["configuration"][0]
    storage = configuration["managed_storage_configuration"][0]
    assert storage["fargate_ephemeral_storage_kms_key_id"] == "${var.kms_key_arn}"
    execute = configuration["execute_command_configuration"][0]
    assert execute["kms_key_id"] == "${var.kms_key_arn}"
    assert execute["log_configuration"][0]["cloud_watch_encryption_enabled"] is True
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]
    envs = _module(TERRAFORM / "envs")
    key = envs["module"]["control_plane_key"]
    assert (key["source"], key["fargate_cluster"]) == (
        "../modules/kms",
        "${local.control_plane_name}",
    )
    assert envs["module"]["control_plane"]["name"] == "${local.control_plane_name}"
    assert (
        envs["module"]["control_plane"]["kms_key_arn"] == "${module.control_plane_key[0].key_arn}"
    )
    networks = []
    for module, name, service in _resources("aws_ecs_service"):
        assert service["launch_type"] == "FARGATE", (module, name)
        assert service["enable_execute_command"] is False, (module, name)
        networks.append((module, name, service["network_configuration"][0]))
    for module, name, target in _resources("aws_cloudwatch_event_target"):
        ecs = target["ecs_target"][0]
        assert ecs["launch_type"] == "FARGATE", (module, name)
        assert ecs["enable_execute_command"] is False, (module, name)
        networks.append((module, name, ecs["network_configuration"][0]))
    assert {m for m, _, _ in networks} == {"control_plane", "jobs"}
    for module, name, network in networks:
        assert network["subnets"] == "${var.subnet_ids}", (module, name)
        assert network["assign_public_ip"] is False, (module, name)
        assert network["security_groups"], (module, name)
    for module in (CONTROL_PLANE, JOBS):
        (validation,) = _module(module)["variable"]["subnet_ids"]["validation"]
        assert "length(var.subnet_ids) >= 2" in validation["condition"]
    for instance in (envs["module"]["control_plane"], *[envs["module"]["jobs"]]):
        assert instance["subnet_ids"] == "${module.network_primary.private_subnet_ids}"


def test_every_load_balancer_is_internal_and_passes_tls_through_to_its_server() -> None:
    """164.312(e)(1): reachable inside the VPC only; TLS ends at the server, as on the stack."""
    balancers = _resources("aws_lb")
    assert balancers
    for module, name, balancer in balancers:
        assert balancer["internal"] is True, (module, name)
        assert balancer["load_balancer_type"] == "network", (module, name)
        assert balancer["enable_deletion_protection"] is True, (module, name)
        assert balancer["subnets"] == "${var.subnet_ids}", (module, name)
    for module, name, listener in _resources("aws_lb_listener"):
        assert listener["protocol"] == "TCP", (module, name)
    for module, name, group in _resources("aws_lb_target_group"):
        assert group["health_check"][0]["protocol"] == "HTTPS", (module, name)
        assert group["health_check"][0]["matcher"] == "200", (module, name)


def _container_environment(module: str) -> dict[str, list[str]]:
    """Every variable `module`'s task definitions put in `environment`, with its values as
    python-hcl2 gives them (an expression as "${...}"): from their locals, and set inline
    in the container definitions."""
    blocks = _module(TERRAFORM / "modules" / module)
    found: dict[str, list[str]] = {}
    given = [blocks["locals"]["environment"]]
    given += [server["environment"] for server in blocks["locals"].get("servers", {}).values()]
    if "database_setup" in blocks["locals"]:
        given.append(blocks["locals"]["database_setup"]["environment"])
    for m, name, definition in _resources("aws_ecs_task_definition"):
        if m != module:
            continue
        containers = definition["container_definitions"]
        assert "environment = [for name, value in " in containers, (module, name)
        inline = re.findall(r'\b([A-Z][A-Z0-9_]+) = ("(?:[^"\\]|\\.)*"|[^,}]+)', containers)
        given.append({k: v[1:-1] if v.startswith('"') else f"${{{v}}}" for k, v in inline})
    for environment in given:
        for name, value in environment.items():
            if name != "__comments__":
                found.setdefault(name, []).append(str(value))
    return found


def test_openbao_unseals_itself_with_a_static_key_that_only_its_execution_role_reads() -> None:
    """164.312(a)(2)(iv) and (a)(1): OpenBao's root key is wrapped by the static seal's key,
    injected from a secret under a KMS key of its own that only OpenBao's execution role
    may decrypt; never a value in the task's environment, never one in Terraform."""
    module = _module(CONTROL_PLANE)
    openbao = module["locals"]["servers"]["openbao"]
    environment = openbao["environment"]
    assert not [name for name in environment if name.startswith("VAULT_")]
    assert environment["HIPAA_MLOPS_OPENBAO_SEAL"] == "static"
    assert environment["HIPAA_MLOPS_OPENBAO_STORAGE"] == "postgresql"
    assert environment["PGSSLMODE"] == "verify-full"
    # The key only from `secrets`, from the secret under the unseal key.
    key = launcher.UNSEAL_KEY_ENV
    for name in ("control_plane", "jobs"):
        assert key not in _container_environment(name), name
    (given,) = [s for s in openbao["secrets"] if s["name"] == key]
    assert given["valueFrom"] == "${aws_secretsmanager_secret.unseal.arn}"
    secret = module["resource"]["aws_secretsmanager_secret.unseal"]
    assert secret["kms_key_id"] == "${var.unseal_key_arn}"
    assert not [
        s
        for server in module["locals"]["servers"].values()
        for s in server["secrets"]
        if s is not given and "unseal" in s["valueFrom"]
    ]
    # Only OpenBao's execution role injects it: the secret's policy, its IAM policy, and
    # the unseal key's users; OpenBao's task role (the server) uses no KMS key at all.
    injected = module["locals"]["injected"]
    assert "${aws_secretsmanager_secret.unseal.arn}" in injected["openbao"]
    assert not [arn for arn in injected["mlflow"] if "unseal" in arn]
    statements = _statements("control_plane", "aws_iam_policy_document.unseal")
    (read,) = (s for s in statements if s["effect"] == "Allow")
    assert read["principals"][0]["identifiers"] == ['${aws_iam_role.execution["openbao"].arn}']
    (nobody_else,) = (s for s in statements if s["sid"] == "ReadByNobodyElse")
    assert nobody_else["effect"] == "Deny"
    assert nobody_else["actions"] == ["secretsmanager:GetSecretValue"]
    (condition,) = nobody_else["condition"]
    assert (condition["test"], condition["variable"], condition["values"]) == (
        "StringNotEquals",
        "aws:PrincipalArn",
        ['${aws_iam_role.execution["openbao"].arn}'],
    )
    execution = module["data"]["aws_iam_policy_document.execution"]
    (dynamic,) = execution["dynamic"]
    assert dynamic["statement"]["for_each"] == (
        '${each.key == "openbao" ? [var.unseal_key_arn] : []}'
    )
    (decrypt,) = dynamic["statement"]["content"]
    assert decrypt["actions"] == ["kms:Decrypt"]
    (via,) = decrypt["condition"]
    assert via["values"] == ["secretsmanager.${var.region}.amazonaws.com"]
    task = module["data"]["aws_iam_policy_document.task"]
    assert "kms:" not in json.dumps(task) and "dynamic" not in task
    users = module["output"]["unseal_key_users"]["value"]
    assert users == ['${aws_iam_role.execution["openbao"].arn}']
    envs = _module(TERRAFORM / "envs")["module"]
    unseal = envs["unseal_key"]
    assert (unseal["source"], unseal["kind"]) == ("../modules/kms", "unseal")
    assert unseal["users"] == "${module.control_plane[0].unseal_key_users}"
    assert unseal["service_principals"] == []
    # The operator who puts the key once may only write it (module kms's secret_writers).
    assert unseal["secret_writers"] == "${var.control_plane_secret_writers}"
    assert envs["control_plane"]["unseal_key_arn"] == "${module.unseal_key[0].key_arn}"


def test_the_servers_database_passwords_come_only_from_secrets_each_its_own() -> None:
    """164.312(d) and (a)(1): each server's PostgreSQL role is injected from a secret of its
    own, never in the environment, and each execution role reads its own secret alone."""
    module = _module(CONTROL_PLANE)
    servers = module["locals"]["servers"]
    owned = {"openbao": "openbao-storage", "mlflow": "mlflow-store"}
    assert set(servers) == set(owned)
    for name in ("control_plane", "jobs"):
        given = _container_environment(name)
        assert not {"PGUSER", "PGPASSWORD"} & set(given), name
    for server, secret in owned.items():
        arn = f'${{module.secrets.secret_arns["{secret}"]}}'
        given = {s["name"]: s["valueFrom"] for s in servers[server]["secrets"]}
        assert given["PGUSER"] == f"{arn}:username::", server
        assert given["PGPASSWORD"] == f"{arn}:password::", server
        # The execution role reads exactly the secrets its task is given.
        referenced = {v.split("}", 1)[0] + "}" for v in given.values()}
        assert set(module["locals"]["injected"][server]) == referenced, server
    (read,) = (
        s
        for s in _statements("control_plane", "aws_iam_policy_document.execution")
        if s["sid"] == "TheSecretsItsTaskIsGiven"
    )
    assert read["resources"] == "${local.injected[each.key]}"
    # Each secret's policy names its server's execution role, and the database setup's,
    # which gives each role its password (test_the_database_setup_*).
    setup = "${aws_iam_role.database_setup_execution.arn}"
    secrets = module["module"]["secrets"]
    assert set(secrets["secrets"]) == set(owned.values())
    assert secrets["readers"] == ['${aws_iam_role.execution["openbao"].arn}', setup]
    assert secrets["secret_readers"] == {
        "mlflow-store": ['${aws_iam_role.execution["mlflow"].arn}', setup]
    }
    (reading,) = (
        s for s in _statements("secrets", "aws_iam_policy_document.read") if s["effect"] == "Allow"
    )
    assert reading["principals"][0]["identifiers"] == (
        "${lookup(var.secret_readers, each.key, var.readers)}"
    )
    servers_roles = "[for role in aws_iam_role.execution : role.arn]"
    assert module["output"]["key_users"]["value"] == (
        f"${{concat({servers_roles}, [aws_iam_role.database_setup_execution.arn])}}"
    )


MASTER_SECRET = "${aws_db_instance.this.master_user_secret[0].secret_arn}"
# Each server's login secret, by the variable the setup step reads it from.
SETUP_LOGINS = {
    container.DATABASE_LOGINS["openbao"]: '${module.secrets.secret_arns["openbao-storage"]}',
    container.DATABASE_LOGINS["mlflow"]: '${module.secrets.secret_arns["mlflow-store"]}',
}


def _database_setup() -> tuple[dict[str, Any], dict[str, Any]]:
    """The database setup's locals and its task definition."""
    module = _module(CONTROL_PLANE)
    return module["locals"]["database_setup"], module["resource"][
        "aws_ecs_task_definition.database_setup"
    ]


def test_the_database_setup_gets_the_master_password_and_both_logins_only_as_secrets() -> None:
    """164.312(d) and (a)(1): the one-off task that makes the servers' roles and databases
    (services.postgres.external, as RDS's master user) is given the master user and both
    servers' logins by reference to Secrets Manager alone, never in its environment; its
    environment is what libpq needs to reach the database, verified."""
    setup, definition = _database_setup()
    assert set(external.OWNED) == set(container.DATABASE_LOGINS)
    secret_names = {"PGUSER", "PGPASSWORD", *SETUP_LOGINS}
    given = {s["name"]: s["valueFrom"] for s in setup["secrets"]}
    assert len(given) == len(setup["secrets"])
    assert given == {
        "PGUSER": f"{MASTER_SECRET}:username::",
        "PGPASSWORD": f"{MASTER_SECRET}:password::",
        # The whole JSON (username, password): no key selected.
        **SETUP_LOGINS,
    }
    assert not secret_names & set(setup["environment"])
    for name in ("control_plane", "jobs"):
        assert not secret_names & set(_container_environment(name)), name
    assert setup["environment"] == {
        "PGHOST": "${aws_db_instance.this.address}",
        "PGPORT": "${tostring(aws_db_instance.this.port)}",
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": str(container.DATABASE_CA),
        "DATABASE_CA_PEM": "${var.database_ca_bundle}",
    }
    containers = definition["container_definitions"]
    assert 'command = ["setup-database"]' in containers
    assert "environment = [for name, value in local.database_setup.environment :" in containers
    assert "secrets = local.database_setup.secrets" in containers
    # No server is given the master user.
    for server in _module(CONTROL_PLANE)["locals"]["servers"].values():
        assert not [s for s in server["secrets"] if "master_user_secret" in s["valueFrom"]]


def test_the_database_setup_reads_exactly_its_three_secrets_and_nothing_else() -> None:
    """164.312(a)(1) and 164.308(a)(4): the setup's execution role reads the master user's
    secret and the two servers' and nothing else of Secrets Manager, decrypts only those,
    through Secrets Manager only; the key policy names it; it has no other policy."""
    module = _module(CONTROL_PLANE)
    setup, definition = _database_setup()
    role = "aws_iam_role.database_setup_execution"
    assert definition["execution_role_arn"] == f"${{{role}.arn}}"
    injected = _local(CONTROL_PLANE, "${local.database_setup_injected}")
    assert injected == [MASTER_SECRET, *SETUP_LOGINS.values()]
    assert set(injected) == {
        v.split("}", 1)[0] + "}" for v in (s["valueFrom"] for s in setup["secrets"])
    }
    statements = _policy_statements(
        CONTROL_PLANE, "aws_iam_policy_document.database_setup_execution"
    )
    for statement in statements:
        assert statement.get("effect", "Allow") == "Allow"
        assert not {"not_actions", "not_resources", "principals"} & {
            k for k, v in statement.items() if v
        }
        for action in statement["actions"]:
            assert action != "*" and not action.startswith(("secretsmanager:*", "kms:*"))
    (read,) = [s for s in statements if any(a.startswith("secretsmanager") for a in s["actions"])]
    assert read["actions"] == ["secretsmanager:GetSecretValue"]
    assert _local(CONTROL_PLANE, read["resources"]) == injected
    assert "condition" not in read
    # The only secrets' policies that name it: the two servers' logins (module secrets).
    assert set(module["module"]["secrets"]["secrets"]) == {"openbao-storage", "mlflow-store"}
    # All three are under the control plane's key; decrypted for those secrets, through
    # Secrets Manager, and nothing else.
    (database,) = [b for m, _, b in _resources("aws_db_instance") if m == "control_plane"]
    assert database["master_user_secret_kms_key_id"] == "${var.kms_key_arn}"
    assert module["module"]["secrets"]["kms_key_arn"] == "${var.kms_key_arn}"
    (decrypt,) = [s for s in statements if any(a.startswith("kms") for a in s["actions"])]
    assert decrypt["actions"] == ["kms:Decrypt"]
    assert decrypt["resources"] == ["${var.kms_key_arn}"]
    conditions = {
        c["variable"]: (c["test"], _local(CONTROL_PLANE, c["values"])) for c in decrypt["condition"]
    }
    assert conditions == {
        "kms:ViaService": ("StringEquals", ["secretsmanager.${var.region}.amazonaws.com"]),
        "kms:EncryptionContext:SecretARN": ("StringEquals", injected),
    }
    others = {s["sid"] for s in statements} - {read["sid"], decrypt["sid"]}
    assert others == {"PullTheImage", "EcrLogin", "ItsLogGroup"}
    # Its one policy; no other policy names the role, no managed policy is attached.
    attached = [
        (address, body)
        for address, body in module["resource"].items()
        if address.startswith("aws_iam_role_policy") and role in json.dumps(body)
    ]
    assert [a for a, _ in attached] == ["aws_iam_role_policy.database_setup_execution"]
    assert (
        attached[0][1]["policy"] == "${data.aws_iam_policy_document.database_setup_execution.json}"
    )
    # The control plane's key lets it decrypt (module kms's users); the unseal key and
    # the seal key's secret do not.
    assert f", [{role}.arn])}}" in module["output"]["key_users"]["value"]
    assert "database_setup" not in json.dumps(module["output"]["unseal_key_users"])
    assert "database_setup" not in json.dumps(module["data"]["aws_iam_policy_document.unseal"])
    envs = _module(TERRAFORM / "envs")["module"]
    assert envs["control_plane_key"]["users"] == "${module.control_plane[0].key_users}"


def test_the_database_setup_mounts_no_data_directory_and_holds_no_aws_credentials() -> None:
    """164.312(a)(1) and 164.308(a)(4): the setup needs no data directory (the operator's
    credentials, OpenBao's recovery key) and is given none: no volume of it, no mount, no
    task role that EFS could let in; /tmp alone, on the task's ephemeral storage."""
    module = _module(CONTROL_PLANE)
    _, definition = _database_setup()
    assert definition["volume"] == [{"name": "tmp"}]
    containers = definition["container_definitions"]
    assert "mountPoints" not in containers and "data_mount" not in containers
    assert module["locals"]["container"]["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
    ]
    assert "task_role_arn" not in definition
    policy = module["data"]["aws_iam_policy_document.database_setup_execution"]
    assert "elasticfilesystem" not in json.dumps(policy)
    # The servers still mount it, at /data, through their access point.
    assert module["locals"]["data_mount"] == {
        "sourceVolume": "data",
        "containerPath": "/data",
        "readOnly": False,
    }
    servers = module["resource"]["aws_ecs_task_definition.server"]["container_definitions"]
    assert "mountPoints = concat([local.data_mount], local.container.mountPoints)" in servers


def test_the_database_setup_is_a_one_off_task_the_database_admits() -> None:
    """164.312(a)(1) and (e)(1): no service runs the setup; the operator runs it with
    `aws ecs run-task` in the private subnets, without a public IP, with the servers'
    security group, the only one the database admits."""
    module = _module(CONTROL_PLANE)
    _, definition = _database_setup()
    assert definition["family"] == "${var.name}-database-setup"
    for _, _, service in _resources("aws_ecs_service"):
        assert "database_setup" not in service["task_definition"]
    (ingress,) = _rules("control_plane", "aws_vpc_security_group_ingress_rule", "database")
    assert ingress["referenced_security_group_id"] == "${aws_security_group.tasks.id}"
    output = module["output"]["database_setup_task_definition"]["value"]
    assert output == {
        "family": "${aws_ecs_task_definition.database_setup.family}",
        "arn": "${aws_ecs_task_definition.database_setup.arn}",
        "cluster": "${aws_ecs_cluster.this.name}",
        "subnet_ids": "${var.subnet_ids}",
        "security_group_id": "${aws_security_group.tasks.id}",
    }
    envs = _module(TERRAFORM / "envs")["output"]["control_plane"]["value"]
    assert "database_setup_task_definition = c.database_setup_task_definition" in envs
    readme = (CONTROL_PLANE / "README.md").read_text()
    command = readme[readme.index('task="$(aws ecs run-task') :].split("```", 1)[0]
    for part in (
        '--cluster "$cluster"',
        "--task-definition",
        "--launch-type FARGATE",
        "subnets=[$(jq -r '.subnet_ids",
        "securityGroups=[$(jq -r .security_group_id",
        "assignPublicIp=DISABLED",
    ):
        assert part in command, part
    assert "psql" not in readme and "CREATE ROLE" not in readme


def test_the_servers_verify_the_database_with_the_regions_rds_ca_bundle() -> None:
    """164.312(e)(1): the servers reach RDS over TLS, verified (verify-full) against the RDS
    CA bundle of the region, at the path where the image's entry point writes it."""
    module = _module(CONTROL_PLANE)
    servers = module["locals"]["servers"]
    path = str(container.DATABASE_CA)
    openbao, mlflow = servers["openbao"]["environment"], servers["mlflow"]["environment"]
    assert (openbao["PGSSLMODE"], openbao["PGSSLROOTCERT"]) == ("verify-full", path)
    assert set(launcher._PG_ENV) <= {*openbao, "PGUSER", "PGPASSWORD"}
    assert mlflow["HIPAA_MLOPS_POSTGRES_CA"] == path
    assert mlflow["HIPAA_MLOPS_POSTGRES_ADDR"] == (
        "${aws_db_instance.this.address}:${aws_db_instance.this.port}"
    )
    for server in (openbao, mlflow):
        assert server["DATABASE_CA_PEM"] == "${var.database_ca_bundle}"
    variable = module["variable"]["database_ca_bundle"]
    assert "default" not in variable
    assert "-----BEGIN CERTIFICATE-----" in variable["validation"][0]["condition"]
    envs = _module(TERRAFORM / "envs")
    assert envs["module"]["control_plane"]["database_ca_bundle"] == "${var.database_ca_bundle}"
    assert (
        "-----BEGIN CERTIFICATE-----"
        in (envs["variable"]["database_ca_bundle"]["validation"][0]["condition"])
    )


# Variables the task definitions set that are no setting: the image's health check reads
# the first two (services.healthcheck, without loading settings), the last names the
# server; the compose stack sets each of them too.
OUTSIDE_SETTINGS = {"HIPAA_MLOPS_HEALTH_URL", "HIPAA_MLOPS_HEALTH_STATUSES", "HIPAA_MLOPS_SERVICE"}


def _literal(value: str) -> str | None:
    """A value as python-hcl2 gives it, if it is a plain literal string; None for an
    interpolation or any other expression."""
    return None if "${" in value or "%{" in value else value


def test_every_variable_the_terraform_gives_the_app_is_a_setting_it_accepts() -> None:
    """164.312(c)(1): what the cloud's tasks are given is what the app reads: every
    HIPAA_MLOPS_* variable is a field of safeguards.settings.Settings, and each plain value
    is one the app accepts (the app refuses to start on any other)."""
    compose = yaml.safe_load((TERRAFORM.parent / "compose" / "compose.yaml").read_text())
    composed = {k for s in compose["services"].values() for k in s.get("environment") or {}}
    assert composed >= OUTSIDE_SETTINGS
    seen: dict[str, list[str]] = {}
    for module in ("control_plane", "jobs"):
        for name, values in _container_environment(module).items():
            if name.startswith("HIPAA_MLOPS_"):
                seen.setdefault(name, []).extend(values)
    assert {"HIPAA_MLOPS_OPENBAO_SEAL", "HIPAA_MLOPS_LAKE", "HIPAA_MLOPS_REGIONS"} <= set(seen)
    checked = 0
    for name, values in seen.items():
        if name in OUTSIDE_SETTINGS:
            continue
        field = name.removeprefix("HIPAA_MLOPS_").lower()
        assert field in Settings.model_fields, f"{name} is no setting of the app"
        for value in values:
            literal = _literal(value)
            if literal is not None:
                load_settings(**{field: literal})  # raises ConfigError on a refused value
                checked += 1
    assert checked >= 8
    # The interpolated ones that follow the environment: the same expressions for the
    # servers and the jobs, and what they give for each environment, accepted.
    servers = _module(CONTROL_PLANE)["locals"]["environment"]
    jobs = _module(JOBS)["locals"]["environment"]
    common = ("REGIONS", "AWS_REGIONS", "OPENBAO_BOUND_CIDRS", "OPENBAO_ADDR", "MLFLOW_ADDR")
    for name in common:
        assert f"HIPAA_MLOPS_{name}" in servers and f"HIPAA_MLOPS_{name}" in jobs, name
    for name in common[:3]:
        assert servers[f"HIPAA_MLOPS_{name}"] == jobs[f"HIPAA_MLOPS_{name}"], name
    assert servers["HIPAA_MLOPS_REGIONS"] == '${join(",", var.platform_regions)}'
    assert servers["HIPAA_MLOPS_AWS_REGIONS"] == (
        '${join(",", [for region in var.platform_regions : "${region}=${region}"])}'
    )
    envs = _module(TERRAFORM / "envs")
    regions = envs["locals"]["platform_regions"]
    assert regions == ["${var.primary_region}", "${var.secondary_region}"]
    for instance in (envs["module"]["control_plane"], envs["module"]["jobs"]):
        assert instance["platform_regions"] == "${local.platform_regions}"
        assert instance["client_cidrs"] == "${module.network_primary.private_subnet_cidrs}"
    for tfvars in sorted((TERRAFORM / "envs").glob("*.tfvars")):
        values = _clean(hcl2.loads(tfvars.read_text()))
        regions = [values["primary_region"], values["secondary_region"]]
        settings = load_settings(
            regions=",".join(regions),
            aws_regions=",".join(f"{r}={r}" for r in regions),
            s3_bucket_prefix=values["bucket_prefix"],
            lake="s3",
        )
        assert settings.aws_region_map[settings.home_region] == regions[0], tfvars.name
    # The jobs' lake: S3 under the environment's bucket prefix, the data lake's.
    assert jobs["HIPAA_MLOPS_S3_BUCKET_PREFIX"] == "${var.bucket_prefix}"
    assert envs["module"]["jobs"]["bucket_prefix"] == "${var.bucket_prefix}"


_BUCKET_PREFIX = "^[a-z0-9][a-z0-9-]{2,20}$"


def test_terraform_takes_only_a_bucket_prefix_the_app_takes() -> None:
    conditions = {
        name: _module(path)["variable"]["bucket_prefix"]["validation"][0]["condition"]
        for name, path in (
            ("envs", TERRAFORM / "envs"),
            ("data_lake", TERRAFORM / "modules" / "data_lake"),
            ("jobs", JOBS),
        )
    }
    for name, condition in conditions.items():
        assert condition == f'${{can(regex("{_BUCKET_PREFIX}", var.bucket_prefix))}}', name


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.from_regex(_BUCKET_PREFIX, fullmatch=True))
def test_every_bucket_prefix_terraform_takes_the_app_takes(prefix: str) -> None:
    assert load_settings(s3_bucket_prefix=prefix).s3_bucket_prefix == prefix


def test_the_lakes_zone_keys_and_aliases_are_the_ones_the_app_looks_up() -> None:
    """164.312(a)(2)(iv): under HIPAA_MLOPS_LAKE=s3 the app writes each zone under the key
    it finds by alias; that must be the key the zone's bucket is made under."""
    zones = _module(TERRAFORM / "modules" / "data_lake")["locals"]["zones"]
    for zone in objectstore.ZONES:
        assert zones[zone] == objectstore.KMS_KINDS.get(zone, "proj"), zone
    assert set(objectstore.KMS_KINDS) <= set(objectstore.ZONES)
    alias = _module(TERRAFORM / "modules" / "kms")["resource"]["aws_kms_alias.this"]["name"]
    assert alias == "alias/hipaa-mlops/${var.region}/${var.kind}-${var.project}"
    for zone in objectstore.ZONES:
        for project, region in (("pima", "us-east-1"), ("a-b9", "eu-central-1")):
            made = (
                alias.replace("${var.region}", region)
                .replace("${var.kind}", zones[zone])
                .replace("${var.project}", project)
            )
            assert objectstore.kms_alias(project, zone, region) == made, (zone, region)
    # Each project's keys: the kms module per kind, in the project's (AWS) region, and
    # its roles may describe them, which the look-up by alias is.
    key = _module(TERRAFORM / "modules" / "project")["module"]["key"]
    assert (key["kind"], key["project"], key["region"]) == (
        "${each.key}",
        "${var.project}",
        "${var.region}",
    )
    (use,) = (
        s
        for s in _statements("project", "aws_iam_policy_document.role")
        if s["sid"] == "UseItsKeys"
    )
    assert use["actions"] == ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]


def test_the_servers_container_health_checks_accept_what_they_should() -> None:
    # services.healthcheck reads the accepted statuses space-separated, as compose sets
    # them; OpenBao's standby answers 429 and must stay a healthy task.
    servers = _module(CONTROL_PLANE)["locals"]["servers"]
    accepted = {
        name: {int(s) for s in server["health_statuses"].split()}
        for name, server in servers.items()
    }
    assert accepted == {
        "openbao": {200, 429},
        "mlflow": set(topology.service("mlflow").ready_statuses),
    }


def _eventbridge_cron(crontab: str) -> str:
    """A crontab (minute hour day month weekday) as EventBridge's cron(), which names
    either a day of the month or a weekday, never both, and adds a year."""
    minute, hour, day, month, weekday = crontab.split()
    if weekday != "*":
        day, weekday = "?", weekday.upper()
    else:
        weekday = "?"
    return f"cron({minute} {hour} {day} {month} {weekday} *)"


def test_the_jobs_retrain_and_monitor_their_project_as_its_workload_on_the_workers_schedule() -> (
    None
):
    """164.312(b) and (c)(1): the cloud watches and retrains each served project as the
    stack's worker does, with the same command lines, identity and default schedules."""
    jobs = _module(JOBS)
    assert jobs["locals"]["commands"] == {
        "retrain": ["retrain", "-p", "${var.project}", "--trigger", "schedule"],
        "monitor": ["monitor", "run", "-p", "${var.project}", "--retrain"],
    }
    assert jobs["locals"]["container"]["entryPoint"] == ["/usr/bin/tini", "--", "hipaa-mlops"]
    definition = jobs["resource"]["aws_ecs_task_definition.job"]
    assert definition["for_each"] == "${local.commands}"
    assert definition["task_role_arn"] == "${var.workload_role_arn}"
    assert definition["execution_role_arn"] == "${aws_iam_role.execution.arn}"
    assert "command = each.value" in definition["container_definitions"]
    # The worker's defaults, as EventBridge writes them.
    fields = Settings.model_fields
    retrain = _eventbridge_cron(str(fields["retrain_cron"].default))
    assert jobs["variable"]["retrain_schedule"]["default"] == retrain == "cron(0 3 ? * MON *)"
    minutes = int(float(fields["monitor_interval_seconds"].default) // 60)
    assert jobs["variable"]["monitor_schedule"]["default"] == f"rate({minutes} minutes)"
    assert jobs["locals"]["schedules"] == {
        "retrain": "${var.retrain_schedule}",
        "monitor": "${var.monitor_schedule}",
    }
    rule = jobs["resource"]["aws_cloudwatch_event_rule.job"]
    assert (rule["for_each"], rule["schedule_expression"]) == (
        "${local.schedules}",
        "${each.value}",
    )
    target = jobs["resource"]["aws_cloudwatch_event_target.job"]
    task = target["ecs_target"][0]["task_definition_arn"]
    assert task == "${aws_ecs_task_definition.job[each.key].arn}"
    # EventBridge rules, never EventBridge Scheduler (not on the kept eligible list).
    assert not [r for p in MODULES for r in _module(p).get("resource", {}) if "scheduler" in r]
    # The environment's wiring: the served projects only, their workload role and image.
    envs = _module(TERRAFORM / "envs")
    instance = envs["module"]["jobs"]
    assert instance["for_each"] == "${local.jobs}"
    assert "contains(keys(p.serving), var.primary_region)" in envs["locals"]["jobs"]
    assert (
        instance["workload_role_arn"] == '${module.project_primary[each.key].role_arns["workload"]}'
    )
    assert instance["image"] == "${module.project_primary[each.key].serving_image}"
    assert instance["kms_key_arn"] == '${module.project_primary[each.key].key_arns["audit"]}'
    # The workload role: ECS tasks of this account may assume it, as SageMaker may.
    project = _module(TERRAFORM / "modules" / "project")
    assert project["resource"]["aws_iam_role.workload"]["assume_role_policy"] == (
        "${data.aws_iam_policy_document.workload_trust.json}"
    )
    (trust,) = _statements("project", "aws_iam_policy_document.workload_trust")
    assert trust["principals"][0]["identifiers"] == ["ecs-tasks.amazonaws.com"]
    (condition,) = trust["condition"]
    assert condition["variable"] == "aws:SourceAccount"
    assert condition["values"] == ["${data.aws_caller_identity.current.account_id}"]


def test_eventbridge_may_run_only_the_jobs_and_pass_only_their_roles() -> None:
    """164.312(a)(1): the role EventBridge starts the jobs with can start nothing else and
    hand ECS no other role."""
    run, pass_role = _statements("jobs", "aws_iam_policy_document.events")
    assert run["actions"] == ["ecs:RunTask"]
    assert run["resources"] == "${[for job in aws_ecs_task_definition.job : job.arn]}"
    (cluster,) = run["condition"]
    assert (cluster["variable"], cluster["values"]) == (
        "ecs:cluster",
        ["${var.control_plane.cluster_arn}"],
    )
    assert pass_role["actions"] == ["iam:PassRole"]
    assert pass_role["resources"] == ["${var.workload_role_arn}", "${aws_iam_role.execution.arn}"]
    (passed,) = pass_role["condition"]
    assert (passed["variable"], passed["values"]) == (
        "iam:PassedToService",
        ["ecs-tasks.amazonaws.com"],
    )
    jobs = _module(JOBS)["resource"]
    assert jobs["aws_cloudwatch_event_target.job"]["role_arn"] == "${aws_iam_role.events.arn}"
    assert jobs["aws_iam_role_policy.events"]["role"] == "${aws_iam_role.events.id}"
    (trust,) = _statements("jobs", "aws_iam_policy_document.events_trust")
    assert trust["principals"][0]["identifiers"] == ["events.amazonaws.com"]
    assert trust["condition"][0]["variable"] == "aws:SourceAccount"


def test_checkov_passes_every_check_and_each_skip_says_why_beside_the_code() -> None:
    """checkov (make checkov), offline: no failed check over terraform/, no parsing error,
    and every skip carries its reason in the code it skips."""
    checkov = TERRAFORM.parent / ".venv-checkov" / "bin" / "checkov"
    assert checkov.is_file(), "checkov is not installed: make checkov"
    result = subprocess.run(
        [checkov, "-d", TERRAFORM, "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        # No version check against PyPI, no Prisma Cloud: nothing leaves the machine.
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/"),
            "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        },
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, failed
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 500
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) >= 30, (check["check_id"], check["resource"])
