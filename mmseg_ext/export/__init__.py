"""Deployment: a trained model and its tuned post-processing as an ONNX graph and its
sidecar (``tools/export.py``, docs/export.md). The last stage of a run: it reads the
checkpoint, the config and the tuned files; onnxruntime inference of the result lives in
:mod:`mmseg_ext.inference.onnx_backend`."""
