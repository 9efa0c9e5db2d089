from navarch.v1 import core_pb2 as _core_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LeaderStatus(_message.Message):
    __slots__ = ("identity", "leader", "leader_identity", "lease")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    LEADER_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    identity: str
    leader: bool
    leader_identity: str
    lease: str
    def __init__(self, identity: _Optional[str] = ..., leader: bool = ..., leader_identity: _Optional[str] = ..., lease: _Optional[str] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("namespace", "name", "pod")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    pod: _core_pb2.Pod
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., pod: _Optional[_Union[_core_pb2.Pod, _Mapping]] = ...) -> None: ...

class PluginVerdict(_message.Message):
    __slots__ = ("plugin", "code", "reasons")
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    plugin: str
    code: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, plugin: _Optional[str] = ..., code: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class PluginScore(_message.Message):
    __slots__ = ("plugin", "score", "weighted")
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_FIELD_NUMBER: _ClassVar[int]
    plugin: str
    score: int
    weighted: int
    def __init__(self, plugin: _Optional[str] = ..., score: _Optional[int] = ..., weighted: _Optional[int] = ...) -> None: ...

class NodeVerdict(_message.Message):
    __slots__ = ("node", "feasible", "filters", "scores", "total_score")
    NODE_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    node: str
    feasible: bool
    filters: _containers.RepeatedCompositeFieldContainer[PluginVerdict]
    scores: _containers.RepeatedCompositeFieldContainer[PluginScore]
    total_score: int
    def __init__(self, node: _Optional[str] = ..., feasible: bool = ..., filters: _Optional[_Iterable[_Union[PluginVerdict, _Mapping]]] = ..., scores: _Optional[_Iterable[_Union[PluginScore, _Mapping]]] = ..., total_score: _Optional[int] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("pod", "nodes", "selected_node", "message")
    POD_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SELECTED_NODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    pod: str
    nodes: _containers.RepeatedCompositeFieldContainer[NodeVerdict]
    selected_node: str
    message: str
    def __init__(self, pod: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[NodeVerdict, _Mapping]]] = ..., selected_node: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class SchedulerStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SchedulerStatus(_message.Message):
    __slots__ = ("election", "active_pods", "backoff_pods", "unschedulable_pods", "nodes", "bound", "scheduler_name")
    ELECTION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_PODS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_PODS_FIELD_NUMBER: _ClassVar[int]
    UNSCHEDULABLE_PODS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_NAME_FIELD_NUMBER: _ClassVar[int]
    election: LeaderStatus
    active_pods: int
    backoff_pods: int
    unschedulable_pods: int
    nodes: int
    bound: int
    scheduler_name: str
    def __init__(self, election: _Optional[_Union[LeaderStatus, _Mapping]] = ..., active_pods: _Optional[int] = ..., backoff_pods: _Optional[int] = ..., unschedulable_pods: _Optional[int] = ..., nodes: _Optional[int] = ..., bound: _Optional[int] = ..., scheduler_name: _Optional[str] = ...) -> None: ...

class ControllersStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ControllerStatus(_message.Message):
    __slots__ = ("name", "queue_depth", "delayed", "reconciles", "errors", "last_error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    DELAYED_FIELD_NUMBER: _ClassVar[int]
    RECONCILES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    queue_depth: int
    delayed: int
    reconciles: int
    errors: int
    last_error: str
    def __init__(self, name: _Optional[str] = ..., queue_depth: _Optional[int] = ..., delayed: _Optional[int] = ..., reconciles: _Optional[int] = ..., errors: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class ControllersStatus(_message.Message):
    __slots__ = ("election", "controllers")
    ELECTION_FIELD_NUMBER: _ClassVar[int]
    CONTROLLERS_FIELD_NUMBER: _ClassVar[int]
    election: LeaderStatus
    controllers: _containers.RepeatedCompositeFieldContainer[ControllerStatus]
    def __init__(self, election: _Optional[_Union[LeaderStatus, _Mapping]] = ..., controllers: _Optional[_Iterable[_Union[ControllerStatus, _Mapping]]] = ...) -> None: ...
