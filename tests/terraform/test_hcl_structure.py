"""Static checks of the HCL: module layout, typed and described variables, described outputs, the root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.terraform.conftest import ENVIRONMENTS, MODULES, STACK, TERRAFORM, blocks, load_hcl

REQUIRED_MODULES = (
    "storage",
    "networking",
    "compute",
    "api",
    "monitoring",
    "ml_pipeline",
    "data_collection",
    "feature_store",
    "secrets",
)
MODULE_FILES = ("versions.tf", "main.tf", "variables.tf", "outputs.tf", "README.md")
# The one root (terraform/stack) and what each environment adds to it (terraform/environments/<env>).
STACK_FILES = ("versions.tf", "main.tf", "variables.tf", "outputs.tf", "providers.tf", "backend.tf")
ENVIRONMENT_FILES = ("backend.hcl", "terraform.tfvars")


def all_tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


@pytest.mark.parametrize("module", REQUIRED_MODULES)
def test_module_has_the_standard_files(module: str) -> None:
    missing = [f for f in MODULE_FILES if not (MODULES / module / f).is_file()]
    assert not missing, f"module {module} lacks {missing}"


def test_every_variable_is_typed_and_described() -> None:
    problems = []
    for path in all_tf_files():
        for name, body in blocks(load_hcl(path), "variable").items():
            if not body.get("type"):
                problems.append(f"{path.relative_to(TERRAFORM)}: variable {name} has no type")
            if not str(body.get("description", "")).strip():
                problems.append(f"{path.relative_to(TERRAFORM)}: variable {name} has no description")
    assert not problems, "\n".join(problems)
    assert sum(len(blocks(load_hcl(p), "variable")) for p in all_tf_files()) > 50


def test_every_output_is_described() -> None:
    problems = [
        f"{path.relative_to(TERRAFORM)}: output {name}"
        for path in all_tf_files()
        for name, body in blocks(load_hcl(path), "output").items()
        if not str(body.get("description", "")).strip()
    ]
    assert not problems, "outputs without a description:\n" + "\n".join(problems)


def test_versions_pin_terraform_and_providers() -> None:
    for versions in sorted(TERRAFORM.rglob("versions.tf")):
        terraform = load_hcl(versions)["terraform"][0]
        assert terraform.get("required_version"), versions
        for provider in terraform.get("required_providers", [{}]):
            for name, spec in provider.items():
                assert spec.get("source") and spec.get("version"), f"{versions}: provider {name} unpinned"


def test_stack_root_layout() -> None:
    missing = [f for f in STACK_FILES if not (STACK / f).is_file()]
    assert not missing, f"terraform/stack lacks {missing}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_holds_only_tfvars_and_backend_config(env: str) -> None:
    """No per-environment copy of the root: an environment is its tfvars and its backend config."""
    env_dir = TERRAFORM / "environments" / env
    missing = [f for f in ENVIRONMENT_FILES if not (env_dir / f).is_file()]
    assert not missing, f"environments/{env} lacks {missing}"
    tf_files = sorted(p.name for p in env_dir.glob("*.tf"))
    assert not tf_files, f"environments/{env} has .tf files {tf_files}; the root is terraform/stack"


def test_backend_is_s3_with_locking_and_no_fixed_key() -> None:
    backend = load_hcl(STACK / "backend.tf")["terraform"][0]["backend"][0]["s3"]
    assert backend["use_lockfile"] is True
    assert backend["encrypt"] is True
    assert "key" not in backend, "the state key is per environment (environments/<env>/backend.hcl)"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_backend_config_gives_each_environment_its_own_state(env: str) -> None:
    partial = load_hcl(TERRAFORM / "environments" / env / "backend.hcl")
    assert partial.get("bucket") and partial.get("region")
    assert partial["key"] == f"recsys/{env}/terraform.tfstate"


def test_provider_sets_default_tags() -> None:
    provider = load_hcl(STACK / "providers.tf")["provider"][0]["aws"]
    tags = provider["default_tags"][0]["tags"]
    assert {"Project", "Environment", "Stack", "ManagedBy"} <= set(tags)


def test_root_reads_the_catalogue_and_the_asl_file() -> None:
    main = (STACK / "main.tf").read_text()
    assert 'repo_root   = "${path.module}/../.."' in main
    assert (STACK / "../../recsys/resources/catalog.json").resolve().is_file()
    assert 'jsondecode(file("${local.repo_root}/recsys/resources/catalog.json"))' in main
    assert "local.catalog.state_machines.ml_pipeline.definition" in main
    ml = (MODULES / "ml_pipeline" / "main.tf").read_text()
    assert "templatefile(var.definition_file, local.template_vars)" in ml


def test_stack_uses_every_module_by_a_relative_source() -> None:
    sources = {name: body["source"] for name, body in blocks(load_hcl(STACK / "main.tf"), "module").items()}
    assert set(REQUIRED_MODULES) <= set(sources)
    for name, source in sources.items():
        assert source == f"../modules/{name}", f"module {name}: source {source!r}"
        assert (STACK / source / "main.tf").is_file(), f"module {name}: {source} does not exist"


def test_prod_retains_and_dev_staging_destroy_cleanly() -> None:
    storage = (MODULES / "storage" / "main.tf").read_text()
    assert "prevent_destroy = true" in storage
    dynamo = (MODULES / "storage" / "dynamodb.tf").read_text()
    assert "deletion_protection_enabled = var.retain" in dynamo
    main = (STACK / "main.tf").read_text()
    assert 'retain      = var.removal_policy == "retain"' in main
    assert "recovery_window_days      = local.retain ? 30 : 0" in main


def test_star_resources_are_commented() -> None:
    """A "*" resource is allowed only where AWS requires it, with a comment saying so just above."""
    problems = []
    for path in all_tf_files():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() in ('resources = ["*"]', 'Resource  = "*"', 'Resource = "*"'):
                context = "\n".join(lines[max(0, i - 8) : i])
                if "*" not in context or "#" not in context:
                    problems.append(f"{path.relative_to(TERRAFORM)}:{i + 1}")
    assert not problems, 'uncommented "*" resources: ' + ", ".join(problems)


@pytest.mark.parametrize("module", REQUIRED_MODULES)
def test_module_readme_lists_every_input_and_output(module: str) -> None:
    readme = (MODULES / module / "README.md").read_text()
    names = [*blocks(load_hcl(MODULES / module / "variables.tf"), "variable")]
    names += [*blocks(load_hcl(MODULES / module / "outputs.tf"), "output")]
    missing = [n for n in names if f"`{n}`" not in readme]
    assert not missing, f"modules/{module}/README.md does not mention {missing}"


def test_every_function_has_an_explicit_least_privilege_entry() -> None:
    """compute/access.tf: one entry per catalogue function, each naming every kind of grant (no silent default),
    and each kind computed exactly once in the grants."""
    import re

    from recsys.catalog import load_catalog

    path = MODULES / "compute" / "access.tf"
    found = load_hcl(path)["locals"][0]
    access, kinds = found["access"], set(found["default_access"])
    assert sorted(access) == sorted(load_catalog()["functions"])
    assert {k: sorted(set(v) ^ kinds) for k, v in access.items() if set(v) != kinds} == {}
    grants = path.read_text().split("grants = {", 1)[1]
    counts = {kind: len(re.findall(rf"^\s+{kind}\s+=", grants, flags=re.M)) for kind in kinds}
    assert counts == dict.fromkeys(kinds, 1)
