"""The Sparkplug B protobuf messages (``Payload``, ``Payload.Metric``, ``DataType``), built at run time from
the specification's field numbers with the ``protobuf`` runtime: no protoc, no generated module. The same
schema as text is ``sparkplug_b.proto`` beside this module (the subset the station writes)."""

from __future__ import annotations

import enum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"
_F = descriptor_pb2.FieldDescriptorProto


class DataType(enum.IntEnum):
    """Sparkplug B metric data types (the specification's numbers)."""

    Int32 = 3
    Int64 = 4
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13


def _field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, ftype: int,
           label: int = _F.LABEL_OPTIONAL, type_name: str | None = None, oneof: int | None = None) -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="inspection_sparkplug_b.proto", package=PACKAGE, syntax="proto2")
    payload = fd.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    for name, number, ftype in (("name", 1, _F.TYPE_STRING), ("alias", 2, _F.TYPE_UINT64),
                                ("timestamp", 3, _F.TYPE_UINT64), ("datatype", 4, _F.TYPE_UINT32),
                                ("is_historical", 5, _F.TYPE_BOOL), ("is_transient", 6, _F.TYPE_BOOL),
                                ("is_null", 7, _F.TYPE_BOOL)):
        _field(metric, name, number, ftype)
    metric.oneof_decl.add(name="value")
    for name, number, ftype in (("int_value", 10, _F.TYPE_UINT32), ("long_value", 11, _F.TYPE_UINT64),
                                ("float_value", 12, _F.TYPE_FLOAT), ("double_value", 13, _F.TYPE_DOUBLE),
                                ("boolean_value", 14, _F.TYPE_BOOL), ("string_value", 15, _F.TYPE_STRING),
                                ("bytes_value", 16, _F.TYPE_BYTES)):
        _field(metric, name, number, ftype, oneof=0)
    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(payload, "metrics", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, f".{PACKAGE}.Payload.Metric")
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    payload.extension_range.add(start=6, end=536870912)
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())
Payload: Any = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))

_VALUE_FIELD = {DataType.Int32: "int_value", DataType.UInt32: "int_value", DataType.Int64: "long_value",
                DataType.UInt64: "long_value", DataType.DateTime: "long_value", DataType.Float: "float_value",
                DataType.Double: "double_value", DataType.Boolean: "boolean_value",
                DataType.String: "string_value"}


def add_metric(payload: Any, name: str, datatype: DataType, value: object, timestamp_ms: int) -> None:
    """Append one metric (``value`` None: is_null)."""
    m = payload.metrics.add(name=name, datatype=int(datatype), timestamp=timestamp_ms)
    if value is None:
        m.is_null = True
        return
    field = _VALUE_FIELD[datatype]
    if datatype in (DataType.Int32, DataType.Int64):  # signed values travel as two's complement (spec 6.4.16)
        bits = 32 if datatype == DataType.Int32 else 64
        value = int(value) & ((1 << bits) - 1)  # type: ignore[call-overload]
    setattr(m, field, value)


def metric_value(metric: Any) -> object:
    """The value of a decoded metric (None when is_null)."""
    if metric.is_null:
        return None
    which = metric.WhichOneof("value")
    return getattr(metric, which) if which else None


def decode(data: bytes) -> Any:
    payload = Payload()
    payload.ParseFromString(data)
    return payload
