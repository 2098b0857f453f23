"""A before_vm_start hook script for tests: it sets the domain's <description>."""

from __future__ import annotations

import textwrap
from pathlib import Path

ADD_DESCRIPTION = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    import sys
    import xml.etree.ElementTree as ET

    root = ET.fromstring(sys.stdin.read())
    desc = root.find("description")
    if desc is None:
        desc = ET.Element("description")
        root.insert(1, desc)
    desc.text = {text!r}
    sys.stdout.write(ET.tostring(root, encoding="unicode"))
    """
)


def write_description_hook(hooks_dir: Path, file_name: str, text: str) -> Path:
    """Write an executable before_vm_start hook `file_name` that sets <description> to
    `text`; return its path (hooks_dir/before_vm_start/file_name)."""
    hook = hooks_dir / "before_vm_start" / file_name
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(ADD_DESCRIPTION.format(text=text))
    hook.chmod(0o755)
    return hook
