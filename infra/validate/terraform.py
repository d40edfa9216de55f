"""Real `terraform validate` of infra/, offline, with the schema-serving plugin as the provider.

A temporary copy of infra/*.tf is initialised with `-plugin-dir` pointing at a directory that
holds only our plugin, under a CLI configuration whose one installation method is that
filesystem mirror, so Terraform can never reach a registry. Init writes its lock file into
the copy; infra/ itself is never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.validate.check import Problem, shown
from infra.validate.schema import ROOT, SCHEMA_FILE

PLUGINS = ROOT / ".cache" / "tfschema" / "plugins"
_CONTEXT = re.compile(r'^(resource|data) "([^"]+)" "([^"]+)"')
_NAME = re.compile(r'"([^"]+)"')


def terraform_binary() -> str | None:
    return shutil.which(os.environ.get("TERRAFORM", "terraform"))


def _platform(terraform: str) -> str:
    out = subprocess.run(  # noqa: S603 - our own Terraform, fixed arguments
        [terraform, "version", "-json"], capture_output=True, text=True, check=True
    ).stdout
    platform: str = json.loads(out)["platform"]
    return platform


def install_plugin(terraform: str, version: str, schema_file: Path, plugins: Path) -> Path:
    """The `-plugin-dir` layout Terraform expects, holding a launcher of our plugin."""
    folder = plugins / "registry.terraform.io/hashicorp/google" / version / _platform(terraform)
    folder.mkdir(parents=True, exist_ok=True)
    launcher = folder / f"terraform-provider-google_v{version}"
    launcher.write_text(
        "#!/bin/sh\n"
        f"TFSCHEMA_FILE='{schema_file}' PYTHONPATH='{ROOT}' "
        f"exec '{sys.executable}' -m infra.validate.plugin\n",
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    return plugins


def _cli_config(plugins: Path) -> str:
    return (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{plugins}"\n'
        '    include = ["registry.terraform.io/hashicorp/google"]\n  }\n'
        '  direct {\n    exclude = ["*/*/*"]\n  }\n'
        "}\n"
    )


def _problem(folder: Path, diagnostic: dict[str, Any]) -> Problem:
    """Terraform's diagnostic, named like the schema checker's: file, resource, argument."""
    source = diagnostic.get("range", {})
    file = shown(folder / source["filename"]) if source.get("filename") else shown(folder)
    if source.get("start"):
        file = f"{file}:{source['start']['line']}"
    context = _CONTEXT.match(diagnostic.get("snippet", {}).get("context") or "")
    address = "-"
    if context:
        kind, type_, name = context.groups()
        address = f"{'data.' if kind == 'data' else ''}{type_}.{name}"
    detail = diagnostic.get("detail", "")
    argument = _NAME.search(detail)
    return Problem(
        file,
        address,
        argument.group(1) if argument else "-",
        f"{diagnostic['summary']}: {detail}".rstrip(": "),
    )


def validate(folder: Path, version: str, schema_file: Path = SCHEMA_FILE) -> list[Problem]:
    """`terraform init -backend=false` and `terraform validate -json` on a copy of folder."""
    terraform = terraform_binary()
    if terraform is None:
        raise FileNotFoundError("terraform")
    plugins = install_plugin(terraform, version, schema_file, PLUGINS)
    with tempfile.TemporaryDirectory(prefix="tfvalidate-") as scratch:
        work = Path(scratch) / "infra"
        work.mkdir()
        for path in folder.glob("*.tf"):
            shutil.copy(path, work / path.name)
        config = Path(scratch) / "terraformrc"
        config.write_text(_cli_config(plugins), encoding="utf-8")
        env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(config),
            "TF_DATA_DIR": str(work / ".terraform"),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }
        env.pop("TF_PLUGIN_CACHE_DIR", None)
        base = [terraform, f"-chdir={work}"]
        init = subprocess.run(  # noqa: S603 - our own Terraform, fixed arguments
            [
                *base,
                "init",
                "-backend=false",
                "-input=false",
                "-no-color",
                f"-plugin-dir={plugins}",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        if init.returncode != 0:
            message = (init.stderr or init.stdout).strip()
            return [Problem(shown(folder), "terraform init", "-", message)]
        run = subprocess.run(  # noqa: S603 - our own Terraform, fixed arguments
            [*base, "validate", "-json", "-no-color"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        try:
            report = json.loads(run.stdout)
        except json.JSONDecodeError:
            return [Problem(shown(folder), "terraform validate", "-", run.stderr.strip())]
        problems = [
            _problem(folder, d) for d in report.get("diagnostics", []) if d["severity"] == "error"
        ]
        if run.returncode != 0 and not problems:
            problems.append(Problem(shown(folder), "terraform validate", "-", run.stderr.strip()))
        return problems
