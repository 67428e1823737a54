"""The forges committer knows, one line each, and the choice of one for a remote.

Asked in order, the first whose `claims(settings)` is true is the remote's forge; a remote none claims is
on a plain git host. Without a remote (`connect` about to create one) the first listed is the default.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from committer.core.settings import Settings
from committer.sync.forge import Forge, no_settings
from committer.sync.forges.github import GitHub
from committer.sync.forges.plain import Plain


class Kind(Protocol):
    """A forge class: whether it is the host of these settings' remote, and the forge for them."""

    def claims(self, settings: Settings) -> bool:
        """Whether the remote (or a setting such as an App) says this host."""
        ...

    def __call__(self, settings: Settings) -> Forge:
        """The forge for these settings."""
        ...


FORGES: list[Kind] = [
    GitHub,
]


def forge_for(settings: Settings | str) -> Forge:
    """The forge of these settings' remote (or of a remote URL); the first listed when there is no remote."""
    if isinstance(settings, str):
        settings = no_settings(settings)
    for kind in FORGES:
        if kind.claims(settings):
            return kind(settings)
    return Plain(settings) if settings.remote else FORGES[0](settings)


def forge_to_create(settings: Settings) -> Forge:
    """The forge `connect` finds or creates the repository on: the remote's, or the first listed when the
    remote is on a plain host (a mirror, a self-hosted server), which `connect` moves to that forge."""
    forge = forge_for(settings)
    return FORGES[0](dataclasses.replace(settings, remote="")) if isinstance(forge, Plain) else forge
