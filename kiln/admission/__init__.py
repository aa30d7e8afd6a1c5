"""Admission: the one step every ingest and publisher asks before a session starts.

``contract`` holds the request, the verdict of one check, the step's combined answer and the
``Check`` Protocol; ``step`` runs a vhost's checks in order; ``signed_policy`` is OME's SignedPolicy
check; ``audit`` turns decisions into journal events. Media code imports only ``contract`` and
``step`` (data and the runner); the control plane wires the checks and the audit.
"""
