"""Writes grafana/provisioning/dashboards/tracker.json: grafana/tracker.json with its data source fixed.

grafana/tracker.json is for Dashboards → New → Import, which asks for the `${DS_INFLUXDB}` input.
File provisioning never fills such inputs in (grafana/grafana#10786), so the provisioned copy names
the provisioned data source by its uid instead. Run this after editing the dashboard:

    python3 grafana/make_provisioned.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "tracker.json"
TARGET = HERE / "provisioning" / "dashboards" / "tracker.json"
# Must match `uid` in provisioning/datasources/tracker.yaml.
DATASOURCE_UID = "tracker-influxdb"
IMPORT_INPUT = "${DS_INFLUXDB}"
# Keys only the import dialog reads.
IMPORT_ONLY_KEYS = ("__inputs", "__elements", "__requires")


def provisioned(node: Any) -> Any:
    """The dashboard (or any part of it) with the import input replaced by the fixed data source uid."""
    if isinstance(node, dict):
        return {key: provisioned(value) for key, value in node.items() if key not in IMPORT_ONLY_KEYS}
    if isinstance(node, list):
        return [provisioned(value) for value in node]
    if isinstance(node, str):
        return node.replace(IMPORT_INPUT, DATASOURCE_UID)
    return node


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def provisioned_text(source: Path = SOURCE) -> str:
    """What TARGET must contain for the dashboard in `source`."""
    return render(provisioned(json.loads(source.read_text(encoding="utf-8"))))


def main() -> None:
    TARGET.write_text(provisioned_text(), encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
