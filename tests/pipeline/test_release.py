"""Releases (`recsys.release`): promote, rollback, failed publication, serving-bundle formats."""

from __future__ import annotations

import time
import uuid

import polars as pl
import pytest

from recsys import release
from recsys.click_through import Rate
from recsys.errors import ConflictError, ErrorCode, NotFoundError, RecsysError, ValidationError
from recsys.registry import ModelRegistry
from recsys.serving import bundle
from recsys.storage import put_bytes, put_parquet

from .conftest import write_version_artifacts


def test_promote_rollback_and_promote_again(local_stack, model_name):
    published = []
    reg = ModelRegistry(local_stack, model_name=model_name)

    def publisher(version):
        published.append(version.version)
        return {"published": version.version}

    reg.register("v1", {"recall_at_100": 0.3}, "job-1")
    reg.register("v2", {"recall_at_100": 0.4}, "job-2")
    with pytest.raises(NotFoundError):
        release.promote(local_stack, "v9", registry=reg, publisher=publisher)

    first = release.promote(local_stack, "v1", registry=reg, publisher=publisher)
    assert (first.version.status, first.previous_version, first.changed) == ("production", None, True)
    second = release.promote(local_stack, "v2", registry=reg, publisher=publisher)
    assert second.previous_version == "v1" and second.published == {"published": "v2"}
    assert {v.version: v.status for v in reg.list()} == {"v1": "archived", "v2": "production"}

    back = release.rollback(local_stack, registry=reg, publisher=publisher)
    assert (back.version.version, back.previous_version) == ("v1", "v2")
    assert reg.production().version == "v1" and reg.get("v2").status == "archived"
    assert published == ["v1", "v2", "v1"]
    again = release.promote(local_stack, "v1", registry=reg, publisher=publisher)
    assert again.changed is False and again.version.version == "v1"  # promoting production: a no-op
    assert published == ["v1", "v2", "v1"]


def test_rollback_without_archived_version_is_an_error(local_stack, model_name):
    reg = ModelRegistry(local_stack, model_name=model_name)
    reg.register("v1", {}, "j")
    release.promote(local_stack, "v1", registry=reg, publisher=lambda v: None)
    with pytest.raises(NotFoundError, match="no archived version"):
        release.rollback(local_stack, registry=reg, publisher=lambda v: None)


def test_failed_publication_leaves_production_unchanged_and_republishes_it(local_stack, model_name):
    calls = []

    def publisher(version):
        calls.append(version.version)
        if version.version == "v2":
            raise RuntimeError("DynamoDB throttled halfway")

    reg = ModelRegistry(local_stack, model_name=model_name)
    reg.register("v1", {}, "j1")
    release.promote(local_stack, "v1", registry=reg, publisher=publisher)
    reg.register("v2", {}, "j2")
    with pytest.raises(RuntimeError):
        release.promote(local_stack, "v2", registry=reg, publisher=publisher)
    assert reg.production().version == "v1"
    assert reg.get("v2").status == "candidate"
    assert calls == ["v1", "v2", "v1"]  # v1's data was put back after v2 failed midway


# ----- serving-bundle formats


def _two_deployed_versions(settings, model_name):
    """Versions a (archived) and b (production), each with artifacts and a current-format bundle."""
    tag = uuid.uuid4().hex[:8]
    a, b = f"vfmt-a-{tag}", f"vfmt-b-{tag}"
    reg = ModelRegistry(settings, model_name=model_name)
    for i, v in enumerate((a, b)):
        write_version_artifacts(settings, v, f"job-{v}", seed=10 + i)
        bundle.write_bundle(settings, v)
        reg.register(v, {}, f"job-{v}")
        release.promote(settings, v, registry=reg, publisher=lambda _v: None)
    return reg, a, b


def _rewrite_bundle(settings, version, monkeypatch, fmt):
    """Re-upload a version's bundle as code writing format `fmt` would have (None: no format recorded)."""
    arrays = bundle.build_bundle(settings, version)
    with monkeypatch.context() as m:
        m.setattr(bundle, "BUNDLE_FORMAT", fmt)
        data = bundle.encode_bundle(arrays, version)
    put_bytes(settings, settings.names.bucket("models"), bundle.bundle_key(version), data)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [(7, "has format 7, newer than this code's format 2"), (None, "records no format")],
)
def test_rollback_to_a_bundle_of_unreadable_format_is_refused_before_production_changes(
    local_stack, model_name, monkeypatch, fmt, message
):
    reg, a, b = _two_deployed_versions(local_stack, model_name)
    _rewrite_bundle(local_stack, a, monkeypatch, fmt)
    published = []
    with pytest.raises(ValidationError, match=rf"model version '{a}' {message}") as err:
        release.rollback(local_stack, registry=reg, publisher=published.append)
    assert f"recsys cache bundle --version {a}" in err.value.hint
    assert published == []  # refused before anything was published
    assert reg.production(consistent=True).version == b
    assert reg.get(a).status == "archived"
    with pytest.raises(ValidationError, match=rf"model version '{a}' {message}"):
        bundle.load_bundle(local_stack, a)  # and serving refuses to load it the same way


