"""``navarch up`` / ``down`` / ``status``: a local cluster on this machine (filled in below)."""

from __future__ import annotations

import argparse


def cmd_up(args: argparse.Namespace) -> int:
    raise SystemExit("navarch up: not implemented yet")


def cmd_down(args: argparse.Namespace) -> int:
    raise SystemExit("navarch down: not implemented yet")


def cmd_status(args: argparse.Namespace) -> int:
    raise SystemExit("navarch status: not implemented yet")
