"""Privacy: forget one person everywhere, keep them forgotten, and retire old face data.

The modules, lowest first (each imports only those above it; none imports ``adpipeline.stages``):

- :mod:`~adpipeline.privacy.suppression`: the suppression list (salted digests, screen-time segments) and the hooks
  the faces and gallery stages call so a forgotten person is never written again; :class:`PrivacyContext`, what
  privacy code reads from a task's context.
- :mod:`~adpipeline.privacy.footprint`: what a request resolves to (:class:`Footprint`) and the lines of a plan
  (:class:`Change`).
- :mod:`~adpipeline.privacy.plan`: every change that forgetting a person makes, by table and bucket prefix.
- :mod:`~adpipeline.privacy.retention`: the faces past ``face_retention_days`` and the changes that retire them.
- :mod:`~adpipeline.privacy.audit`: who asked, what a request did, its ``privacy_requests`` row.
- :mod:`~adpipeline.privacy.apply`: running a plan (audit, suppressions, DML and bucket deletes, the checks,
  ``Warehouse.compact``).

The tasks the DAGs and ``adpipeline forget`` run (``forget_person``, ``enforce``, ``retention``) are in
:mod:`adpipeline.stages.privacy`. See adpipeline/faces/README.md, "Privacy".
"""
