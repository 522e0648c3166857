"""Upload and fetch a result's images (original, overlay, heatmap), addressed by inspection id only."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from edge_service import store
from edge_service.api_models import ImageKind
from edge_service.dependencies import Database, Images, Ingest, Reader
from edge_service.errors import Forbidden, NotFound, documented
from edge_service.image_store import CONTENT_TYPES

router = APIRouter(prefix="/api/v1/results", tags=["images"])
_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.put("/{inspection_id}/images/{kind}", status_code=204,
            responses=documented(400, 401, 403, 404, 413, 415, 422),
            openapi_extra={"requestBody": {"content": {t: _BINARY for t in CONTENT_TYPES}}})
async def put_image(request: Request, inspection_id: uuid.UUID, kind: ImageKind, who: Ingest,
                    engine: Database, images: Images) -> None:
    """Store (or replace) a PNG or JPEG image of a stored result; only for stations the token may write."""
    station = await asyncio.to_thread(store.station_of, engine, str(inspection_id))
    if station is None:
        raise NotFound(f"no result {inspection_id}; post the result first")
    if not who.may_write_station(station):
        raise Forbidden(f"token {who.name!r} may not write images for {station}")
    data = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    await asyncio.to_thread(images.save, engine, inspection_id, kind, data, content_type)


@router.get("/{inspection_id}/images/{kind}", response_class=FileResponse,
            responses={**documented(400, 401, 403, 404, 422),
                       200: {"content": {t: {} for t in CONTENT_TYPES}, "description": "the image"}})
def get_image(inspection_id: uuid.UUID, kind: ImageKind, _who: Reader, engine: Database,
              images: Images) -> FileResponse:
    found = images.find(engine, str(inspection_id), kind)
    if found is None:
        raise NotFound(f"no {kind} image for {inspection_id}")
    path, content_type = found
    return FileResponse(path, media_type=content_type)
