"""The google provider's schema, read from the jsii assembly in the pinned cdktf package.

`cdktf-cdktf-provider-google` is generated from one hashicorp/google release; its assembly
(`_jsii/*.jsii.tgz` inside the wheel) lists every resource, data source and the provider with
their arguments, blocks and computed-only attributes. We read the archive directly (installing
the package pulls cdktf and jsii) and keep a compact JSON of it under .cache/.

Conventions of the assembly this relies on, checked against the file:
- a resource class has base `cdktf.TerraformResource` (`...DataSource`, `...Provider`) and a
  docs link ending `docs/resources/<x> google_<x>` naming its Terraform type;
- its initializer's `config` struct lists the arguments; a property is required unless
  `optional`; its docs carry the snake_case name (`#boot_disk ComputeInstance#boot_disk`, or
  `boot_disk block.` for blocks);
- a block is a struct-typed property: the struct itself = at most one, `IResolvable | Struct[]`
  = repeated;
- a computed-only attribute is a getter of the class with no `<name>Input` twin (for a nested
  block, of its `…OutputReference` class).
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "tfschema"
PACKAGE = "cdktf-cdktf-provider-google"
PACKAGE_VERSION = "16.12.1"
SCHEMA_FILE = CACHE / f"google-schema-{PACKAGE_VERSION}.json"

# A type: "string" | "number" | "bool" | "any" | ["list", type] | ["map", type].
Type = Any


class Attribute(TypedDict):
    type: Type
    required: bool
    computed_only: bool


class BlockType(TypedDict):
    nesting: str  # "single" (at most one) or "list"
    required: bool
    block: Block


class Block(TypedDict):
    attributes: dict[str, Attribute]
    blocks: dict[str, BlockType]


class Schema(TypedDict):
    provider_version: str
    provider: Block
    resource: dict[str, Block]
    data: dict[str, Block]


_LINK = re.compile(r"hashicorp/google/(\d+\.\d+\.\d+)/docs(?:/(resources|data-sources)/\S+ (\w+))?")
_ANCHOR = re.compile(r"#(\w+) \w+#\w+\}")
_BLOCK_DOC = re.compile(r"^(\w+) block\.")


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


def _snake_name(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    text = f"{docs.get('summary', '')} {docs.get('remarks', '')}"
    found = _ANCHOR.search(text) or _BLOCK_DOC.match(docs.get("summary", ""))
    return found.group(1) if found else _snake(prop["name"])


class _Reader:
    def __init__(self, types: dict[str, Any]) -> None:
        self.types = types

    def _struct(self, ref: dict[str, Any]) -> str | None:
        fqn = ref.get("fqn")
        return fqn if fqn and self.types.get(fqn, {}).get("datatype") else None

    def _type(self, ref: dict[str, Any]) -> Type:
        if "primitive" in ref:
            return {"string": "string", "number": "number", "boolean": "bool"}.get(
                ref["primitive"], "any"
            )
        if "collection" in ref:
            kind = "map" if ref["collection"]["kind"] == "map" else "list"
            return [kind, self._type(ref["collection"]["elementtype"])]
        if "union" in ref:
            rest = [t for t in ref["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
            return self._type(rest[0]) if len(rest) == 1 else "any"
        return "any"

    def block(self, fqn: str, computed: dict[str, Type] | None = None) -> Block:
        attributes: dict[str, Attribute] = {}
        blocks: dict[str, BlockType] = {}
        for prop in self.types[fqn].get("properties", []):
            name = _snake_name(prop)
            required = not prop.get("optional", False)
            ref = prop["type"]
            single = self._struct(ref)
            repeated = None
            if "union" in ref:
                for member in ref["union"]["types"]:
                    elem = member.get("collection", {}).get("elementtype", {})
                    repeated = repeated or self._struct(elem)
            if single or repeated:
                blocks[name] = {
                    "nesting": "single" if single else "list",
                    "required": required,
                    "block": self.block(single or repeated or ""),
                }
            else:
                attributes[name] = {
                    "type": self._type(ref),
                    "required": required,
                    "computed_only": False,
                }
        if computed is None:
            # A nested block's computed-only attributes are the getters of its OutputReference.
            reference = self.types.get(f"{fqn}OutputReference")
            computed = self.computed_only(reference, fqn) if reference else {}
        for name, type_ in computed.items():
            if name not in attributes and name not in blocks:
                attributes[name] = {"type": type_, "required": False, "computed_only": True}
        return {"attributes": attributes, "blocks": blocks}

    def computed_only(self, cls: dict[str, Any], config_fqn: str) -> dict[str, Type]:
        """Getters with no `…Input` twin that the config struct does not list."""
        props = [p for p in cls.get("properties", []) if not p.get("static")]
        names = {p["name"] for p in props}
        configurable = {p["name"] for p in self.types[config_fqn].get("properties", [])}
        return {
            _snake(p["name"]): self._type(p["type"])
            for p in props
            if not p["name"].endswith("Input")
            and f"{p['name']}Input" not in names
            and p["name"] not in configurable
            and not p["name"].startswith("terraform")
            and p["name"] not in ("fqn", "friendlyUniqueId", "node", "cdktfStack", "internalValue")
        }


def from_assembly(assembly: dict[str, Any]) -> Schema:
    """The compact schema of every resource, data source and the provider block."""
    reader = _Reader(assembly["types"])
    schema: Schema = {"provider_version": "", "provider": _EMPTY, "resource": {}, "data": {}}
    for cls in assembly["types"].values():
        base = cls.get("base")
        if cls["kind"] != "class" or base not in _BASES:
            continue
        link = _LINK.search(cls.get("docs", {}).get("summary", ""))
        params = cls.get("initializer", {}).get("parameters", [])
        config = next((p["type"]["fqn"] for p in params if p["name"] == "config"), None)
        if not link or not config:
            continue
        schema["provider_version"] = link.group(1)
        if base == "cdktf.TerraformProvider":
            schema["provider"] = reader.block(config)
            continue
        block = reader.block(config, reader.computed_only(cls, config))
        schema["resource" if base == "cdktf.TerraformResource" else "data"][link.group(3)] = block
    return schema


_EMPTY: Block = {"attributes": {}, "blocks": {}}
_BASES = ("cdktf.TerraformResource", "cdktf.TerraformDataSource", "cdktf.TerraformProvider")


def read_wheel(wheel: Path) -> dict[str, Any]:
    """The jsii assembly (`.jsii`) inside the wheel's `_jsii/*.jsii.tgz`."""
    with zipfile.ZipFile(wheel) as archive:
        inner = next(n for n in archive.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(archive.read(inner))) as tgz:
            member = next(m for m in tgz.getmembers() if m.name.endswith("/.jsii"))
            handle = tgz.extractfile(member)
            assert handle is not None
            assembly: dict[str, Any] = json.load(handle)
            return assembly


def build(cache: Path = CACHE) -> Path:
    """Write the compact schema next to the downloaded wheel; return its path."""
    wheels = sorted(cache.glob(f"cdktf_cdktf_provider_google-{PACKAGE_VERSION}-*.whl"))
    if not wheels:
        raise SystemExit(f"{PACKAGE}=={PACKAGE_VERSION} is not in {cache}: run `make validate`.")
    schema = from_assembly(read_wheel(wheels[0]))
    if not schema["resource"] or not schema["provider_version"]:
        raise SystemExit(
            f"{wheels[0].name}: no resources found; has the assembly's layout changed?"
        )
    target = cache / SCHEMA_FILE.name
    target.write_text(json.dumps(schema, separators=(",", ":")), encoding="utf-8")
    return target


def load(path: Path = SCHEMA_FILE) -> Schema:
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make validate` (it downloads and builds it).")
    schema: Schema = json.loads(path.read_text(encoding="utf-8"))
    return schema


if __name__ == "__main__":
    written = build()
    print(
        f"{written.relative_to(ROOT)}: google {load(written)['provider_version']}", file=sys.stderr
    )
