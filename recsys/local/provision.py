"""Idempotent provisioning of the data plane from the resource catalogue (the local twin of Terraform).

Each `ensure_*` creates what is missing and leaves what exists alone, so `recsys local up` can run
any number of times without errors or duplicates.
"""

from __future__ import annotations

import json
import secrets as pysecrets
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from recsys.aws import client
from recsys.catalog import LOCAL_ACCOUNT_ID, load_catalog
from recsys.config import Settings

_GLUE_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


@dataclass
class ProvisionReport:
    """What one provisioning pass created and what it found in place."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, created: bool) -> None:
        (self.created if created else self.existing).append(f"{kind}:{name}")

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing}


_GLUE_JSON = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def ensure_buckets(settings: Settings, report: ProvisionReport) -> None:
    s3 = client("s3", settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for name in settings.names.buckets.values():
        created = name not in existing
        if created:
            kwargs: dict[str, Any] = {"Bucket": name}
            if settings.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
            s3.create_bucket(**kwargs)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        report.add("bucket", name, created)


def table_definition(key: str, name: str) -> dict[str, Any]:
    """The CreateTable arguments of catalogue table `key` (on-demand billing)."""
    spec = load_catalog()["tables"][key]
    attrs: dict[str, str] = {}

    def key_schema(hash_key: dict, range_key: dict | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": hash_key["name"], "KeyType": "HASH"}]
        attrs[hash_key["name"]] = hash_key["type"]
        if range_key:
            schema.append({"AttributeName": range_key["name"], "KeyType": "RANGE"})
            attrs[range_key["name"]] = range_key["type"]
        return schema

    definition: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema(spec["hash_key"], spec.get("range_key")),
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
    gsis = [
        {
            "IndexName": gsi["name"],
            "KeySchema": key_schema(gsi["hash_key"], gsi.get("range_key")),
            "Projection": {"ProjectionType": gsi.get("projection", "ALL")},
        }
        for gsi in spec.get("global_secondary_indexes", [])
    ]
    if gsis:
        definition["GlobalSecondaryIndexes"] = gsis
    definition["AttributeDefinitions"] = [{"AttributeName": n, "AttributeType": t} for n, t in attrs.items()]
    return definition


def ensure_tables(settings: Settings, report: ProvisionReport) -> None:
    ddb = client("dynamodb", settings)
    existing = set(_all_tables(ddb))
    for key, name in settings.names.tables.items():
        created = name not in existing
        if created:
            try:
                ddb.create_table(**table_definition(key, name))
            except ClientError as exc:
                if _code(exc) != "ResourceInUseException":
                    raise
                created = False
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            ttl = load_catalog()["tables"][key].get("ttl_attribute")
            if ttl:
                ddb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
                )
        report.add("table", name, created)


def _all_tables(ddb) -> list[str]:
    names: list[str] = []
    for page in ddb.get_paginator("list_tables").paginate():
        names.extend(page.get("TableNames", []))
    return names


def ensure_streams(settings: Settings, report: ProvisionReport) -> None:
    kinesis = client("kinesis", settings)
    existing = set(kinesis.list_streams().get("StreamNames", []))
    for name in settings.names.streams.values():
        created = name not in existing
        if created:
            kinesis.create_stream(StreamName=name, ShardCount=settings.profile.kinesis_shards)
            kinesis.get_waiter("stream_exists").wait(
                StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
        report.add("stream", name, created)


def ensure_firehose(settings: Settings, report: ProvisionReport) -> None:
    firehose = client("firehose", settings)
    existing = set(firehose.list_delivery_streams().get("DeliveryStreamNames", []))
    role = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{settings.stack_name}-firehose"
    for key, name in settings.names.firehose.items():
        spec = load_catalog()["firehose"][key]
        created = name not in existing
        if created:
            stream = settings.names.streams[spec["source_stream"]]
            bucket = settings.names.buckets[spec["destination_bucket"]]
            firehose.create_delivery_stream(
                DeliveryStreamName=name,
                DeliveryStreamType="KinesisStreamAsSource",
                KinesisStreamSourceConfiguration={
                    "KinesisStreamARN": f"arn:aws:kinesis:{settings.region}:{LOCAL_ACCOUNT_ID}:stream/{stream}",
                    "RoleARN": role,
                },
                ExtendedS3DestinationConfiguration={
                    "RoleARN": role,
                    "BucketARN": f"arn:aws:s3:::{bucket}",
                    "Prefix": spec["prefix"],
                    "ErrorOutputPrefix": spec["error_output_prefix"],
                    "BufferingHints": {
                        "IntervalInSeconds": spec["buffering_seconds"],
                        "SizeInMBs": spec["buffering_mb"],
                    },
                    "CompressionFormat": "GZIP",
                },
            )
        report.add("firehose", name, created)


def initial_secret_value(
    key: str, settings: Settings, redis_host: str | None, redis_port: int | None
) -> dict:
    """The value a freshly provisioned local secret starts with (random API key; Redis location)."""
    if key == "redis_credentials":
        return {"host": redis_host or "127.0.0.1", "port": redis_port or 6379, "auth_token": "", "tls": False}
    if key == "api_keys":
        return {
            "external_api_key": pysecrets.token_urlsafe(24),
            "operator_api_key": pysecrets.token_urlsafe(24),
        }
    return {"feature_flags": {"ranking_enabled": True, "diversity_enabled": True}}


def ensure_secrets(
    settings: Settings, report: ProvisionReport, redis_host: str | None = None, redis_port: int | None = None
) -> None:
    sm = client("secretsmanager", settings)
    for key, name in settings.names.secrets.items():
        description = load_catalog()["secrets"][key]["description"]
        value = initial_secret_value(key, settings, redis_host, redis_port)
        try:
            sm.describe_secret(SecretId=name)
            created = False
            if key == "redis_credentials" and redis_port is not None:  # the local Redis may have moved
                sm.put_secret_value(SecretId=name, SecretString=json.dumps(value))
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            sm.create_secret(Name=name, Description=description, SecretString=json.dumps(value))
            created = True
        report.add("secret", name, created)


def glue_table_input(settings: Settings, key: str) -> dict[str, Any]:
    """The Glue TableInput of catalogue table `key`: Parquet feature tables, or the raw events (JSON lines,
    date/hour partitions found by projection). Terraform's feature_store module builds the same table."""
    spec = load_catalog()["glue"]["tables"][key]
    fmt = spec.get("format", "parquet")
    location = f"s3://{settings.names.bucket(spec['bucket'])}/{spec['prefix']}"
    parameters = {"classification": fmt, "EXTERNAL": "TRUE"}
    parameters |= {k: v.replace("{location}", location) for k, v in spec.get("parameters", {}).items()}
    return {
        "Name": key,
        "Description": spec["description"],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [{"Name": c["name"], "Type": c["type"]} for c in spec.get("partition_keys", [])],
        "StorageDescriptor": {
            "Columns": [{"Name": c["name"], "Type": c["type"]} for c in spec["columns"]],
            "Location": location,
            **(_GLUE_JSON if fmt == "json" else _GLUE_PARQUET),
        },
    }


