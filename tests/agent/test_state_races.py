"""The host state read survives objects removed between libvirt's listing and their read."""

from __future__ import annotations

from agentkit import make_spec

from nodeagent.state import read_domains


class ListingWithAGhost:
    """A libvirt connection whose domain listing still includes a domain just undefined,
    as a listing taken a moment before the undefine would."""

    def __init__(self, conn, ghost) -> None:
        self._conn = conn
        self._ghost = ghost

    def listAllDomains(self, flags: int = 0):
        return [*self._conn.listAllDomains(flags), self._ghost]

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


def test_a_domain_undefined_mid_read_is_left_out_not_an_error(agent, client_for):
    client = client_for(agent)
    client.ensure_domain_defined(make_spec("stays", n=1))
    client.ensure_domain_defined(make_spec("goes", n=2))
    conn = agent.ctx.connection.get()
    ghost = conn.lookupByName("goes")
    ghost.undefine()
    names = [d.name for d in read_domains(agent.ctx, ListingWithAGhost(conn, ghost))]
    assert "stays" in names and "goes" not in names
