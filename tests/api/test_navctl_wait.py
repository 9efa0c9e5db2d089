"""navctl wait end to end: the real command against a real API server, with the test
playing the kubelet (status updates) while navctl waits."""

from __future__ import annotations

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import finished, navctl, started
from tests.api.util import pod


async def _ready(client: navarch.Client, ns: str, name: str) -> None:
    current = await client.pods(ns).get(name)
    current.status.phase = "Running"
    current.status.conditions.add(type="Ready", status="True")
    await client.pods(ns).update_status(current)


async def test_wait_for_a_condition_then_for_deletion(apiserver: ApiServerProcess,
                                                       client: navarch.Client, ns: str) -> None:
    await client.pods(ns).create(pod("web", ns, {"app": "web"}))
    await client.pods(ns).create(pod("api", ns, {"app": "web"}))
    async with started(apiserver, "-n", ns, "wait", "pods", "-l", "app=web",
                       "--for=condition=Ready", "--timeout=30s") as waiting:
        await _ready(client, ns, "api")
        await _ready(client, ns, "web")
        result = await finished(waiting)
    assert (result.code, result.err) == (0, "")
    assert sorted(result.out.splitlines()) == ["pod/api condition met", "pod/web condition met"]

    phase = await navctl(apiserver, "-n", ns, "wait", "pod/web",
                         "--for=jsonpath={.status.phase}=Running")
    assert phase.out == "pod/web condition met\n"

    # a finalizer holds the deleted pod: wait --for=delete waits for it
    await client.pods(ns).patch("web", {"metadata": {"finalizers": ["example.com/hold"]}})
    await client.pods(ns).delete("web")
    held = await navctl(apiserver, "-n", ns, "wait", "pod/web", "--for=delete", "--timeout=1s")
    assert (held.code, held.err) == (1, "error: timed out waiting for the condition on "
                                        "pods/web\n")
    async with started(apiserver, "-n", ns, "wait", "pod/web", "--for=delete") as waiting:
        await client.pods(ns).patch("web", {"metadata": {"finalizers": None}})
        gone = await finished(waiting)
    assert gone.code == 0
    # "condition met" when navctl saw it go; nothing when it was gone at navctl's first read
    assert gone.out in ("pod/web condition met\n", "")
    absent = await navctl(apiserver, "-n", ns, "wait", "pod/web", "--for=delete")
    assert (absent.code, absent.out, absent.err) == (0, "", "")


async def test_wait_times_out_and_names_what_is_missing(apiserver: ApiServerProcess,
                                                        client: navarch.Client, ns: str) -> None:
    await client.pods(ns).create(pod("slow", ns))
    late = await navctl(apiserver, "-n", ns, "wait", "pod/slow", "--for=condition=Ready",
                        "--timeout=1s")
    assert (late.code, late.out) == (1, "")
    assert late.err == "error: timed out waiting for the condition on pods/slow\n"
    missing = await navctl(apiserver, "-n", ns, "wait", "pod/nope", "--for=condition=Ready")
    assert (missing.code, missing.err) == (1, 'Error from server (NotFound): pods "nope" '
                                              "not found\n")
    none = await navctl(apiserver, "-n", ns, "wait", "pods", "-l", "app=none",
                        "--for=condition=Ready")
    assert (none.code, none.err) == (1, "error: no matching resources found\n")
    bad = await navctl(apiserver, "-n", ns, "wait", "pod/slow", "--for=ready")
    assert (bad.code, bad.err) == (1, "error: unrecognized condition: 'ready'\n")


async def test_wait_for_create(apiserver: ApiServerProcess, client: navarch.Client,
                               ns: str) -> None:
    async with started(apiserver, "-n", ns, "wait", "pod/later", "--for=create",
                       "--timeout=30s") as waiting:
        await client.pods(ns).create(pod("later", ns))
        made = await finished(waiting)
    assert (made.code, made.out) == (0, "pod/later condition met\n")