def ensure_glue(settings: Settings, report: ProvisionReport) -> None:
    glue = client("glue", settings)
    db = settings.names.glue_database
    try:
        glue.get_database(Name=db)
        report.add("glue_database", db, False)
    except ClientError as exc:
        if _code(exc) != "EntityNotFoundException":
            raise
        glue.create_database(
            DatabaseInput={"Name": db, "Description": load_catalog()["glue"]["database"]["description"]}
        )
        report.add("glue_database", db, True)
    for key in load_catalog()["glue"]["tables"]:
        try:
            glue.get_table(DatabaseName=db, Name=key)
            report.add("glue_table", f"{db}.{key}", False)
            continue
        except ClientError as exc:
            if _code(exc) != "EntityNotFoundException":
                raise
        glue.create_table(DatabaseName=db, TableInput=glue_table_input(settings, key))
        report.add("glue_table", f"{db}.{key}", True)


def provision(
    settings: Settings, redis_host: str | None = None, redis_port: int | None = None
) -> ProvisionReport:
    """Create every catalogue resource that is missing; leave the rest as it is."""
    report = ProvisionReport()
    ensure_buckets(settings, report)
    ensure_tables(settings, report)
    ensure_streams(settings, report)
    ensure_firehose(settings, report)
    ensure_secrets(settings, report, redis_host, redis_port)
    ensure_glue(settings, report)
    return report


def missing_resources(settings: Settings) -> list[str]:
    """Catalogue resources that do not exist on the endpoint (empty when fully provisioned)."""
    missing: list[str] = []
    buckets = {b["Name"] for b in client("s3", settings).list_buckets().get("Buckets", [])}
    missing += [f"bucket:{n}" for n in settings.names.buckets.values() if n not in buckets]
    tables = set(_all_tables(client("dynamodb", settings)))
    missing += [f"table:{n}" for n in settings.names.tables.values() if n not in tables]
    streams = set(client("kinesis", settings).list_streams().get("StreamNames", []))
    missing += [f"stream:{n}" for n in settings.names.streams.values() if n not in streams]
    hoses = set(client("firehose", settings).list_delivery_streams().get("DeliveryStreamNames", []))
    missing += [f"firehose:{n}" for n in settings.names.firehose.values() if n not in hoses]
    sm = client("secretsmanager", settings)
    secret_names = {
        s["Name"] for p in sm.get_paginator("list_secrets").paginate() for s in p.get("SecretList", [])
    }
    missing += [f"secret:{n}" for n in settings.names.secrets.values() if n not in secret_names]
    glue = client("glue", settings)
    try:
        tables_in_db = {
            t["Name"] for t in glue.get_tables(DatabaseName=settings.names.glue_database)["TableList"]
        }
    except ClientError:
        missing.append(f"glue_database:{settings.names.glue_database}")
        tables_in_db = set()
    missing += [f"glue_table:{t}" for t in load_catalog()["glue"]["tables"] if t not in tables_in_db]
    return missing
