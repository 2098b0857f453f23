"""Where the etcd cluster is and how to reach it: endpoints, client TLS, key prefix.

Agents and the controller take the same settings (`--etcd-endpoints`, `--etcd-ca`,
`--etcd-cert`, `--etcd-key`, or the CORRAL_ETCD_* variables). A bad setting is an
EtcdSettingError that names the setting, raised at start before anything is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PREFIX = "/corral/"


class EtcdSettingError(ValueError):
    """A setting of the etcd connection is malformed; `setting` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


@dataclass(frozen=True)
class EtcdSettings:
    """How to reach etcd: client URLs, client TLS files (all or none), key prefix."""

    endpoints: tuple[str, ...]
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    prefix: str = DEFAULT_PREFIX
    origin: dict[str, str] = field(default_factory=dict, compare=False)
    """The name each setting was given under (flag or variable), for error messages."""

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    def name_of(self, setting: str) -> str:
        return self.origin.get(setting, setting)


def parse_endpoints(raw: str | list[str] | tuple[str, ...], setting: str) -> tuple[str, ...]:
    """Return the endpoint URLs of a comma-separated list, each checked: http(s)://host:port."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    urls = tuple(item.strip().rstrip("/") for item in items if item.strip())
    if not urls:
        raise EtcdSettingError(setting, "no endpoint given (expected https://HOST:2379,...)")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EtcdSettingError(
                setting, f"{url!r} is not an etcd client URL (expected https://HOST:PORT)"
            )
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None:
            raise EtcdSettingError(setting, f"{url!r} names no valid port (etcd's is 2379)")
        if parts.path not in ("", "/"):
            raise EtcdSettingError(setting, f"{url!r} has a path; give only scheme://host:port")
    return urls


def make_settings(
    endpoints: str | list[str] | tuple[str, ...],
    *,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    prefix: str = DEFAULT_PREFIX,
    names: dict[str, str] | None = None,
) -> EtcdSettings:
    """Return checked settings; EtcdSettingError names the first bad setting.

    `names` maps endpoints/ca_file/cert_file/key_file to the flag or variable the value
    came from. TLS takes all three files or none; https endpoints need them, http ones
    refuse them (a certificate that would be ignored is a mistake worth reporting).
    """
    names = names or {}
    settings = EtcdSettings(
        endpoints=parse_endpoints(endpoints, names.get("endpoints", "endpoints")),
        ca_file=Path(ca_file) if ca_file else None,
        cert_file=Path(cert_file) if cert_file else None,
        key_file=Path(key_file) if key_file else None,
        prefix=prefix if prefix.endswith("/") else prefix + "/",
        origin=dict(names),
    )
    files = {
        "ca_file": settings.ca_file,
        "cert_file": settings.cert_file,
        "key_file": settings.key_file,
    }
    given = [k for k, v in files.items() if v is not None]
    if given and len(given) != len(files):
        missing = [k for k in files if k not in given]
        raise EtcdSettingError(
            settings.name_of(missing[0]),
            f"TLS needs a CA, a client certificate and its key; "
            f"{', '.join(settings.name_of(k) for k in given)} given without it",
        )
    for key, path in files.items():
        if path is not None and not path.is_file():
            raise EtcdSettingError(settings.name_of(key), f"{path} is not a readable file")
    schemes = {urlsplit(url).scheme for url in settings.endpoints}
    if "https" in schemes and not settings.tls:
        raise EtcdSettingError(
            settings.name_of("ca_file"), "https endpoints need the CA, certificate and key"
        )
    if settings.tls and "http" in schemes:
        raise EtcdSettingError(
            settings.name_of("endpoints"), "TLS files given but an endpoint uses http://"
        )
    return settings
