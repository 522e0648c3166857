"""The Sparkplug B payload schema built at run time has the specification's field numbers and types: its
bytes are checked against a hand-encoded payload, and signed values use two's complement."""

from __future__ import annotations

import pytest

from inspection.line.config import ConfigError, parse_config
from inspection.line.sparkplug_pb import DataType, Payload, add_metric, decode, metric_value


def test_wire_format_matches_the_specification_field_numbers():
    p = Payload(timestamp=1, seq=0)
    add_metric(p, "a", DataType.UInt64, 3, 0)
    p.metrics[0].ClearField("timestamp")
    # Payload.timestamp = 1 (field 1, varint), metrics (field 2, bytes): name "a" (field 1), datatype 8 (field 4),
    # long_value 3 (field 11); seq = 0 (field 3)
    assert p.SerializeToString() == bytes([0x08, 0x01, 0x12, 0x07, 0x0A, 0x01, 0x61, 0x20, 0x08, 0x58, 0x03,
                                           0x18, 0x00])


@pytest.mark.parametrize(("datatype", "value", "field"), [
    (DataType.Double, 0.25, "double_value"), (DataType.String, "PASS", "string_value"),
    (DataType.Boolean, True, "boolean_value"), (DataType.UInt32, 7, "int_value")])
def test_values_round_trip_in_their_fields(datatype, value, field):
    p = Payload()
    add_metric(p, "m", datatype, value, 5)
    m = decode(p.SerializeToString()).metrics[0]
    assert m.WhichOneof("value") == field and metric_value(m) == value and m.datatype == datatype


def test_signed_values_are_twos_complement_and_null_is_flagged():
    p = Payload()
    add_metric(p, "neg", DataType.Int32, -1, 0)
    add_metric(p, "none", DataType.String, None, 0)
    neg, none = decode(p.SerializeToString()).metrics
    assert neg.int_value == 0xFFFFFFFF
    assert none.is_null and metric_value(none) is None


def test_sparkplug_needs_a_broker_and_topic_safe_ids():
    station = {"site": "s", "area": "a", "line": "l", "cell": "c", "station": "st"}
    with pytest.raises(ConfigError, match=r"mqtt\.sparkplug\.enabled: Sparkplug B needs a broker"):
        parse_config({"station": station, "mqtt": {"sparkplug": {"enabled": True}}}, "t")
    with pytest.raises(ConfigError, match=r"mqtt\.sparkplug\.group_id"):
        parse_config({"station": station, "mqtt": {"host": "h", "sparkplug": {"group_id": "a/b"}}}, "t")
