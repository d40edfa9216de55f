"""`make validate`: infra/ against the google provider schema, by two independent checkers.

The schema checker (python-hcl2 over the schema) always runs and needs no Terraform; real
`terraform validate`, with the schema plugin as the provider, runs too when Terraform is
installed. Each problem is printed once per checker that found it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from infra.validate import check, schema, terraform


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else check.INFRA
    loaded = schema.load()
    version = loaded["provider_version"]
    started = time.monotonic()
    found = {"schema checker": check.check(folder, loaded)}
    if terraform.terraform_binary() is None:
        print("terraform is not installed: only the schema checker ran (CI without Terraform).")
    else:
        # Terraform skips the resources that depend on a broken one; the checker does not.
        found["terraform validate"] = terraform.validate(folder, version)
    for checker, problems in found.items():
        for problem in problems:
            print(f"[{checker}] {problem}", file=sys.stderr)
    count = sum(len(problems) for problems in found.values())
    names = " + ".join(found)
    if count:
        print(
            f"{count} problem(s) against the google provider {version} schema ({names}).",
            file=sys.stderr,
        )
        return 1
    took = time.monotonic() - started
    print(
        f"{check.shown(folder)}: valid against the google provider {version} schema "
        f"({names}, {took:.1f}s)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
