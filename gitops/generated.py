"""The apps app sets generated, read back for the commands (`apps`, `sync`, `diff`).

The command line reads the same compacted `<prefix>.generated-apps` topic the syncers
and the receiver follow, so a generated app is named, synced and diffed exactly like a
configured one, and `gitops apps` can say which set it came from.
"""

from __future__ import annotations

from gitops.reading import read_records
from schemas import GitopsConfig, Topics
from schemas.appsets import DefinitionTable
from schemas.events import AppDefinitionData


async def generated_apps(config: GitopsConfig) -> dict[str, AppDefinitionData]:
    """Current definitions of the generated apps, by app name (none without app sets)."""
    if not config.app_sets:
        return {}
    table = DefinitionTable(config.apps)
    topic = Topics(config.kafka.topic_prefix).generated_apps
    async for record in read_records(config.kafka.bootstrap, [topic], idle=0.5):
        table.apply(record.key, record.value)
    return table.generated


async def with_generated(config: GitopsConfig) -> tuple[GitopsConfig, dict[str, str]]:
    """The configuration with the generated apps added, and the set of each of them."""
    generated = await generated_apps(config)
    if not generated:
        return config, {}
    apps = {**config.apps, **{name: d.settings for name, d in generated.items()}}
    origins = {name: d.app_set for name, d in generated.items()}
    return config.model_copy(update={"apps": apps}), origins
