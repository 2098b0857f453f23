"""Reason constants of plan actions and object verdicts: each defined once, CamelCase.

Actions and verdicts carry one of these as `reason`; conditions written from verdicts
reuse them, so a person sees the same word in `corral describe`, events and the plan.
"""

from __future__ import annotations

from typing import Final

CONVERGED: Final = "Converged"
"""Observed state equals desired state; nothing to do."""

CREATING: Final = "Creating"
"""The object does not exist on a host yet and is being created there."""

UPDATING: Final = "Updating"
"""The object exists but differs from its spec; the new definition is being applied."""

STARTING: Final = "Starting"
"""The VM or network is defined and is being started."""

STOPPING: Final = "Stopping"
"""The VM is being stopped because its run strategy or a request says so."""

STOPPED: Final = "Stopped"
"""The VM is defined and stopped, as its run strategy wants."""

GUEST_SHUTDOWN: Final = "GuestShutdown"
"""The guest shut itself down cleanly; RerunOnFailure leaves it stopped."""

PAUSED: Final = "Paused"
"""The VM is paused on its host: it counts as running but does not serve."""

SCHEDULED: Final = "Scheduled"
"""The scheduler chose a host for the VM; it is being defined there."""

NO_HOST_FITS: Final = "NoHostFits"
"""No host passes the scheduler's filters for the VM; it stays pending."""

DEPENDENCY_NOT_READY: Final = "DependencyNotReady"
"""An object this one needs (network, pool, base volume, VM placement) is not ready yet."""

DEPENDENCY_MISSING: Final = "DependencyMissing"
"""An object this one refers to is not defined at all."""

INVALID_SPEC: Final = "InvalidSpec"
"""The spec cannot be turned into an agent request; the message names the field."""

UNSUPPORTED: Final = "Unsupported"
"""The spec asks for something the node agent cannot do (e.g. iSCSI pools)."""

AGENT_UNREACHABLE: Final = "AgentUnreachable"
"""The host's agent does not answer; objects there are in an unknown state."""

NO_HOSTS: Final = "NoHosts"
"""No healthy desired host matches the object's host selector."""

HOST_UP: Final = "HostUp"
"""The host's agent answers and the host takes VMs."""

HOST_PENDING: Final = "HostPending"
"""The host is declared but its agent has never been reached."""

HOST_FAILED: Final = "HostFailed"
"""The host stopped answering and nothing shows it alive (its etcd lease is gone, or no
arbiter can tell): it is declared failed."""

WAITING_FOR_FENCE: Final = "WaitingForFence"
"""The VM's host failed; the VM restarts elsewhere only after the host is fenced."""

FENCING: Final = "Fencing"
"""The failed host is being switched off through its power fence."""

HA_RESTART: Final = "HARestart"
"""Action reason: define and start an HA VM on another host because its host failed."""

HA_RESTARTING: Final = "HARestarting"
"""The VM is being restarted on another host after its host failed."""

HA_RESTART_IMPOSSIBLE: Final = "HARestartImpossible"
"""The VM's host failed and no other host can take it."""

NOT_HA: Final = "NotHighlyAvailable"
"""The VM's host failed and the VM has HA off: it waits for its host."""

MIGRATING: Final = "Migrating"
"""The VM is moving live to another host."""

MIGRATION_TIMEOUT: Final = "MigrationTimeout"
"""A live migration ran past its timeout and is being cancelled."""

MIGRATION_FAILED: Final = "MigrationFailed"
"""The last live migration failed; it is retried on the next pass."""

MIGRATION_NOT_ALLOWED: Final = "MigrationNotAllowed"
"""The VM must leave its host but its migration policy forbids moving it live."""

MOVING: Final = "Moving"
"""A stopped VM is being re-defined on another host."""

DISRUPTION_BUDGET: Final = "DisruptionBudgetExhausted"
"""A move waits because the migration budget of the fleet or a host is used up."""

REBALANCING: Final = "Rebalancing"
"""The VM moves because the scheduling policy's balancer asks for it."""

DRAINING: Final = "Draining"
"""The host is in maintenance and VMs are being moved off it."""

DRAIN_BLOCKED: Final = "DrainBlocked"
"""The host is in maintenance but some VMs can go nowhere; nothing is stopped for it."""

IN_MAINTENANCE: Final = "InMaintenance"
"""The host is in maintenance and holds no running VM."""

RESTART_REQUIRED: Final = "RestartRequired"
"""The VM's new definition needs a restart to apply; its update policy says to wait."""

RESTART_FOR_UPDATE: Final = "RestartForUpdate"
"""The VM is restarted to apply a change that cannot be applied live."""

STALE_COPY: Final = "StaleCopy"
"""A copy of the VM on a host it no longer belongs to; it is removed, never started."""

DUPLICATE_RUNNING: Final = "DuplicateRunning"
"""The VM runs on two hosts at once; the copy off its placement is destroyed."""

ORPHAN_DOMAIN: Final = "OrphanDomain"
"""A Corral-labelled domain of no known VM; it is left alone and reported."""

SHRINK_REFUSED: Final = "ShrinkRefused"
"""The volume spec is smaller than the volume: volumes only grow."""

RESIZING: Final = "Resizing"
"""The volume is being grown to its new size."""

FORMAT_MISMATCH: Final = "FormatMismatch"
"""The volume exists with another format than its spec; it is never converted."""

DELETING: Final = "Deleting"
"""The object was removed from its source; its traces on hosts are being removed."""

DELETED: Final = "Deleted"
"""The object was removed from its source and nothing of it is left on any host."""

IN_USE: Final = "InUse"
"""The object was removed but a desired object still uses it; it is kept."""

REQUESTED: Final = "Requested"
"""An operator request (start/stop) of a Manual VM is being carried out."""

SNAPSHOT_NEEDS_STOP: Final = "SnapshotNeedsStop"
"""A snapshot without memory is asked of a running VM; QEMU takes it only of a stopped one."""

ACCEPTED: Final = "Accepted"
"""A policy or grouping object: it is applied through the objects it governs."""

RUNS_ON_REMOVED_HOST: Final = "RunsOnRemovedHost"
"""The VM may run on a host that was removed from the manifests; it is not started elsewhere."""
