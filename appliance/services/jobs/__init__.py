"""Jobs: durable units of work, so that nothing the appliance accepted is lost when a worker dies.

Owns the job rows and their state machine: the kinds of job and enqueueing them (durable), a worker's claim,
lease, success and failure (leases), the workers' hot path of claims and batched successes (claims), a
tenant's or an operator's retry and cancel (manage), reading jobs (queries), the reaper that hands stale jobs
back to the queue (reaper), and the worker heartbeats (heartbeats: the workers' liveness, which the reaper
and the health checks read).

Offers to the other domains: durable (enqueue, states), queries.
May call: common.
"""
