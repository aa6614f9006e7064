#!/usr/bin/env python3
"""The seed scenario driven with the official AWS SDK for Python against tollgate.

boto3's `apigateway` client, with `endpoint_url` pointed at tollgate's HTTP port and the
access key pair the server was started with, signs every call with SigV4. The checks go
through tollgate's gRPC CheckQuota, with stubs generated from proto/ by grpcio-tools.

Usage: seed_flow.py HTTP_ENDPOINT GRPC_TARGET PROTO_DIR   (credentials from AWS_* variables)
Exits non-zero with a message on the first failed expectation.
"""

import importlib.resources
import os
import sys
import tempfile
from datetime import datetime, timezone

import boto3
import grpc
from grpc_tools import protoc

API_ID = "demo-API-usage-plan"
STAGE = "usage-plan-test"


def expect(cond, what):
    if not cond:
        raise SystemExit(f"seed flow FAILED: {what}")
    print(f"ok: {what}")


def stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="tollgate-stubs-")
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", "tollgate/v1/quota.proto"])
    if rc != 0:
        raise SystemExit(f"seed flow FAILED: protoc exited with {rc}")
    sys.path.insert(0, out)
    from tollgate.v1 import quota_pb2, quota_pb2_grpc  # noqa: E402
    return quota_pb2, quota_pb2_grpc


def main():
    endpoint, grpc_target, proto_dir = sys.argv[1:4]
    pb, pb_grpc = stubs(proto_dir)
    apigw = boto3.client(
        "apigateway",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )

    key = apigw.create_api_key(name="testApikey", enabled=True)
    expect(len(key["value"]) == 40 and key["enabled"], "create_api_key returns a 40-character value once")
    expect(isinstance(key["createdDate"], datetime), "createdDate parses as a timestamp")

    plan = apigw.create_usage_plan(
        name="demo-usage-plan",
        apiStages=[{"apiId": API_ID, "stage": STAGE}],
        quota={"limit": 5, "period": "DAY"},
    )
    expect(plan["quota"] == {"limit": 5, "offset": 0, "period": "DAY"}, "create_usage_plan with 5 per DAY")

    pk = apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    expect(pk["id"] == key["id"] and pk["type"] == "API_KEY", "create_usage_plan_key")

    keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])
    expect([k["id"] for k in keys["items"]] == [key["id"]], "get_usage_plan_keys lists the key")

    try:
        apigw.get_usage_plan(usagePlanId="no-such-plan")
        expect(False, "an unknown plan raises NotFoundException")
    except apigw.exceptions.NotFoundException:
        expect(True, "an unknown plan raises NotFoundException")
    try:
        apigw.create_api_key(name="dup", value=key["value"])
        expect(False, "a duplicate value raises ConflictException")
    except apigw.exceptions.ConflictException:
        expect(True, "a duplicate value raises ConflictException")
    try:
        apigw.create_usage_plan(name="bad", quota={"limit": 5, "period": "DAILY"})
        expect(False, "a bad period raises BadRequestException")
    except apigw.exceptions.BadRequestException as e:
        expect("quota.period" in str(e), "a bad period raises BadRequestException")

    channel = grpc.insecure_channel(grpc_target)
    quota = pb_grpc.QuotaServiceStub(channel)

    def call():
        return quota.CheckQuota(pb.CheckQuotaRequest(
            api_key=key["value"], api_id=API_ID, stage=STAGE,
            resource="/usageplanOffering", method="POST"), timeout=5)

    for i in range(5):
        r = call()
        expect(r.http_status == 200, f"check {i + 1} of 5 passes")
    r = call()
    expect(r.http_status == 429 and r.message == "Limit Exceeded", "the sixth check gets 429 Limit Exceeded")

    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    usage = apigw.get_usage(usagePlanId=plan["id"], keyId=key["id"], startDate=today, endDate=today)
    expect(usage["items"] == {key["id"]: [[5, 0]]}, f"get_usage shows 5 used and 0 remaining ({usage['items']})")

    updated = apigw.update_usage(
        usagePlanId=plan["id"], keyId=key["id"],
        patchOperations=[{"op": "replace", "path": "/remaining", "value": "3"}])
    expect(updated["items"] == {key["id"]: [[5, 3]]}, "update_usage grants 3 more")
    for i in range(3):
        expect(call().http_status == 200, f"granted check {i + 1} of 3 passes")
    expect(call().http_status == 429, "the next check gets 429 again")

    usage = apigw.get_usage(usagePlanId=plan["id"], startDate=today, endDate=today)
    expect(usage["items"] == {key["id"]: [[8, 0]]}, "get_usage shows 8 used and 0 remaining")

    apigw.update_api_key(apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}])
    expect(call().http_status == 403, "a disabled key gets 403")

    plans = apigw.get_usage_plans(keyId=key["id"])
    expect([p["id"] for p in plans["items"]] == [plan["id"]], "get_usage_plans by keyId")
    apigw.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
    apigw.delete_api_key(apiKey=key["id"])
    apigw.delete_usage_plan(usagePlanId=plan["id"])
    expect(apigw.get_api_keys()["items"] == [], "everything deleted")
    print("seed flow: OK")


if __name__ == "__main__":
    main()
