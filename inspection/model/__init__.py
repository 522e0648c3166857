"""The defect model: the shipped backbone, the PatchCore-style head (numpy reference and ONNX graph), training
without torch, coreset selection, threshold calibration, model metadata, and the runtime that inspects an
image (:class:`inspection.model.runtime.InspectionModel`)."""
