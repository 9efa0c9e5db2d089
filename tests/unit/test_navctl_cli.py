"""navctl's command line: global flags before or after the command, options mixed with
names, as kubectl parses them."""

from __future__ import annotations

import pytest

from navarch._navctl import parse_args


@pytest.mark.parametrize("argv", [
    ["-n", "demo", "get", "pod", "web", "-o", "wide"],
    ["get", "pod", "-n", "demo", "web", "-o", "wide"],
    ["get", "-o", "wide", "--namespace=demo", "pod", "web"],
    ["--namespace", "demo", "get", "pod", "web", "-owide"],
])
def test_flags_anywhere(argv: list[str]) -> None:
    args = parse_args(argv)
    assert (args.command, args.namespace, args.targets, args.output) == (
        "get", "demo", ["pod", "web"], "wide")


def test_flag_after_the_command_wins_over_one_before() -> None:
    args = parse_args(["--server", "a:1", "-n", "x", "get", "pods", "-n", "y"])
    assert (args.server, args.namespace) == ("a:1", "y")
    assert parse_args(["get", "pods"]).namespace is None


def test_create_namespace_and_manifests() -> None:
    ns = parse_args(["create", "namespace", "team", "--dry-run=server"])
    assert (ns.create_command, ns.name, ns.dry_run) == ("namespace", "team", "server")
    files = parse_args(["create", "-f", "a.yaml", "-f", "b.yaml"])
    assert files.filename == ["a.yaml", "b.yaml"] and not getattr(files, "create_command", None)


def test_label_changes_follow_the_object() -> None:
    args = parse_args(["label", "pods", "web", "a=1", "b-", "--overwrite"])
    assert (args.args, args.overwrite) == (["pods", "web", "a=1", "b-"], True)


@pytest.mark.parametrize(("argv", "wait"), [
    (["delete", "pod", "web"], True), (["delete", "pod", "web", "--wait=false"], False),
    (["delete", "pod", "web", "--wait"], True),
])
def test_delete_wait_flag(argv: list[str], wait: bool) -> None:
    assert parse_args(argv).wait is wait


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["bogus"])
    assert info.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
