"""ECS's errors and Berth's signature checks, seen through boto3 as a program sees them.

Run by test/e2e/ecsapi_test.go with ENDPOINT, REGION, CLUSTER and two credentials:
KEY_A/SECRET_A acting in namespace A (which has the task definition batch_job) and
KEY_B/SECRET_B acting in namespace B. Prints one line per check; exits non-zero on
the first failure.
"""
import datetime
import os
import sys

import boto3
import botocore.auth
import botocore.exceptions
from botocore.config import Config

ENDPOINT, REGION, CLUSTER = os.environ["ENDPOINT"], os.environ["REGION"], os.environ["CLUSTER"]
NO_RETRY = Config(retries={"total_max_attempts": 1})
refused = []


def client(key, secret):
    return boto3.client("ecs", endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret, config=NO_RETRY)


def expect_error(what, code, call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if got != code:
            sys.exit(f"FAIL {what}: got {got} ({e}), want {code}")
        if code != "ServerException" and status >= 500:
            sys.exit(f"FAIL {what}: HTTP {status} for a client error")
        refused.append(code)
        print(f"ok   {what}: {code} (HTTP {status}): {e.response['Error'].get('Message', '')}")
        return
    sys.exit(f"FAIL {what}: succeeded, want {code}")


a = client(os.environ["KEY_A"], os.environ["SECRET_A"])
b = client(os.environ["KEY_B"], os.environ["SECRET_B"])

# ECS's error types, each with its HTTP 400.
expect_error("describe services of a missing cluster", "ClusterNotFoundException",
             a.describe_services, cluster="no-such-cluster", services=["web"])
expect_error("update a missing service", "ServiceNotFoundException",
             a.update_service, cluster=CLUSTER, service="no-such-service", desiredCount=1)
expect_error("run a missing task definition", "ClientException",
             a.run_task, cluster=CLUSTER, taskDefinition="no-such-family")
expect_error("describe more than 10 services", "InvalidParameterException",
             a.describe_services, cluster=CLUSTER, services=[f"s{i}" for i in range(11)])
expect_error("register an EFS volume", "InvalidParameterException",
             a.register_task_definition, family="efs",
             containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}],
             volumes=[{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}])
expect_error("an action Berth does not serve", "UnsupportedFeatureException",
             a.create_capacity_provider, name="cp",
             autoScalingGroupProvider={"autoScalingGroupArn": "arn:aws:autoscaling:x"})

# Describe calls answer MISSING for what does not exist.
out = a.describe_tasks(cluster=CLUSTER, tasks=["0123456789abcdef0123456789abcdef"])
assert out["tasks"] == [] and out["failures"][0]["reason"] == "MISSING", out
print("ok   describe-tasks of a missing task: failures[0].reason MISSING")

# Tenancy: namespace B does not see namespace A's task definitions.
fams_a = a.list_task_definition_families()["families"]
fams_b = b.list_task_definition_families()["families"]
assert "batch_job" in fams_a and "batch_job" not in fams_b, (fams_a, fams_b)
expect_error("B describes A's task definition", "ClientException",
             b.describe_task_definition, taskDefinition="batch_job")
print("ok   namespace B sees none of namespace A's task definitions")

# Signatures: an unknown key, a wrong secret, a body changed after signing, and a
# signature from 20 minutes ago.
expect_error("unknown access key", "UnrecognizedClientException",
             client("BKIAUNKNOWNUNKNOWNUN", "x" * 40).list_clusters)
expect_error("wrong secret", "InvalidSignatureException",
             client(os.environ["KEY_A"], "y" * 40).list_clusters)

tampered = client(os.environ["KEY_A"], os.environ["SECRET_A"])


def change_body(request, **_):
    request.body = request.body.replace(b'"maxResults": 5', b'"maxResults": 6')


tampered.meta.events.register("before-send.ecs.ListClusters", change_body)
expect_error("body changed after signing", "InvalidSignatureException", tampered.list_clusters, maxResults=5)


# botocore.auth.datetime is the datetime module itself: the class is swapped for the
# one call and put back.
real = datetime.datetime


class PastDatetime(real):
    @classmethod
    def utcnow(cls):
        return real.utcnow() - datetime.timedelta(minutes=20)

    @classmethod
    def now(cls, tz=None):
        return real.now(tz) - datetime.timedelta(minutes=20)


botocore.auth.datetime.datetime = PastDatetime
try:
    expect_error("signature 20 minutes old", "InvalidSignatureException", client(os.environ["KEY_A"], os.environ["SECRET_A"]).list_clusters)
finally:
    botocore.auth.datetime.datetime = real

# STS on the same endpoint.
sts = boto3.client("sts", endpoint_url=ENDPOINT, region_name=REGION,
                   aws_access_key_id=os.environ["KEY_A"], aws_secret_access_key=os.environ["SECRET_A"], config=NO_RETRY)
ident = sts.get_caller_identity()
assert ident["Account"] == os.environ["ACCOUNT"] and ident["Arn"].endswith(":user/" + os.environ["USER_A"]), ident
print(f"ok   sts get-caller-identity: {ident['Arn']}")
print("refused: " + " ".join(sorted(set(refused))))
print("errors passed")
