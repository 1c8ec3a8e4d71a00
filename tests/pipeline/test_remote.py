"""Starting and following the deployed state machine, against the local stack's Step Functions API (moto)."""

from __future__ import annotations

import json
import uuid

import pytest

from recsys.aws import client
from recsys.errors import NotFoundError
from recsys.pipeline import remote
from recsys.pipeline.definition import placeholder_functions, render


def ensure_state_machine(settings) -> str:
    sfn = client("stepfunctions", settings)
    name = settings.names.state_machines["ml_pipeline"]
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == name:
            return machine["stateMachineArn"]
    arns = {
        k: f"arn:aws:lambda:{settings.region}:123456789012:function:{settings.names.function(k)}"
        for k in placeholder_functions()
    }
    return sfn.create_state_machine(
        name=name,
        definition=json.dumps(render(arns)),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]


def test_start_follow_describe_and_stop(local_stack):
    arn = ensure_state_machine(local_stack)
    assert remote.state_machine_arn(local_stack) == arn  # derived from the caller's account and the catalogue
    execution_id = f"exec-test-{uuid.uuid4().hex[:8]}"
    execution_arn = remote.start(local_stack, {"source": {"kind": "synthetic"}}, execution_id)
    assert execution_arn == remote.execution_arn(local_stack, execution_id)
    assert remote.latest_execution_id(local_stack) == execution_id
    assert remote.recent_executions(local_stack, 5)[0]["execution_id"] == execution_id

    seen = []
    running = remote.follow(
        local_stack, execution_id, listener=seen.append, timeout_s=0, sleep=lambda s: None
    )
    assert running["status"] == "RUNNING" and running["mode"] == "remote"
    assert running["input"] == {"source": {"kind": "synthetic"}}

    client("stepfunctions", local_stack).stop_execution(
        executionArn=execution_arn, error="Stopped", cause="test"
    )
    stopped = remote.follow(local_stack, execution_id, sleep=lambda s: None)
    assert stopped["status"] == "ABORTED"
    assert stopped["stopped_at"]


def test_unknown_execution_is_not_found(local_stack):
    ensure_state_machine(local_stack)
    with pytest.raises(NotFoundError):
        remote.describe(local_stack, "exec-that-never-ran")
