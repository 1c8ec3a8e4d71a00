"""The model registry: every registered model version with its metrics and status, in DynamoDB.

Table `model_registry` (hash `model_name` = "recsys", range `version`): `status` is candidate, production or
archived; `metrics` is a JSON string; `job_id`, `created_at`, `promoted_at`, `archived_at` (ISO-8601 UTC).
At most one version is in production. A version rolled back from carries `rolled_back_at` and
`rollback_reason`. At most one version is a canary: `canary_share` (1..50, percent of users) and
`canary_since` on its item.

This module is storage only: register, get, find, list, the production pointer (`production()` reads
it, `set_production()` moves it in one DynamoDB transaction) and the canary pointer (`canary()`,
`set_canary()`, `clear_canary()`); `serving_pointers()` reads both in one query, which is what serving polls. Publishing a version's serving data and the
promote/rollback procedure live in `recsys.release`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from recsys.aws import client
from recsys.errors import ConflictError, NotFoundError, ValidationError
from recsys.timestamps import now_iso

if TYPE_CHECKING:
    from recsys.config import Settings

MODEL_NAME = "recsys"
STATUSES = ("candidate", "production", "archived")
STATUS_INDEX = "status-index"
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version."""

    version: str
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    job_id: str = ""
    created_at: str = ""
    promoted_at: str | None = None
    archived_at: str | None = None
    rolled_back_at: str | None = None
    rollback_reason: str | None = None
    canary_share: int | None = None
    canary_since: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_version(version: str) -> str:
    """A version string as the registry and S3 keys accept it, or a ValidationError naming it."""
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        raise ValidationError(
            f"invalid model version {version!r}",
            hint="a version is 1-100 letters, digits, '.', '_' or '-', e.g. v20261124-193000-ab12cd",
        )
    return version


def _from_item(raw: dict[str, Any]) -> ModelVersion:
    item = {k: _deserializer.deserialize(v) for k, v in raw.items()}
    try:
        metrics = json.loads(item.get("metrics") or "{}")
    except json.JSONDecodeError:
        metrics = {}
    return ModelVersion(
        version=str(item["version"]),
        status=str(item.get("status", "candidate")),
        metrics=metrics,
        job_id=str(item.get("job_id", "")),
        created_at=str(item.get("created_at", "")),
        promoted_at=item.get("promoted_at"),
        archived_at=item.get("archived_at"),
        rolled_back_at=item.get("rolled_back_at"),
        rollback_reason=item.get("rollback_reason"),
        canary_share=int(item["canary_share"]) if item.get("canary_share") is not None else None,
        canary_since=item.get("canary_since"),
    )


@dataclass(frozen=True)
class ServingPointers:
    """What serving follows: the production version and the canary (None when there is none)."""

    production: ModelVersion | None
    canary: ModelVersion | None