def test_a_bundle_of_an_older_readable_format_rolls_back_and_loads(local_stack, model_name, monkeypatch):
    reg, a, b = _two_deployed_versions(local_stack, model_name)  # bundles of format 2
    # This code moves on to format 3 and still reads format 2: a's bundle loads as it is.
    monkeypatch.setattr(bundle, "BUNDLE_FORMAT", 3)
    monkeypatch.setattr(bundle, "READABLE_FORMATS", frozenset({2, 3}))
    assert bundle.check_bundle(local_stack, a) == 2
    back = release.rollback(local_stack, registry=reg, publisher=lambda _v: None)
    assert back.version.version == a and back.previous_version == b
    assert sorted(bundle.load_bundle(local_stack, a)["video_ids"].tolist()) == sorted(
        f"v{i}" for i in range(12)
    )

    # Format 3 no longer reads format 2: b's bundle is refused, naming version and format.
    monkeypatch.setattr(bundle, "READABLE_FORMATS", frozenset({3}))
    with pytest.raises(
        ValidationError, match=rf"model version '{b}' has format 2, which this code no longer"
    ):
        release.promote(local_stack, b, registry=reg, publisher=lambda _v: None)
    assert reg.production(consistent=True).version == a


def test_a_version_without_bundle_is_promoted(local_stack, model_name):
    """No bundle yet: nothing to check (the model store builds it on first load)."""
    reg = ModelRegistry(local_stack, model_name=model_name)
    version = f"vnobundle-{uuid.uuid4().hex[:8]}"
    reg.register(version, {}, "j")
    assert bundle.check_bundle(local_stack, version) is None
    assert release.promote(local_stack, version, registry=reg, publisher=lambda _v: None).changed


# ----- canaries: promote --require-canary-no-worse


def _with_canary(settings, model_name) -> tuple[ModelRegistry, str, str]:
    """A registry with a production version and a canary of another version."""
    tag = uuid.uuid4().hex[:8]
    production, canary = f"vprod-{tag}", f"vcanary-{tag}"
    reg = ModelRegistry(settings, model_name=model_name)
    reg.register(production, {}, "job-prod")
    reg.register(canary, {}, "job-canary")
    release.promote(settings, production, registry=reg, publisher=lambda v: None)
    reg.set_canary(canary, 10)
    return reg, production, canary


def test_promote_refuses_a_worse_canary_or_too_little_traffic_and_changes_nothing(local_stack, model_name):
    reg, production, canary = _with_canary(local_stack, model_name)
    published = []

    def attempt(rates):
        with pytest.raises(RecsysError) as refused:
            release.promote(local_stack, canary, registry=reg, publisher=published.append,
                            require_canary_no_worse=True, rates=rates)  # fmt: skip
        assert refused.value.code == ErrorCode.GATE_FAILED and "\n" not in refused.value.message
        assert reg.production(consistent=True).version == production and reg.canary().version == canary
        return refused.value.message

    worse = attempt({("canary", canary): Rate(20, 1000), ("production", production): Rate(100, 1000)})
    assert "worse click-through" in worse and "2.00%" in worse and "10.00%" in worse
    assert worse.endswith("production unchanged")
    thin = attempt({("canary", canary): Rate(3, 40), ("production", production): Rate(100, 1000)})
    assert "too little traffic" in thin and "40 and 1000 impressions (each needs 500)" in thin
    assert "too little traffic" in attempt({})  # nothing merged since the canary started
    assert published == []
    reg.register(f"{canary}-other", {}, "job-other")
    with pytest.raises(ConflictError, match="not the running canary"):
        release.promote(local_stack, f"{canary}-other", registry=reg, require_canary_no_worse=True)
    assert reg.production(consistent=True).version == production


def test_promote_accepts_a_canary_no_worse_in_the_merged_feedback_and_stops_it(local_stack, model_name):
    reg, production, canary = _with_canary(local_stack, model_name)
    now_ms = int(time.time() * 1000) + 1000  # shown after the canary started

    def shown(variant: str, version: str, n: int, engaged: int) -> pl.DataFrame:
        return pl.DataFrame(
            {"variant": [variant] * n, "model_version": [version] * n, "video_id": [f"x{i % 7}" for i in range(n)],
             "label": [int(i < engaged) for i in range(n)], "shown_at_ms": [now_ms] * n}
        )  # fmt: skip

    frame = pl.concat([shown("canary", canary, 800, 80), shown("production", production, 1200, 120)])
    put_parquet(
        local_stack, local_stack.names.bucket("data"), f"feedback/date=2026-11-27/{canary}.parquet", frame
    )
    result = release.promote(
        local_stack, canary, registry=reg, publisher=lambda v: None, require_canary_no_worse=True
    )
    check = result.canary_check
    assert check.verdict == "no_worse" and (check.canary.impressions, check.production.impressions) == (
        800,
        1200,
    )
    assert result.changed and reg.production(consistent=True).version == canary
    assert reg.canary() is None and reg.get(canary).canary_share is None  # the canary is production now
