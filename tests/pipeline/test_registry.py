"""The model registry (storage) and the deployment stage against the local stack."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest

from recsys import artifacts
from recsys.errors import ConflictError, NotFoundError, ValidationError
from recsys.feature_store.online import OnlineFeatureStore, embedding_values
from recsys.registry import ModelRegistry
from recsys.stages import deployment
from recsys.storage import get_bytes

from .conftest import write_version_artifacts


def vector_store(settings) -> np.ndarray:
    raw = get_bytes(settings, settings.names.bucket("models"), artifacts.VECTOR_STORE_KEY)
    with np.load(io.BytesIO(raw)) as npz:
        return npz["embeddings"]


def test_register_get_list_and_move_production(local_stack, model_name):
    reg = ModelRegistry(local_stack, model_name=model_name)
    assert reg.production() is None
    reg.register("v1", {"recall_at_100": 0.3}, "job-1")
    reg.register("v2", {"recall_at_100": 0.4}, "job-2")
    with pytest.raises(ConflictError):
        reg.register("v1", {}, "job-1")
    with pytest.raises(ValidationError):
        reg.register("bad version!", {}, "job")
    with pytest.raises(NotFoundError):
        reg.get("v9")
    assert reg.find("v9") is None

    assert reg.set_production("v1", None).status == "production"
    assert reg.set_production("v2", "v1").status == "production"
    assert {v.version: v.status for v in reg.list()} == {"v1": "archived", "v2": "production"}
    assert reg.get("v1").archived_at and reg.get("v2").promoted_at
    assert reg.get("v2").metrics == {"recall_at_100": 0.4}
    assert [v.version for v in reg.list()] == ["v2", "v1"]  # newest first
    assert reg.production().version == "v2" == reg.production(consistent=True).version


def test_moving_production_from_a_stale_pointer_is_a_conflict(local_stack, model_name):
    reg = ModelRegistry(local_stack, model_name=model_name)
    for v in ("v1", "v2", "v3"):
        reg.register(v, {}, "j")
    reg.set_production("v1", None)
    reg.set_production("v2", "v1")
    with pytest.raises(ConflictError, match="production changed"):
        reg.set_production("v3", "v1")  # v1 is no longer production: nothing changes
    with pytest.raises(ConflictError):
        reg.set_production("v2", None)  # already production
    assert {v.version: v.status for v in reg.list()} == {
        "v1": "archived",
        "v2": "production",
        "v3": "candidate",
    }


def _event(version: str, job_id: str, passed: bool = True) -> dict:
    return {
        "preprocessing": {"job_id": job_id, "version": version},
        "two_tower": {"model": "two_tower", "version": version},
        "ranker": {"model": "ranker", "version": version},
        "evaluation": {
            "version": version,
            "metrics": {"two_tower": {"recall_at_100": 0.5}},
            "gates": {
                "passed": passed,
                "checks": [{"name": "recall", "value": 0.5, "threshold": 0.1, "passed": passed}],
            },
        },
    }


def test_deployment_publishes_registers_and_promotes(local_stack):
    registry = ModelRegistry(local_stack)
    before = registry.production()
    version, job = f"vtest-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"
    ids, emb = write_version_artifacts(local_stack, version, job, seed=1)
    out = deployment.run(_event(version, job), local_stack)
    assert out["status"] == "production"
    assert out["previous_version"] == (before.version if before else None)
    assert (out["videos_written"], out["users_written"]) == (12, 5)
    assert registry.production().version == version
    np.testing.assert_array_equal(vector_store(local_stack), emb)
    store = OnlineFeatureStore(local_stack)
    video = store.get_videos([ids[3]])[0]
    assert video["model_version"] == version
    assert isinstance(video["embedding"], bytes)  # float32 bytes: one Binary attribute, not 64 Numbers
    np.testing.assert_allclose(embedding_values(video["embedding"]), emb[3], atol=1e-6)
    user = store.get_users(["u1"])[0]
    assert user["model_version"] == version and user["category_affinity"] == {"gaming": 1.0}
    again = deployment.run(_event(version, job), local_stack)  # a retried deployment is harmless
    assert again.get("already_deployed") is True


def test_deployment_refuses_incomplete_or_failed_versions_and_keeps_production(local_stack):
    registry = ModelRegistry(local_stack)
    good, job = f"vgood-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"
    write_version_artifacts(local_stack, good, job, seed=2)
    deployment.run(_event(good, job), local_stack)
    store_before = vector_store(local_stack)

    missing = f"vmissing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFoundError, match=r"video_embeddings\.npz"):
        deployment.run(_event(missing, job), local_stack)
    assert registry.find(missing) is None

    gated = f"vgated-{uuid.uuid4().hex[:8]}"
    write_version_artifacts(local_stack, gated, job, seed=3)
    with pytest.raises(ValidationError, match="did not pass the evaluation gates"):
        deployment.run(_event(gated, job, passed=False), local_stack)

    bad_dims = f"vdims-{uuid.uuid4().hex[:8]}"
    write_version_artifacts(local_stack, bad_dims, job, seed=4)
    buf = io.BytesIO()
    np.savez(buf, video_ids=np.array(["a", "b"]), embeddings=np.zeros((2, 8), dtype=np.float32))
    from recsys.storage import put_bytes

    put_bytes(
        local_stack,
        local_stack.names.bucket("models"),
        artifacts.two_tower_key(bad_dims, "video_embeddings.npz"),
        buf.getvalue(),
    )
    with pytest.raises(ValidationError, match="shape"):
        deployment.run(_event(bad_dims, job), local_stack)
    assert registry.find(bad_dims) is None

    assert registry.production().version == good
    np.testing.assert_array_equal(vector_store(local_stack), store_before)
