"""Faces: detect, track and embed faces in ad videos; cluster them into unique faces across all videos.

Modules: :mod:`engine` (dlib / InsightFace behind one Protocol), :mod:`video` (sampling, per-video results),
:mod:`tracking` (tracks within a video), :mod:`cluster` (incremental unique faces, full re-cluster). Heavy imports
(dlib, PyAV, onnxruntime) happen inside those modules, so importing this package is cheap.
"""
