"""Tests of the process supervisor and its control-socket client."""
