"""``navarch scheduler`` flags."""

from __future__ import annotations

import pytest

from navarch._cli import build_parser
from services.daemon import ConfigError
from services.scheduler.scheduler import SchedulerOptions
from services.scheduler.server import options_of


@pytest.mark.parametrize(("argv", "want"), [
    ([], SchedulerOptions()),
    (["--scheduler-name", "second", "--percentage-of-nodes-to-score", "30",
      "--bind-concurrency", "8", "--disable-preemption"],
     SchedulerOptions("second", 30, 8, False)),
])
def test_flags(argv: list[str], want: SchedulerOptions) -> None:
    args = build_parser().parse_args(["scheduler", *argv])
    assert options_of(args) == want
    assert args.listen == "127.0.0.1:10259"


@pytest.mark.parametrize(("argv", "flag"), [
    (["--percentage-of-nodes-to-score", "101"], "--percentage-of-nodes-to-score"),
    (["--bind-concurrency", "0"], "--bind-concurrency"),
])
def test_bad_flags(argv: list[str], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        options_of(build_parser().parse_args(["scheduler", *argv]))
