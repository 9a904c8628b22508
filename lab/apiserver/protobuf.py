"""The protobuf bodies kubectl 1.32+ sends for its imperative `create` commands, decoded into the
JSON form the lab stores.

A real API server takes protobuf for every built-in kind, and kubectl does not fall back to JSON.
The lab reads the few kinds those commands create without a manifest (namespaces, config maps,
secrets, service accounts); anything else gets a 415 that says to use a manifest instead.
Wire format: "k8s\\0", then a runtime.Unknown {1: typeMeta {1: apiVersion, 2: kind}, 2: raw object}.
"""

from __future__ import annotations

import base64

from .errors import ApiError

MAGIC = b"k8s\x00"

# field number -> (JSON name, how to read it); "map" is map<string,string>, "bytes_map" map<string,bytes>
OBJECT_META = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
               11: ("labels", "map"), 12: ("annotations", "map"), 14: ("finalizers", "strs")}
KINDS = {
    "Namespace": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("finalizers", "strs")})},
    "ConfigMap": {1: ("metadata", OBJECT_META), 2: ("data", "map"), 3: ("binaryData", "bytes_map"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", OBJECT_META), 2: ("data", "bytes_map"), 3: ("type", "str"),
               4: ("stringData", "map"), 5: ("immutable", "bool")},
    "ServiceAccount": {1: ("metadata", OBJECT_META), 4: ("automountServiceAccountToken", "bool")},
}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(data: bytes):
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited ones."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at:at + size], at + size
        else:
            raise ValueError(f"wire type {wire}")
        yield number, value


def _message(data: bytes, schema: dict) -> dict:
    out: dict = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, how = schema[number]
        if isinstance(how, dict):
            out[name] = _message(value, how)
        elif how == "str":
            out[name] = value.decode()
        elif how == "strs":
            out.setdefault(name, []).append(value.decode())
        elif how == "bool":
            out[name] = bool(value)
        else:
            entry = dict(_fields(value))
            raw = entry.get(2, b"")
            out.setdefault(name, {})[entry.get(1, b"").decode()] = \
                base64.b64encode(raw).decode() if how == "bytes_map" else raw.decode()
    return out


def decode(raw: bytes) -> dict:
    """The object in a protobuf request body, as JSON would have carried it."""
    try:
        if not raw.startswith(MAGIC):
            raise ValueError("no k8s protobuf prefix")
        unknown = dict(_fields(raw[len(MAGIC):]))
        type_meta = {n: v.decode() for n, v in _fields(unknown.get(1, b""))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ApiError(400, "the body of the request could not be decoded as Kubernetes protobuf") from None
    if kind not in KINDS or api_version != "v1":
        raise ApiError(415, f"the lab reads protobuf bodies only for {', '.join(KINDS)}, not {kind or 'this object'}: "
                            "create it from a YAML or JSON manifest (`kubectl create -f FILE`) instead")
    try:
        return {"apiVersion": api_version, "kind": kind, **_message(unknown.get(2, b""), KINDS[kind])}
    except (ValueError, IndexError, AttributeError, UnicodeDecodeError):
        raise ApiError(400, f"the {kind} in the request body could not be decoded as Kubernetes protobuf") from None
