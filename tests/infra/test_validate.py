"""`make validate` bites: one broken argument in a copy of a real infra file fails, naming the
file, the resource and the argument; the real infra/ passes. Against the google 6.50.0 schema
read from the pinned cdktf package (built by `make validate`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.validate import check, schema, terraform
from infra.validate.check import Problem
from infra.validate.schema import Schema
from tests.infra.agreement import ROOT

INFRA = ROOT / "infra"
needs_terraform = pytest.mark.skipif(
    terraform.terraform_binary() is None, reason="terraform is not installed"
)


@dataclass(frozen=True)
class Break:
    """One mistake in one real file: old text replaced by new, reported at resource.argument."""

    name: str
    file: str
    old: str
    new: str
    resource: str
    argument: str
    words: str = ""


BREAKS = [
    Break(
        "misspelt_argument",
        "functions.tf",
        "    entry_point     = each.key\n",
        "    entry_pointt    = each.key\n",
        "google_cloudfunctions2_function.function",
        "entry_pointt",
    ),
    Break(
        "missing_required_argument",
        "iam.tf",
        '  account_id   = "${local.name}-webhooks"\n',
        "",
        "google_service_account.webhooks",
        "account_id",
    ),
    Break(
        "missing_required_nested_argument",
        "iam.tf",
        '    title       = "${local.name} state only"\n',
        "",
        "google_project_iam_member.firestore_user",
        "title",
    ),
    Break(
        "computed_only_attribute_set",
        "functions.tf",
        "  uniform_bucket_level_access = true\n",
        '  uniform_bucket_level_access = true\n  self_link = "https://example.invalid/b"\n',
        "google_storage_bucket.source",
        "self_link",
    ),
]


@pytest.fixture(scope="module")
def google() -> Schema:
    if not schema.SCHEMA_FILE.exists():
        pytest.fail(f"{schema.SCHEMA_FILE} is missing: run `make validate` to build it.")
    return schema.load()


def broken_copy(tmp_path: Path, case: Break) -> Path:
    """infra/*.tf copied to tmp_path, with the case's old text replaced once in its file."""
    for path in INFRA.glob("*.tf"):
        shutil.copy(path, tmp_path / path.name)
    text = (tmp_path / case.file).read_text()
    assert text.count(case.old) == 1, f"{case.old!r} is not once in infra/{case.file}: update it"
    (tmp_path / case.file).write_text(text.replace(case.old, case.new))
    return tmp_path


def named(problems: list[Problem], case: Break) -> list[Problem]:
    """The problems naming the case's file (a line may follow), resource and argument."""
    return [
        p
        for p in problems
        if Path(p.file.split(":")[0]).name == case.file
        and p.address == case.resource
        and p.argument.split(".")[-1] == case.argument
    ]


def test_the_schema_is_google_6_50_0_as_the_assembly_describes_it(google: Schema) -> None:
    assert google["provider_version"] == "6.50.0"
    account = google["resource"]["google_service_account"]
    assert account["attributes"]["account_id"]["required"]
    assert account["attributes"]["email"]["computed_only"]
    assert not account["attributes"]["display_name"]["computed_only"]
    function = google["resource"]["google_cloudfunctions2_function"]
    assert function["blocks"]["build_config"]["nesting"] == "single"
    service = function["blocks"]["service_config"]["block"]
    assert service["blocks"]["secret_environment_variables"]["nesting"] == "list"
    assert service["attributes"]["environment_variables"]["type"] == ["map", "string"]
    assert google["resource"]["google_storage_bucket"]["attributes"]["self_link"]["computed_only"]
    assert "project" in google["provider"]["attributes"]
    assert "google_secret_manager_secret_version" in google["data"]


def test_the_real_infra_passes_the_schema_checker(google: Schema) -> None:
    assert check.check(INFRA, google) == []


@pytest.mark.parametrize("case", BREAKS, ids=lambda case: case.name)
def test_one_broken_argument_fails_the_schema_checker_naming_it(
    google: Schema, tmp_path: Path, case: Break
) -> None:
    problems = check.check(broken_copy(tmp_path, case), google)
    assert len(problems) == 1, problems
    assert named(problems, case), problems
    assert str(problems[0]).startswith(f"{tmp_path / case.file}:")  # the resource's line


def test_a_misspelt_argument_gets_a_did_you_mean(google: Schema, tmp_path: Path) -> None:
    (problem,) = check.check(broken_copy(tmp_path, BREAKS[0]), google)
    assert problem.argument == "build_config.entry_pointt"
    assert 'did you mean "entry_point"' in problem.message


MORE = [
    Break(
        "nested_computed_only_attribute_set",
        "functions.tf",
        "    all_traffic_on_latest_revision = true\n",
        '    all_traffic_on_latest_revision = true\n    uri = "https://example.invalid"\n',
        "google_cloudfunctions2_function.function",
        "uri",
        "computed by the provider",
    ),
    Break(
        "wrong_literal_type",
        "functions.tf",
        "  uniform_bucket_level_access = true\n",
        '  uniform_bucket_level_access = "sometimes"\n',
        "google_storage_bucket.source",
        "uniform_bucket_level_access",
        "expects bool",
    ),
    Break(
        "single_block_twice",
        "functions.tf",
        "  versioning {\n    enabled = true\n  }\n",
        "  versioning {\n    enabled = true\n  }\n  versioning {\n    enabled = false\n  }\n",
        "google_storage_bucket.source",
        "versioning",
        "at most one",
    ),
    Break(
        "unknown_block",
        "functions.tf",
        "  versioning {\n    enabled = true\n  }\n",
        "  versionin {\n    enabled = true\n  }\n",
        "google_storage_bucket.source",
        "versionin",
        'unknown block (not in the schema); did you mean "versioning"',
    ),
    Break(
        "block_written_as_argument",
        "functions.tf",
        "  versioning {\n    enabled = true\n  }\n",
        "  versioning = { enabled = true }\n",
        "google_storage_bucket.source",
        "versioning",
        "is a block, not an argument",
    ),
    Break(
        "unknown_attribute_reference",
        "functions.tf",
        "  bucket = google_storage_bucket.source.name\n  source",
        "  bucket = google_storage_bucket.source.nmae\n  source",
        "google_storage_bucket_object.source",
        "bucket",
        'has no attribute "nmae"; did you mean "name"',
    ),
    Break(
        "undeclared_resource_reference",
        "functions.tf",
        "  bucket = google_storage_bucket.source.name\n  source",
        "  bucket = google_storage_bucket.sauce.name\n  source",
        "google_storage_bucket_object.source",
        "bucket",
        "google_storage_bucket.sauce, which is not declared",
    ),
]


@pytest.mark.parametrize("case", MORE, ids=lambda case: case.name)
def test_other_schema_mistakes_fail_naming_the_argument(
    google: Schema, tmp_path: Path, case: Break
) -> None:
    problems = check.check(broken_copy(tmp_path, case), google)
    assert len(problems) == 1, problems
    assert named(problems, case), problems
    assert case.words in problems[0].message


def test_a_pin_that_excludes_the_schema_version_fails(google: Schema, tmp_path: Path) -> None:
    pin = Break("pin", "versions.tf", '"~> 6.20"', '"~> 5.20"', "", "")
    problems = check.check(broken_copy(tmp_path, pin), google)
    assert [(Path(p.file).name, p.argument) for p in problems] == [
        ("versions.tf", "google.version")
    ]
    assert "excludes 6.50.0" in problems[0].message


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("6.50.0", "~> 6.20", True),
        ("6.50.0", "~> 6.20.0", False),
        ("6.50.0", "~> 6.50.0", True),
        ("6.50.0", "~> 7.0", False),
        ("6.50.0", ">= 6.0, < 7.0", True),
        ("6.50.0", ">= 6.51", False),
        ("6.50.0", "6.50.0", True),
        ("6.50.0", "!= 6.50.0", False),
    ],
)
def test_version_constraints_read_as_terraform_reads_them(
    version: str, constraint: str, ok: bool
) -> None:
    assert check.satisfies(version, constraint) is ok


@needs_terraform
def test_the_real_infra_passes_terraform_validate(google: Schema) -> None:
    assert terraform.validate(INFRA, google["provider_version"]) == []


@needs_terraform
@pytest.mark.parametrize("case", BREAKS, ids=lambda case: case.name)
def test_one_broken_argument_fails_terraform_validate_naming_it(
    google: Schema, tmp_path: Path, case: Break
) -> None:
    problems = terraform.validate(broken_copy(tmp_path, case), google["provider_version"])
    assert len(problems) == 1, problems
    assert named(problems, case), problems


def test_the_plugin_refuses_to_run_outside_terraform() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_PLUGIN_MAGIC_COOKIE"}
    run = subprocess.run(
        [sys.executable, "-m", "infra.validate.plugin"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=30,
        check=False,
    )
    assert run.returncode == 1
    assert "Terraform starts it" in run.stderr


def test_the_makefile_downloads_the_package_the_schema_reader_expects() -> None:
    import re
    from pathlib import Path

    from infra.validate import schema

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"^TFSCHEMA_PACKAGE_VERSION := (\S+)$", makefile, re.M)
    assert pinned is not None
    assert pinned.group(1) == schema.PACKAGE_VERSION
