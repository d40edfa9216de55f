"""Check infra/*.tf against the google provider's schema, with no provider and no network.

What `terraform validate` would report from the schema alone: unknown arguments and blocks
(with a "did you mean"), missing required ones, computed-only attributes set, literals of the
wrong type, a single block given twice, and references to attributes or resources that do
not exist. Each problem names the file, the resource (type.name) and the argument.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

from infra.validate import schema as schema_module
from infra.validate.schema import Block, Schema, Type

INFRA = Path(__file__).resolve().parents[1]
META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider"})
META_BLOCKS = frozenset({"lifecycle", "provisioner", "connection"})
PROVIDER_META = frozenset({"alias", "version"})
_REFERENCE = re.compile(
    r"(?<![\w.])(data\.)?(google_[a-z0-9_]+)\.([A-Za-z_][\w-]*)((?:\[[^\]]*\])*)\.([A-Za-z_]\w*)"
)


@dataclass(frozen=True)
class Problem:
    file: str
    address: str
    argument: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.address}: {self.argument}: {self.message}"


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and of labels."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def _is_expression(value: Any) -> bool:
    """An unquoted expression (`${…}` in python-hcl2's output) or a quoted template."""
    return isinstance(value, str) and "${" in value


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _type_name(type_: Type) -> str:
    return f"{type_[0]}({_type_name(type_[1])})" if isinstance(type_, list) else str(type_)


def _fits_scalar(value: Any, type_: str) -> bool:
    text = _unquote(value) if isinstance(value, str) else value
    if type_ == "bool":
        return isinstance(text, bool) or text in ("true", "false")
    if isinstance(text, bool):
        return False
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _fits(value: Any, type_: Type) -> bool:
    """Whether a literal converts to the type, as Terraform's automatic conversions allow."""
    if type_ == "any" or _is_expression(value):
        return True
    if isinstance(type_, list):
        kind, element = type_
        if kind == "list":
            return isinstance(value, list) and all(_fits(v, element) for v in value)
        return isinstance(value, dict) and all(_fits(v, element) for v in value.values())
    if isinstance(value, (list, dict)):
        return False
    return type_ == "string" or _fits_scalar(value, type_)


@dataclass(frozen=True)
class _At:
    """Where a body sits: its file, its resource's address, and the path of blocks above it."""

    file: str
    address: str
    path: str = ""

    def inside(self, block: str) -> _At:
        return _At(self.file, self.address, f"{self.path}{block}.")


class Checker:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.problems: list[Problem] = []
        self.declared: set[tuple[str, str, str]] = set()  # (mode, type, name)
        self.texts: dict[str, str] = {}  # file -> its text, to find a resource's line

    def located(self, file: str, kind: str, type_: str, name: str) -> str:
        """file:line of the `resource "type" "name"` header (the file alone if not found)."""
        header = re.compile(rf'^\s*{kind}\s+"{re.escape(type_)}"\s+"{re.escape(name)}"', re.M)
        found = header.search(self.texts.get(file, ""))
        if not found:
            return file
        return f"{file}:{self.texts[file].count(chr(10), 0, found.start()) + 1}"

    def _report(self, file: str, address: str, argument: str, message: str) -> None:
        self.problems.append(Problem(file, address, argument, message))

    def _add(self, at: _At, name: str, message: str) -> None:
        self.problems.append(Problem(at.file, at.address, f"{at.path}{name}", message))

    def body(self, at: _At, body: dict[str, Any], block: Block, *, top: bool) -> None:
        """One resource (top) or nested block body against its schema block."""
        given: set[str] = set()
        for key, value in body.items():
            name = _unquote(key)
            if key.startswith("__") or (top and name in META_ARGUMENTS | META_BLOCKS):
                continue
            if name == "dynamic" and _is_block(value):
                given |= self._dynamic(at, value, block)
            elif name in block["attributes"]:
                self._attribute(at, name, value, block)
                given.add(name)
            elif name in block["blocks"]:
                self._blocks(at, name, value, block)
                given.add(name)
            else:
                kind = "block" if _is_block(value) else "argument"
                known = sorted([*block["attributes"], *block["blocks"]])
                self._add(at, name, f"unknown {kind} (not in the schema){_suggest(name, known)}")
        for name, attribute in block["attributes"].items():
            if attribute["required"] and name not in given:
                self._add(at, name, "required argument is missing")
        for name, nested in block["blocks"].items():
            if nested["required"] and name not in given:
                self._add(at, name, "required block is missing")

    def _attribute(self, at: _At, name: str, value: Any, block: Block) -> None:
        attribute = block["attributes"][name]
        if _is_block(value):
            self._add(at, name, "is an argument, not a block; write it as `name = …`")
        elif attribute["computed_only"]:
            self._add(at, name, "is computed by the provider and cannot be set (read-only)")
        elif not _fits(value, attribute["type"]):
            self._add(at, name, f"expects {_type_name(attribute['type'])}, got {value!r}")

    def _blocks(self, at: _At, name: str, value: Any, block: Block) -> None:
        if not _is_block(value):
            self._add(at, name, "is a block, not an argument; write it as `name { … }`")
            return
        nested = block["blocks"][name]
        if nested["nesting"] == "single" and len(value) > 1:
            self._add(at, name, f"at most one {name} block is allowed, found {len(value)}")
        for item in value:
            self.body(at.inside(name), item, nested["block"], top=False)

    def _dynamic(self, at: _At, value: list[dict[str, Any]], block: Block) -> set[str]:
        """`dynamic "label" { content { … } }`: the label must be a block; check its content."""
        labels: set[str] = set()
        for dynamic in value:
            for key, bodies in dynamic.items():
                label = _unquote(key)
                if key.startswith("__"):
                    continue
                labels.add(label)
                if label not in block["blocks"]:
                    known = sorted(block["blocks"])
                    self._add(
                        at, label, f"dynamic block of an unknown type{_suggest(label, known)}"
                    )
                    continue
                for inner in bodies if isinstance(bodies, list) else [bodies]:
                    for item in inner.get("content", []):
                        self.body(
                            at.inside(label), item, block["blocks"][label]["block"], top=False
                        )
        return labels

    def declarations(self, file: str, kind: str, entries: list[dict[str, Any]]) -> None:
        mode = "resource" if kind == "resource" else "data"
        table = self.schema["resource"] if kind == "resource" else self.schema["data"]
        for entry in entries:
            for type_key, named in entry.items():
                type_ = _unquote(type_key)
                for name_key, bodies in named.items():
                    name = _unquote(name_key)
                    prefix = "" if kind == "resource" else "data."
                    address = f"{prefix}{type_}.{name}"
                    self.declared.add((mode, type_, name))
                    where = self.located(file, kind, type_, name)
                    if not type_.startswith("google_"):
                        continue
                    if type_ not in table:
                        self._report(
                            where,
                            address,
                            type_,
                            f"unknown {kind} type in google "
                            f"{self.schema['provider_version']}{_suggest(type_, list(table))}",
                        )
                        continue
                    for body in bodies if isinstance(bodies, list) else [bodies]:
                        self.body(_At(where, address), body, table[type_], top=True)

    def providers(self, file: str, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            for name_key, bodies in entry.items():
                if _unquote(name_key) != "google":
                    continue
                for body in bodies if isinstance(bodies, list) else [bodies]:
                    trimmed = {k: v for k, v in body.items() if _unquote(k) not in PROVIDER_META}
                    self.body(
                        _At(file, 'provider "google"'), trimmed, self.schema["provider"], top=False
                    )

    def references(self, file: str, owner: str, argument: str, tree: Any) -> None:
        """References in an argument to resources or attributes that do not exist."""
        for text in _expressions(tree):
            for match in _REFERENCE.finditer(text):
                data, type_, name, _, attribute = match.groups()
                mode = "data" if data else "resource"
                target = f"{data or ''}{type_}.{name}"
                if (mode, type_, name) not in self.declared:
                    self._report(
                        file, owner, argument, f"refers to {target}, which is not declared"
                    )
                    continue
                table = self.schema["resource"] if mode == "resource" else self.schema["data"]
                block = table.get(type_)
                if block is None or attribute in (*block["attributes"], *block["blocks"], "id"):
                    continue
                known = sorted([*block["attributes"], *block["blocks"]])
                self._report(
                    file,
                    owner,
                    argument,
                    f"refers to {target}.{attribute}: {type_} has no attribute "
                    f'"{attribute}"{_suggest(attribute, known)}',
                )

    def all_references(self, file: str, tree: dict[str, Any]) -> None:
        for kind in ("resource", "data"):
            prefix = "" if kind == "resource" else "data."
            for entry in tree.get(kind, []):
                for type_key, named in entry.items():
                    for name_key, bodies in named.items():
                        type_, name = _unquote(type_key), _unquote(name_key)
                        owner = f"{prefix}{type_}.{name}"
                        where = self.located(file, kind, type_, name)
                        for body in bodies if isinstance(bodies, list) else [bodies]:
                            for key, value in body.items():
                                self.references(where, owner, _unquote(key), value)
        for kind, label in (("locals", "local"), ("output", "output"), ("module", "module")):
            for entry in tree.get(kind, []):
                for key, value in entry.items():
                    if not key.startswith("__"):
                        self.references(file, label, _unquote(key), value)


def _expressions(tree: Any) -> list[str]:
    """The `${…}` parts of every string in the tree."""
    found: list[str] = []
    if isinstance(tree, dict):
        for value in tree.values():
            found.extend(_expressions(value))
    elif isinstance(tree, list):
        for value in tree:
            found.extend(_expressions(value))
    elif isinstance(tree, str) and "${" in tree:
        found.append(tree[tree.index("${") :])
    return found


def shown(path: Path) -> str:
    """The path as the problem list names it: relative to the repository when inside it."""
    resolved = path.resolve()
    root = INFRA.parent
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def parse(folder: Path) -> dict[str, tuple[str, Any]]:
    """Each .tf file's text and python-hcl2 tree, keyed by the file's shown path."""
    trees: dict[str, tuple[str, Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        trees[shown(path)] = (text, hcl2.loads(text))
    return trees


def check(folder: Path = INFRA, schema: Schema | None = None) -> list[Problem]:
    """Every problem in folder's .tf files, including a provider pin that excludes the schema."""
    schema = schema or schema_module.load()
    checker = Checker(schema)
    parsed = parse(folder)
    checker.texts = {file: text for file, (text, _) in parsed.items()}
    trees = {file: tree for file, (_, tree) in parsed.items()}
    for file, tree in trees.items():
        checker.declarations(file, "resource", tree.get("resource", []))
        checker.declarations(file, "data", tree.get("data", []))
        checker.providers(file, tree.get("provider", []))
    for file, tree in trees.items():
        checker.all_references(file, tree)
    checker.problems.extend(pin_problems(trees, schema["provider_version"], folder))
    return checker.problems


# The google provider's version pin in required_providers.


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def satisfies(version: str, constraints: str) -> bool:
    """Terraform's version constraint syntax: comma-separated `op version`, `~>` pessimistic."""
    have = _version(version)
    for constraint in constraints.split(","):
        found = re.fullmatch(r"\s*(~>|>=|<=|!=|=|>|<)?\s*v?([\d.]+)\s*", constraint)
        if not found:
            return False
        op, text = found.group(1) or "=", found.group(2)
        want = _version(text)
        padded = want + (0,) * (3 - len(want))
        if op == "~>":
            upper = (*want[:-2], want[-2] + 1) if len(want) > 1 else (want[0] + 1,)
            ok = have >= padded and have[: len(upper)] < upper
        else:
            ok = {
                "=": have == padded,
                "!=": have != padded,
                ">": have > padded,
                ">=": have >= padded,
                "<": have < padded,
                "<=": have <= padded,
            }[op]
        if not ok:
            return False
    return True


def pin_problems(trees: dict[str, Any], version: str, folder: Path) -> list[Problem]:
    """The google pin in required_providers must admit the version the schema describes."""
    problems: list[Problem] = []
    pinned = False
    for file, tree in trees.items():
        for terraform in tree.get("terraform", []):
            for required in terraform.get("required_providers", []):
                google = required.get("google")
                if not isinstance(google, dict):
                    continue
                pinned = True
                constraint = _unquote(google.get("version", ""))
                if not satisfies(version, constraint):
                    problems.append(
                        Problem(
                            file,
                            "terraform.required_providers",
                            "google.version",
                            f'"{constraint}" excludes {version}, the version the schema describes; '
                            "move the pin and the schema package together",
                        )
                    )
    if not pinned:
        problems.append(
            Problem(
                shown(folder / "versions.tf"),
                "terraform.required_providers",
                "google.version",
                "the google provider has no version pin",
            )
        )
    return problems


if __name__ == "__main__":
    from infra.validate.__main__ import main

    raise SystemExit(main(sys.argv[1:]))
