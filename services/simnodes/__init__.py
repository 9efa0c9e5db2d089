"""``navarch simnodes``: simulated nodes (hollow kubelets) for testing and benchmarking the
control plane without containers. See README.md."""
