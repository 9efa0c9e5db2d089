"""Deployment: a local cluster on one machine (``navarch up``/``down``); later, Vagrant."""
