"""Listing observed hosts with a decoder: each state is decoded once per state hash, the
same value comes back while it is unchanged, and plain listings still give dicts."""

from __future__ import annotations

from typing import Any

from controller.store import Store

STATE = {"host": "h1", "domains": [{"name": "web-1", "state": "running"}]}


class Decoded:
    """A decoded state that remembers its document's domain names."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.domains = [d["name"] for d in doc["domains"]]


def test_unchanged_states_decode_once_and_come_back_the_same(store: Store) -> None:
    calls: list[dict[str, Any]] = []

    def decode(doc: dict[str, Any]) -> Decoded:
        calls.append(doc)
        return Decoded(doc)

    store.put_observed("h1", reachable=True, state=STATE)
    store.put_observed("h2", reachable=False, error="connection refused")
    first = {o.host: o for o in store.list_observed(decode=decode)}
    again = {o.host: o for o in store.list_observed(decode=decode)}
    assert first["h1"].state.domains == ["web-1"]
    assert again["h1"].state is first["h1"].state
    assert (first["h2"].state, first["h2"].last_error) == (None, "connection refused")
    assert len(calls) == 1

    store.put_observed("h1", reachable=True, state={**STATE, "domains": []})
    moved = {o.host: o for o in store.list_observed(decode=decode)}
    assert moved["h1"].state.domains == []
    assert len(calls) == 2


def test_plain_listings_keep_giving_dicts(store: Store) -> None:
    store.put_observed("h1", reachable=True, state=STATE)
    store.list_observed(decode=Decoded)
    plain = store.list_observed()
    assert plain[0].state == STATE
    assert store.list_observed()[0].state is plain[0].state
    assert isinstance(store.list_observed(decode=Decoded)[0].state, Decoded)


def test_a_forgotten_host_is_not_listed_from_the_cache(store: Store) -> None:
    store.put_observed("h1", reachable=True, state=STATE)
    store.put_observed("h2", reachable=True, state=STATE)
    assert [o.host for o in store.list_observed(decode=Decoded)] == ["h1", "h2"]
    store.delete_observed("h1")
    assert [o.host for o in store.list_observed(decode=Decoded)] == ["h2"]
