"""The etcd v3 API's errors, with etcd's exact gRPC codes and messages.

etcd clients (clientv3, aetcd, the Kubernetes API server) match on these strings, so
they are reproduced verbatim. Anything raftstore adds says what was wrong and what
would be accepted.
"""

from __future__ import annotations

import grpc


class StoreError(Exception):
    """An error answered to a client as a gRPC status. Raising one never changes state."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"StoreError({self.code.name}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, StoreError)
                and (self.code, self.message) == (other.code, other.message))

    def __hash__(self) -> int:
        return hash((self.code, self.message))


_C = grpc.StatusCode


def _e(code: grpc.StatusCode, message: str) -> StoreError:
    return StoreError(code, message)


EMPTY_KEY = _e(_C.INVALID_ARGUMENT, "etcdserver: key is not provided")
KEY_NOT_FOUND = _e(_C.INVALID_ARGUMENT, "etcdserver: key not found")
VALUE_PROVIDED = _e(_C.INVALID_ARGUMENT, "etcdserver: value is provided")
LEASE_PROVIDED = _e(_C.INVALID_ARGUMENT, "etcdserver: lease is provided")
TOO_MANY_OPS = _e(_C.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
DUPLICATE_KEY = _e(_C.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")
REQUEST_TOO_LARGE = _e(_C.INVALID_ARGUMENT, "etcdserver: request is too large")
COMPACTED = _e(_C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
FUTURE_REV = _e(_C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
LEASE_NOT_FOUND = _e(_C.NOT_FOUND, "etcdserver: requested lease not found")
LEASE_EXISTS = _e(_C.FAILED_PRECONDITION, "etcdserver: lease already exists")
LEASE_TTL_TOO_LARGE = _e(_C.OUT_OF_RANGE, "etcdserver: too large lease TTL")
NO_LEADER = _e(_C.UNAVAILABLE, "etcdserver: no leader")
LEADER_CHANGED = _e(_C.UNAVAILABLE, "etcdserver: leader changed")
TIMEOUT = _e(_C.UNAVAILABLE, "etcdserver: request timed out")
STOPPING = _e(_C.UNAVAILABLE, "etcdserver: server stopped")
MEMBER_NOT_FOUND = _e(_C.NOT_FOUND, "etcdserver: member not found")
PEER_URL_EXISTS = _e(_C.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
MEMBER_BAD_URLS = _e(_C.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")


def unimplemented(service: str, method: str) -> StoreError:
    """The answer for an etcd RPC raftstore does not serve."""
    return StoreError(
        _C.UNIMPLEMENTED,
        f"raftstore does not implement {service}.{method}; it serves KV, Watch, Lease, "
        "Cluster.MemberList/MemberAdd/MemberRemove and Maintenance.Status",
    )
