"""Deployment: a whole local cluster on one machine (``navarch up``/``down``) and, later, Vagrant."""