class ModelRegistry:
    """Register, look up and list the model versions of one environment, and move its production pointer."""

    def __init__(
        self,
        settings: Settings,
        *,
        model_name: str = MODEL_NAME,
        dynamodb: Any | None = None,
    ) -> None:
        self.settings = settings
        self.model_name = model_name
        self.table = settings.names.table("model_registry")
        self._ddb = dynamodb or client("dynamodb", settings)

    def _key(self, version: str) -> dict[str, Any]:
        return {"model_name": {"S": self.model_name}, "version": {"S": version}}

    def register(self, version: str, metrics: dict[str, Any], job_id: str) -> ModelVersion:
        """Record a new candidate version; registering an existing version is a ConflictError."""
        validate_version(version)
        if not isinstance(metrics, dict):
            raise ValidationError("metrics must be an object of metric name -> value")
        entry = ModelVersion(
            version=version,
            status="candidate",
            metrics=metrics,
            job_id=str(job_id or ""),
            created_at=now_iso(),
        )
        item = {
            "model_name": self.model_name,
            "version": version,
            "status": entry.status,
            "metrics": json.dumps(metrics, sort_keys=True, default=str),
            "job_id": entry.job_id,
            "created_at": entry.created_at,
        }
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item={k: _serializer.serialize(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(version)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConflictError(
                    f"model version {version!r} is already registered",
                    hint="every pipeline run makes a new version; see `recsys model list`",
                ) from None
            raise
        return entry

    def get(self, version: str) -> ModelVersion:
        """The registered version, or NotFoundError."""
        validate_version(version)
        raw = self._ddb.get_item(TableName=self.table, Key=self._key(version), ConsistentRead=True).get(
            "Item"
        )
        if not raw:
            raise NotFoundError(
                f"model version {version!r} is not registered", hint="see `recsys model list`"
            )
        return _from_item(raw)

    def find(self, version: str) -> ModelVersion | None:
        """The registered version, or None."""
        try:
            return self.get(version)
        except NotFoundError:
            return None

    def list(self) -> list[ModelVersion]:
        """Every version of the model, newest first."""
        items: list[ModelVersion] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "model_name = :m",
            "ExpressionAttributeValues": {":m": {"S": self.model_name}},
            "ConsistentRead": True,
        }
        while True:
            response = self._ddb.query(**kwargs)
            items.extend(_from_item(raw) for raw in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(items, key=lambda v: (v.created_at, v.version), reverse=True)

    def production(self, consistent: bool = False) -> ModelVersion | None:
        """The version in production, or None before the first deployment.

        By default one query of the status index (cheap; what serving polls), which may lag a promotion by
        a moment; `consistent=True` reads the table itself (promote and rollback do).
        """
        if consistent:
            live = [v for v in self.list() if v.status == "production"]
        else:
            live = []
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": STATUS_INDEX,
                "KeyConditionExpression": "#s = :p",
                "FilterExpression": "model_name = :m",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":p": {"S": "production"}, ":m": {"S": self.model_name}},
            }
            while True:
                response = self._ddb.query(**kwargs)
                live.extend(_from_item(raw) for raw in response.get("Items", []))
                if not response.get("LastEvaluatedKey"):
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if not live:
            return None
        return max(live, key=lambda v: v.promoted_at or "")

    def serving_pointers(self) -> ServingPointers:
        """The production version and the canary in one query of the model's items (eventually consistent).

        Only the production item and a canary item come back (a filter), without their metrics.
        """
        found: list[ModelVersion] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "model_name = :m",
            "FilterExpression": "#s = :p OR attribute_exists(canary_share)",
            "ProjectionExpression": "model_name, version, #s, created_at, promoted_at, canary_share, canary_since",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":m": {"S": self.model_name}, ":p": {"S": "production"}},
        }
        while True:
            response = self._ddb.query(**kwargs)
            found.extend(_from_item(raw) for raw in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        live = [v for v in found if v.status == "production"]
        canaries = [v for v in found if v.canary_share and v.status != "production"]
        return ServingPointers(
            production=max(live, key=lambda v: v.promoted_at or "") if live else None,
            canary=max(canaries, key=lambda v: v.canary_since or "") if canaries else None,
        )

    def set_production(self, version: str, previous: str | None) -> ModelVersion:
        """Make `version` production and archive `previous` (the production version the caller read), atomically.

        One DynamoDB transaction: it fails with a ConflictError, changing nothing, when `version` is already
        production or `previous` is no longer production (another promotion ran meanwhile). Moving the
        pointer is all it does; `recsys.release.promote` publishes the serving data first.
        """
        validate_version(version)
        stamp = now_iso()
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": self._key(version),
                    "UpdateExpression": "SET #s = :prod, promoted_at = :t REMOVE archived_at",
                    "ConditionExpression": "attribute_exists(version) AND #s <> :prod",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":prod": {"S": "production"}, ":t": {"S": stamp}},
                }
            }
        ]
        if previous is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._key(previous),
                        "UpdateExpression": "SET #s = :arch, archived_at = :t",
                        "ConditionExpression": "#s = :prod",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {
                            ":arch": {"S": "archived"},
                            ":prod": {"S": "production"},
                            ":t": {"S": stamp},
                        },
                    }
                }
            )
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise ConflictError(
                    f"production changed while promoting {version!r}",
                    hint="another promotion ran at the same time; check `recsys model list` and retry",
                ) from None
            raise
        return self.get(version)

    def record_rollback(self, version: str, reason: str) -> ModelVersion:
        """Note on `version` that production was rolled back from it, and why."""
        validate_version(version)
        self._ddb.update_item(
            TableName=self.table,
            Key=self._key(version),
            UpdateExpression="SET rolled_back_at = :t, rollback_reason = :r",
            ConditionExpression="attribute_exists(version)",
            ExpressionAttributeValues={":t": {"S": now_iso()}, ":r": {"S": reason[:500]}},
        )
        return self.get(version)

    def canary(self) -> ModelVersion | None:
        """The version served to a share of users beside production, or None."""
        found = [v for v in self.list() if v.canary_share]
        return max(found, key=lambda v: v.canary_since or "") if found else None

    def set_canary(self, version: str, share: int) -> ModelVersion:
        """Serve `version` to `share` percent of users (1..50); any other canary stops."""
        validate_version(version)
        if not 1 <= int(share) <= 50:
            raise ValidationError(f"canary share must be 1..50 percent, got {share}")
        target = self.get(version)
        if target.status == "production":
            raise ConflictError(
                f"version {version!r} is already in production", hint="a canary is another version"
            )
        for other in self.list():
            if other.canary_share and other.version != version:
                self.clear_canary(other.version)
        self._ddb.update_item(
            TableName=self.table,
            Key=self._key(version),
            UpdateExpression="SET canary_share = :s, canary_since = :t",
            ExpressionAttributeValues={":s": {"N": str(int(share))}, ":t": {"S": now_iso()}},
        )
        return self.get(version)

    def clear_canary(self, version: str) -> None:
        """Stop serving `version` as a canary (no error when it is not one)."""
        validate_version(version)
        self._ddb.update_item(
            TableName=self.table,
            Key=self._key(version),
            UpdateExpression="REMOVE canary_share, canary_since",
            ConditionExpression="attribute_exists(version)",
        )
