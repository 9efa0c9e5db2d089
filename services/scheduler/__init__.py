"""The scheduler (`navarch scheduler`): binds pending pods to nodes. See README.md."""
