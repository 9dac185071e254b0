"""Airflow 3 plugin: mounts the hub's pages on Airflow's API server and adds them to its navigation.

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so an installed hub needs
nothing in ``$AIRFLOW_HOME/plugins``. Airflow does not authenticate plugin routes: the hub's own
sign-in guards every one of them, mounted or not. Building the plugin does no I/O; the app reads
its settings (HUB_DATABASE_URL...) from the API server's environment.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/hub"


def _app():  # type: ignore[no-untyped-def]
    from hub.web.app import create_app

    return create_app()


class HubPlugin(AirflowPlugin):
    name = "council_integration_hub"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Council integration hub"}]
    external_views = [
        {"name": "Work desk", "href": f"{URL_PREFIX}/desk", "destination": "nav",
         "category": "Integration hub", "url_route": "hub-desk"},
        {"name": "Hub operations", "href": f"{URL_PREFIX}/operations", "destination": "nav",
         "category": "Integration hub", "url_route": "hub-operations"},
        {"name": "Management information", "href": f"{URL_PREFIX}/mi", "destination": "nav",
         "category": "Integration hub", "url_route": "hub-mi"},
    ]
