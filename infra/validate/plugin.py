"""A stand-in google provider for `terraform validate`: it serves the schema and nothing else.

Terraform starts it as `terraform-provider-google` from a `-plugin-dir` and speaks
HashiCorp's go-plugin protocol: we print the handshake line
`1|6|tcp|127.0.0.1:<port>|grpc|<our certificate>` and serve tfplugin6 over gRPC with mutual
TLS (AutoMTLS: Terraform passes its client certificate in PLUGIN_CLIENT_CERT and trusts the one
we print). Validation needs only GetProviderSchema and the Validate* calls; every other call
is refused, so nothing can ever be planned or applied through it.
https://github.com/hashicorp/go-plugin/blob/main/docs/internals.md
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import sys
import tempfile
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import msgpack  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tfplugin_proto import tfplugin6_5_pb2 as tf
from tfplugin_proto import tfplugin6_5_pb2_grpc as tf_grpc

from infra.validate import schema as schema_module
from infra.validate.schema import Block, Type

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def _cty(type_: Type) -> bytes:
    """The type in cty's JSON form, as the protocol carries it."""

    def convert(t: Type) -> Any:
        if isinstance(t, list):
            return [t[0], convert(t[1])]
        return "dynamic" if t == "any" else t

    return json.dumps(convert(type_)).encode()


def _block(block: Block) -> tf.Schema.Block:
    attributes = [
        tf.Schema.Attribute(
            name=name,
            type=_cty(attr["type"]),
            required=attr["required"],
            optional=not attr["required"] and not attr["computed_only"],
            computed=attr["computed_only"],
        )
        for name, attr in sorted(block["attributes"].items())
    ]
    # The google provider is built on the plugin SDK, whose single blocks are lists of at
    # most one: `x.block[0].attr` in references, as the real provider's schema says.
    nested = [
        tf.Schema.NestedBlock(
            type_name=name,
            block=_block(inner["block"]),
            nesting=tf.Schema.NestedBlock.LIST,
            min_items=1 if inner["required"] else 0,
            max_items=1 if inner["nesting"] == "single" else 0,
        )
        for name, inner in sorted(block["blocks"].items())
    ]
    return tf.Schema.Block(attributes=attributes, block_types=nested)


def _read_only(request: Any, block: Block | None) -> list[tf.Diagnostic]:
    """Computed-only attributes set in the config: core leaves this check to the provider."""
    if block is None or not request.config.msgpack:
        return []
    # Unknown values (cty's msgpack extension 0) are set too, but their value is not ours.
    config = msgpack.unpackb(request.config.msgpack, ext_hook=lambda code, data: _UNKNOWN)
    found: list[tf.Diagnostic] = []
    _walk(config, block, [], found)
    return found


_UNKNOWN = object()


def _walk(value: Any, block: Block, path: list[str], found: list[tf.Diagnostic]) -> None:
    if not isinstance(value, dict):
        return
    for name, attr in block["attributes"].items():
        if attr["computed_only"] and value.get(name) is not None:
            steps = [tf.AttributePath.Step(attribute_name=step) for step in [*path, name]]
            found.append(
                tf.Diagnostic(
                    severity=tf.Diagnostic.ERROR,
                    summary="Value for unconfigurable attribute",
                    detail=f'Can\'t configure a value for "{name}": its value will be decided '
                    "automatically based on the result of applying this configuration.",
                    attribute=tf.AttributePath(steps=steps),
                )
            )
    for name, nested in block["blocks"].items():
        items = value.get(name)
        for item in items if isinstance(items, list) else [items]:
            _walk(item, nested["block"], [*path, name], found)


class Provider(tf_grpc.ProviderServicer):
    def __init__(self, path: Path) -> None:
        schema = schema_module.load(path)
        self.schema = schema
        self.response = tf.GetProviderSchema.Response(
            provider=tf.Schema(block=_block(schema["provider"])),
            resource_schemas={k: tf.Schema(block=_block(v)) for k, v in schema["resource"].items()},
            data_source_schemas={k: tf.Schema(block=_block(v)) for k, v in schema["data"].items()},
        )

    def GetProviderSchema(self, request: Any, context: Any) -> Any:
        return self.response

    def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
        return tf.ValidateProviderConfig.Response()

    def ValidateResourceConfig(self, request: Any, context: Any) -> Any:
        block = self.schema["resource"].get(request.type_name)
        return tf.ValidateResourceConfig.Response(diagnostics=_read_only(request, block))

    def ValidateDataResourceConfig(self, request: Any, context: Any) -> Any:
        block = self.schema["data"].get(request.type_name)
        return tf.ValidateDataResourceConfig.Response(diagnostics=_read_only(request, block))

    def StopProvider(self, request: Any, context: Any) -> Any:
        return tf.StopProvider.Response()


def _certificate() -> tuple[bytes, bytes]:
    """A self-signed certificate for `localhost`, the name go-plugin's client expects."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                key_cert_sign=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _stop(server: grpc.Server) -> bytes:
    server.stop(grace=0.5)
    return b""


def serve() -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print("This is a Terraform provider plugin; Terraform starts it.", file=sys.stderr)
        return 1
    if "6" not in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "6").split(","):
        print("Terraform does not offer plugin protocol 6.", file=sys.stderr)
        return 1
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "").encode()
    if not client_cert:
        print(
            "PLUGIN_CLIENT_CERT is missing: this plugin needs Terraform's AutoMTLS.",
            file=sys.stderr,
        )
        return 1
    path = Path(os.environ.get("TFSCHEMA_FILE", str(schema_module.SCHEMA_FILE)))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    tf_grpc.add_ProviderServicer_to_server(Provider(path), server)  # type: ignore[no-untyped-call]
    # go-plugin's controller: answering Shutdown lets Terraform end us at once instead of
    # waiting two seconds and killing us. Its messages are empty, so raw bytes do.
    shutdown = grpc.unary_unary_rpc_method_handler(lambda request, context: _stop(server))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("plugin.GRPCController", {"Shutdown": shutdown}),)
    )
    key_pem, cert_pem = _certificate()
    # gRPC's BoringSSL does not accept the P-521 signatures of go-plugin's client certificate
    # (PEER_DID_NOT_RETURN_A_CERTIFICATE), so instead of verifying it we listen on a socket in
    # a directory only this user can open, and the client still checks our certificate.
    credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
    folder = tempfile.mkdtemp(prefix="tfschema-")
    socket = os.path.join(folder, "plugin.sock")
    server.add_secure_port(f"unix:{socket}", credentials)
    server.start()
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    cert_text = base64.b64encode(der).decode().rstrip("=")
    sys.stdout.write(f"1|6|unix|{socket}|grpc|{cert_text}\n")
    sys.stdout.flush()
    try:
        server.wait_for_termination()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
