"""``POST /trigger`` on the station's status port: a trigger over HTTP, answered with its result.

Body (JSON, all optional): ``{"part_id": "A123", "acknowledge": true, "timeout_s": 10}``. The trigger goes
through the same handshake as a PLC's (next sequence number, one result per trigger, in order). The answer
waits for the result; with ``acknowledge`` (the default) it also waits until the result is presented (the
older ones acknowledged) and acknowledges it, so an HTTP caller plays the PLC's part. Statuses: 200 with the
result (``verdict`` OK, NG or ERROR with its ``error``), 400 bad body or part id, 409 buffer full, 503 not
ready, 504 no result within ``timeout_s`` (the trigger stays answered in the handshake).
"""

from __future__ import annotations

import json
import time

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inspection.plant.handshake import PlcHandshake
from inspection.plant.records import ErrorCode, HandshakeError, TriggerResult

_REFUSAL_STATUS = {ErrorCode.BAD_PART_ID: 400, ErrorCode.BUFFER_FULL: 409, ErrorCode.NOT_READY: 503}


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    part_id: str = ""
    acknowledge: bool = True
    timeout_s: float = Field(default=10.0, gt=0, le=60)


def result_json(r: TriggerResult, recipes: dict[int, str], acknowledged: bool) -> dict:
    return {"sequence": r.sequence, "part_id": r.part_id, "recipe": r.recipe, "recipe_name": recipes.get(r.recipe),
            "verdict": r.verdict, "score": r.score, "threshold": r.threshold, "model_version": r.model_version,
            "error_code": int(r.error), "error": r.error.name, "message": r.message,
            "processing_ms": round(r.processing_ms, 3), "triggered_at": r.triggered_at.isoformat(),
            "completed_at": r.completed_at.isoformat(), "acknowledged": acknowledged}


def _wait(core: PlcHandshake, done, deadline: float) -> bool:
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        core.wait_for_change(core.snapshot().version, min(left, 0.5))
    return True


def handle_trigger(core: PlcHandshake, body: bytes) -> tuple[int, dict]:
    """The HTTP status and JSON answer for one ``POST /trigger``."""
    try:
        req = TriggerRequest.model_validate(json.loads(body or b"{}"))
    except json.JSONDecodeError as exc:
        return 400, {"error": "bad_request", "message": f"body: not valid JSON ({exc})"}
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        return 400, {"error": "bad_request", "message": where}
    answer = core.trigger(req.part_id)
    if not answer.accepted:
        return _REFUSAL_STATUS.get(answer.error, 409), {"error": answer.error.name, "error_code": int(answer.error),
                                                       "sequence": answer.sequence, "message": answer.message}
    seq, deadline = answer.sequence, time.monotonic() + req.timeout_s
    if not _wait(core, lambda: core.result_of(seq) is not None, deadline):
        return 504, {"error": "timeout", "sequence": seq, "message": f"trigger {seq}: no result within "
                     f"{req.timeout_s:g} s"}
    result = core.result_of(seq)
    assert result is not None
    acknowledged = False
    if req.acknowledge and _wait(core, lambda: _presented(core) == seq, deadline):
        try:
            core.acknowledge(seq)
            acknowledged = True
        except HandshakeError:  # someone else (the PLC) acknowledged it meanwhile
            pass
    return 200, result_json(result, core.recipes, acknowledged)


def _presented(core: PlcHandshake) -> int | None:
    p = core.snapshot().presented
    return p.sequence if p else None
