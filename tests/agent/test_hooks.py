"""Hook scripts around domain verbs: rewrite, veto, timeout, opt-in, after-hook failures."""

from __future__ import annotations

import pytest
from agentkit import revise, write_hook

from controller.agents import HookFailed
from nodeagent.hooks import hook_name

ADD_DESCRIPTION = (
    "sed 's|<name>\\(.*\\)</name>|<name>\\1</name><description>hooked at start</description>|'\n"
)


@pytest.mark.parametrize(
    ("filename", "name"),
    [("10_add_description.sh", "add_description"), ("vlan-tag", "vlan-tag"), ("5-x.py", "x")],
)
def test_hook_name_drops_order_prefix_and_extension(filename, name):
    assert hook_name(filename) == name


def test_before_start_hook_rewrites_live_xml_only(client, spec, hooks_dir):
    write_hook(hooks_dir, "before_vm_start", "10_add_description.sh", ADD_DESCRIPTION)
    client.ensure_domain_defined(revise(spec, hooks=["add_description"]))

    client.ensure_running("web-1")

    observed = client.get_domain("web-1")
    assert observed.live.description == "hooked at start"
    assert observed.spec.description is None
    assert client.get_state().hooks == {"before_vm_start": ["add_description"]}


def test_hook_runs_only_for_vms_that_list_it(client, spec, hooks_dir):
    write_hook(hooks_dir, "before_vm_start", "10_add_description.sh", ADD_DESCRIPTION)
    client.ensure_domain_defined(spec)

    client.ensure_running("web-1")

    assert client.get_domain("web-1").live.description is None


def test_hooks_chain_in_name_order(client, spec, hooks_dir):
    write_hook(hooks_dir, "before_vm_start", "10_add_description.sh", ADD_DESCRIPTION)
    write_hook(
        hooks_dir,
        "before_vm_start",
        "20_shout.sh",
        "sed 's|hooked at start|HOOKED AT START|'\n",
    )
    client.ensure_domain_defined(revise(spec, hooks=["add_description", "shout"]))

    client.ensure_running("web-1")

    assert client.get_domain("web-1").live.description == "HOOKED AT START"


def test_failing_before_hook_vetoes_start_with_its_stderr(client, spec, hooks_dir):
    write_hook(hooks_dir, "before_vm_start", "50_policy", "echo 'no GPUs left' >&2\nexit 3\n")
    client.ensure_domain_defined(revise(spec, hooks=["policy"]))

    with pytest.raises(HookFailed) as caught:
        client.ensure_running("web-1")

    assert "exited 3" in str(caught.value)
    assert "no GPUs left" in str(caught.value)
    assert client.get_domain("web-1").state == "shutoff"


def test_hung_hook_times_out(client, spec, hooks_dir):
    write_hook(hooks_dir, "before_vm_start", "50_slow", "sleep 30\n")
    client.ensure_domain_defined(revise(spec, hooks=["slow"]))

    with pytest.raises(HookFailed, match="timed out after 2 s") as caught:
        client.ensure_running("web-1")

    assert caught.value.retryable is True
    assert client.get_domain("web-1").state == "shutoff"


def test_hook_printing_another_domain_is_refused(client, spec, hooks_dir):
    write_hook(
        hooks_dir, "before_vm_start", "50_bad", "sed 's|<name>web-1</name>|<name>x</name>|'\n"
    )
    client.ensure_domain_defined(revise(spec, hooks=["bad"]))

    with pytest.raises(HookFailed, match="not domain 'web-1'"):
        client.ensure_running("web-1")


def test_missing_hook_fails_the_start(client, spec):
    client.ensure_domain_defined(revise(spec, hooks=["not_installed"]))

    with pytest.raises(HookFailed, match="not_installed"):
        client.ensure_running("web-1")
    assert client.get_domain("web-1").state == "shutoff"


def test_before_destroy_hook_can_veto_a_stop(client, spec, hooks_dir):
    write_hook(hooks_dir, "before_vm_destroy", "50_guard", "echo 'backup running' >&2\nexit 1\n")
    client.ensure_domain_defined(revise(spec, hooks=["guard"]))
    client.ensure_running("web-1")

    with pytest.raises(HookFailed, match="backup running"):
        client.ensure_destroyed("web-1")
    assert client.get_domain("web-1").state == "running"


def test_after_hook_failure_is_logged_and_keeps_the_operation(client, spec, hooks_dir, tmp_path):
    marker = tmp_path / "after-ran"
    write_hook(hooks_dir, "after_vm_start", "50_notify", f"cat > {marker}\nexit 9\n")
    client.ensure_domain_defined(revise(spec, hooks=["notify"]))

    result = client.ensure_running("web-1")

    assert result.changed is True
    assert client.get_domain("web-1").state == "running"
    assert "<name>web-1</name>" in marker.read_text()


def test_hook_environment_names_the_vm(client, spec, hooks_dir, tmp_path):
    out = tmp_path / "env"
    write_hook(
        hooks_dir,
        "after_vm_destroy",
        "50_env",
        f'echo "$CORRAL_HOOK_POINT $CORRAL_VM_NAME $CORRAL_VM_UUID" > {out}\n',
    )
    client.ensure_domain_defined(revise(spec, hooks=["env"]))
    client.ensure_running("web-1")

    client.ensure_stopped("web-1", timeout_s=5)

    assert out.read_text().split() == ["after_vm_destroy", "web-1", spec.uuid]
