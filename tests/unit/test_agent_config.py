"""``navarch agent`` flags: each bad one is named with what it accepts."""

from __future__ import annotations

import argparse

import pytest

from node_agent.config import AgentConfig, add_arguments
from services.daemon import ConfigError

BASE = ["--node-name", "n1", "--node-ip", "10.0.0.2", "--cri-socket", "/run/c.sock",
        "--root-dir", "/var/lib/navarch"]


def parse(*extra: str) -> AgentConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return AgentConfig.from_args(parser.parse_args([*BASE, *extra]))


def test_defaults() -> None:
    cfg = parse()
    assert (cfg.node_name, cfg.node_ip, cfg.pod_metrics_interval) == ("n1", "10.0.0.2", 15.0)


def test_pod_metrics_can_be_turned_off() -> None:
    assert parse("--pod-metrics-interval", "0").pod_metrics_interval == 0


@pytest.mark.parametrize(("flags", "message"), [
    (("--pod-metrics-interval", "-1"), "--pod-metrics-interval: seconds, 0 (none) or more"),
    (("--pod-metrics-interval", "inf"), "--pod-metrics-interval: seconds, 0 (none) or more"),
    (("--node-ip", "ten"), "--node-ip: 'ten' is not an IP address"),
    (("--max-pods", "0"), "--max-pods: must be more than 0"),
    (("--cgroup-root", "navarch"), "--cgroup-root: must be an absolute cgroup path"),
])
def test_a_bad_flag_is_named(flags: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(*flags)
    assert str(exc.value).startswith(message)
