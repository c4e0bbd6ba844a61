"""SSE-KMS is bound to the bucket's project and zone, whatever client writes.

A project's S3 identity, with plain boto3, tries to write into its own buckets under
another project's key, under its own raw-PHI key, with SSE-S3, with a customer key, and
by copying: SeaweedFS refuses each by the bucket's policy. A write that names no
encryption gets the bucket's default, the zone key. The check behind the policy reads
every object's key.
"""

from __future__ import annotations

import hvac
import pytest

from safeguards import credentials, keys, objectstore
from safeguards.settings import Settings
from services.seaweedfs import launcher as seaweedfs
from tests.conftest import HOME, REGIONS

pytestmark = pytest.mark.integration


def _client(lake: Settings, operator: hvac.Client, project: str, role: str = "workload") -> object:
    creds = credentials.read(operator, objectstore.s3_credentials_path(project, role))
    return objectstore.s3_client(
        lake.s3_url, creds["access_key"], creds["secret_key"], lake.ca_bundle
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "{home}.proj-{other}"},
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "{home}.phi-{me}"},
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "{away}.proj-{me}"},
        {"ServerSideEncryption": "AES256"},
        {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32},
    ],
    ids=[
        "another-projects-key",
        "own-raw-phi-key",
        "own-key-in-another-region",
        "sse-s3",
        "customer-key",
    ],
)
def test_a_write_under_any_other_key_is_refused(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str], extra: dict[str, str]
) -> None:
    me, other = lake_pair
    s3 = _client(lake, operator, me)
    names = {"me": me, "other": other, "home": HOME, "away": REGIONS[1]}
    args = {k: v.format(**names) for k, v in extra.items()}
    with pytest.raises(Exception, match="AccessDenied"):
        s3.put_object(Bucket=f"{me}-artifacts", Key="x", Body=b"data", **args)  # type: ignore[attr-defined]
    assert objectstore.misencrypted(seaweedfs.admin_client(lake, operator), me, HOME) == {}


def test_a_copy_into_the_bucket_is_refused(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    me, _ = lake_pair
    steward = _client(lake, operator, me, "ingest")
    steward.put_object(Bucket=f"{me}-raw-phi", Key="raw", Body=b"phi")  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="AccessDenied"):
        steward.copy_object(  # type: ignore[attr-defined]
            Bucket=f"{me}-deidentified", Key="copied", CopySource=f"{me}-raw-phi/raw"
        )


def test_a_write_without_encryption_headers_gets_the_zone_key(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    me, _ = lake_pair
    s3 = _client(lake, operator, me)
    s3.put_object(Bucket=f"{me}-artifacts", Key="plain", Body=b"data")  # type: ignore[attr-defined]
    head = s3.head_object(Bucket=f"{me}-artifacts", Key="plain")  # type: ignore[attr-defined]
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == (
        "aws:kms",
        keys.key_name(me, HOME),
    )


def test_the_check_counts_an_object_under_the_wrong_key(
    lake: Settings, operator: hvac.Client, lake_pair: tuple[str, str]
) -> None:
    me, other = lake_pair
    admin = seaweedfs.admin_client(lake, operator)
    # Lifted as the admin, the one identity a bucket policy cannot bind: the check catches it.
    admin.delete_bucket_policy(Bucket=f"{me}-artifacts")
    admin.put_object(
        Bucket=f"{me}-artifacts",
        Key="wrong",
        Body=b"data",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=keys.key_name(other, HOME),
    )
    assert objectstore.misencrypted(admin, me, HOME) == {"artifacts": 1}
