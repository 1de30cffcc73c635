"""Huey workers: the queue instance, thin task wrappers that call services, and periodic schedules."""
