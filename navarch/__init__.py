"""Navarch: a Kubernetes-class container cluster manager.

This package is the user-facing side: the SDK, the ``navarch`` daemon launcher and
(later) ``navctl``. The daemons live in their own top-level packages
(``raftstore``, ``services``, ``node_agent``, ``netproxy``, ``deploy``).
"""

__version__ = "0.1.0"
