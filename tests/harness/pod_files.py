"""What a container sees of the host: its volume mounts mapped to host folders.

A pod's containers see their volumes at their mount paths; here each volume is a host folder
(``FakeKube.pod_files`` builds the view, ``subPath`` included), and any other path falls into
the container's private root folder. The exec interpreter (``exec_commands``) and the
controllers (``cluster``) map container paths to host paths, and back, with it.
"""

from __future__ import annotations

import posixpath
from pathlib import Path


class PodFiles:
    """Where a container's paths live on this machine.

    Each volume mount maps a container path to a host folder (the longest mount wins; a PVC is
    one host folder per namespace/claim, shared by every pod that mounts it; ``subPath`` is
    honoured). Any other path falls into the container's private root folder, so nothing a pod
    writes escapes the server's state folder.
    """

    def __init__(self, mounts: list[tuple[str, Path]], root: Path):
        pairs = [(posixpath.normpath("/" + path.lstrip("/")), Path(host)) for path, host in mounts]
        self.mounts = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)
        self.root = root

    def host(self, path: str, cwd: str = "/") -> Path:
        """The host path behind any container path."""
        full = posixpath.normpath("/" + posixpath.join(cwd, path).lstrip("/"))
        mounted = self.mounted(full)
        return mounted if mounted is not None else self.root / full.lstrip("/")

    def mounted(self, path: str) -> Path | None:
        """The host path behind an absolute container path, if a volume mount holds it."""
        if not path.startswith("/"):
            return None
        full = posixpath.normpath("/" + path.lstrip("/"))
        for prefix, host in self.mounts:
            if full == prefix:
                return host
            if full.startswith(prefix.rstrip("/") + "/"):
                return host / full[len(prefix) :].lstrip("/")
        return None

    def container(self, host_path: str) -> str | None:
        """The container path of a host path under a mount (the reverse mapping)."""
        for prefix, host in sorted(self.mounts, key=lambda pair: len(str(pair[1])), reverse=True):
            base = str(host)
            if host_path == base:
                return prefix
            if host_path.startswith(base.rstrip("/") + "/"):
                return posixpath.join(prefix, host_path[len(base) :].lstrip("/"))
        return None
