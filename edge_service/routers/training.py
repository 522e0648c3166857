"""Training jobs from the browser: start one from uploaded zips or good results' stored originals, follow
its progress, cancel it, publish the trained model as a new model version."""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from edge_service import qa_audit, training_staging, training_worker
from edge_service.dependencies import Database, Images, Reader, Reviewer, Settings
from edge_service.errors import InvalidRequest, NotFound, Problem, documented
from edge_service.training_jobs import JobConflict, JobNotFound, JobsBusy, TrainingJobs, now
from edge_service.training_models import MODEL_NAME_PATTERN, Preset, PublishedModel, PublishIn, TrainingJob
from edge_service.training_upload import UploadRejected, remove

router = APIRouter(prefix="/api/v1/training", tags=["training"])


class Conflict(Problem):
    status, reason = 409, "conflict"


class TrainingUnavailable(Problem):
    status, reason = 503, "training_unavailable"


def get_jobs(request: Request) -> TrainingJobs:
    return request.app.state.training


Jobs = Annotated[TrainingJobs, Depends(get_jobs)]
DESCRIBED = {409: "another training job is running (one at a time by default), or the job's state forbids it",
             413: "the upload passed the training body limit (512 MB by default)",
             422: "a bad field, or an upload refused: the message names the zip member or result and the problem",
             503: "this installation has no training runtime (onnxruntime, onnx, opencv)"}


def _upload(file: UploadFile | None):
    """The file of a multipart part, or None when the part is absent or empty (a form's unused file input)."""
    if file is None or not file.filename or file.size == 0:
        return None
    return file.file


def _version(given: str | None) -> str:
    return given or time.strftime("%Y%m%d-%H%M%S", time.gmtime())


@router.post("/jobs", status_code=201, responses=documented(400, 401, 403, 409, 413, 422, 503, described=DESCRIBED))
def start_job(
    who: Reviewer, engine: Database, images: Images, settings: Settings, jobs: Jobs,
    name: Annotated[str, Form(pattern=MODEL_NAME_PATTERN, description="the model's name")],
    preset: Annotated[Preset, Form()] = "balanced",
    target_frr: Annotated[float, Form(gt=0, lt=0.5, allow_inf_nan=False,
                                      description="target false-reject rate on good parts, e.g. 0.01")] = 0.01,
    version: Annotated[str | None, Form(pattern=MODEL_NAME_PATTERN, description="default: the UTC time")] = None,
    good: Annotated[UploadFile | None, File(description="zip of good images (any folder layout)")] = None,
    result_ids: Annotated[str | None, Form(description="ids of good results whose stored originals are used, "
                                                       "separated by commas or whitespace")] = None,
    defects: Annotated[UploadFile | None, File(description="zip: defect/<kind>/<name>.png, optional "
                                                           "ground_truth/<kind>/<name>_mask.png")] = None,
) -> TrainingJob:
    """Check every image, then start training in a worker process (at most one job at a time by default)."""
    good_zip, defects_zip = _upload(good), _upload(defects)
    if missing := training_worker.runtime_missing():
        raise TrainingUnavailable(f"this installation cannot train: {missing} not installed (install the full "
                                  "inspection package, not the service alone)")
    try:
        jobs.check_capacity()
        ids = training_staging.parse_result_ids(result_ids)
        if good_zip is None and not ids:
            raise UploadRejected("no good images: send a zip of them (good) or good results' ids (result_ids)")
        originals = training_staging.good_result_originals(engine, images, ids) if ids else []
    except JobsBusy as exc:
        raise Conflict(str(exc)) from None
    except UploadRejected as exc:
        raise InvalidRequest(str(exc)) from None
    staging = jobs.new_staging()
    try:
        staged = training_staging.stage(staging, good_zip, originals, defects_zip, settings.training)
        job = TrainingJob(id=staging.name.removeprefix(".staging-")[:16], state="queued", name=name,
                          version=_version(version), preset=preset, target_frr=target_frr, created_by=who.name,
                          created_at=now(), good_images=staged.bank, held_out_images=staged.held_out,
                          defect_images=staged.defects, masks=staged.masks, sources=staged.sources)
        return jobs.start(job, staging)
    except UploadRejected as exc:
        raise InvalidRequest(str(exc)) from None
    except JobsBusy as exc:
        raise Conflict(str(exc)) from None
    finally:
        if staging.exists():
            remove(staging)


@router.get("/jobs", responses=documented(401, 403))
def list_jobs(_who: Reader, jobs: Jobs) -> list[TrainingJob]:
    """The newest 50 jobs, newest first."""
    return jobs.newest()


def _job(jobs: TrainingJobs, job_id: str) -> TrainingJob:
    try:
        return jobs.get(job_id)
    except JobNotFound:
        raise NotFound(f"no training job {job_id[:40]!r}") from None


@router.get("/jobs/{job_id}", responses=documented(401, 403, 404))
def get_job(job_id: str, _who: Reader, jobs: Jobs) -> TrainingJob:
    """State (queued, running, succeeded, failed, cancelled), stage, progress, log tail, report."""
    return _job(jobs, job_id)


@router.delete("/jobs/{job_id}", responses=documented(401, 403, 404, 409, described=DESCRIBED))
def cancel_job(job_id: str, who: Reviewer, jobs: Jobs) -> TrainingJob:
    """Cancel a queued or running job: its worker is killed."""
    _job(jobs, job_id)
    try:
        return jobs.cancel(job_id, who.name)
    except JobConflict as exc:
        raise Conflict(str(exc)) from None


@router.post("/jobs/{job_id}/publish", responses=documented(400, 401, 403, 404, 409, 422, described=DESCRIBED))
def publish_job(job_id: str, who: Reviewer, engine: Database, settings: Settings, jobs: Jobs,
                body: PublishIn | None = None) -> TrainingJob:
    """Add the trained model as a new model version (audited), so it can be assigned to stations."""
    from edge_service import model_store

    job = _job(jobs, job_id)
    if job.state != "succeeded":
        raise Conflict(f"training job {job_id} is {job.state}; only a succeeded job can be published")
    data = (jobs.job_dir(job.id) / "model.onnx").read_bytes()
    try:
        model = model_store.add_model(engine, settings, data, who.name, (body.note if body else None)
                                      or f"trained in the browser (job {job.id})")
    except model_store.ModelConflict as exc:
        raise Conflict(str(exc)) from None
    except model_store.ModelRejected as exc:
        raise InvalidRequest(f"the trained model was refused: {exc}") from None
    published = PublishedModel(name=model.name, version=model.version, sha256=model.sha256,
                               published_by=who.name, published_at=now())
    with engine.begin() as conn:
        qa_audit.record(conn, who.name, "training_publish", f"{model.name}/{model.version}", None,
                        json.dumps({"job": job.id, "sha256": model.sha256, "preset": job.preset}),
                        body.note if body else None)
    job = job.model_copy(update={"published": published})
    jobs.save(job)
    return job
