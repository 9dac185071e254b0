"""UniformConfig from an Airflow connection, the schema map, and the operation models."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors import catalog
from connectors.errors import PermanentError
from connectors.licensing.operations import OPERATIONS, DriverLicence, PremisesLicence
from connectors.licensing.schema import SchemaMap, build_tables
from connectors.licensing.uniform import UniformConfig, UniformConnector


def test_catalogue_points_at_this_connector() -> None:
    assert catalog.connector_class("licensing_uniform") is UniformConnector
    assert catalog.operations("licensing_uniform") is OPERATIONS
    assert UniformConnector.system_id() == "licensing_uniform"
    assert UniformConnector.default_conn_id == "licensing_uniform"


def test_from_connection_maps_standard_fields_and_allowlists_extras() -> None:
    config = UniformConfig.from_connection(
        host="db.council.internal", port=5432, login="lic_hub", password="s3cret",
        schema="uniform", extra={"driver": "postgresql+psycopg2", "lock_timeout_seconds": 2,
                                 "schema_map": {"tables": {"application": "UNI_LIC_APP"}},
                                 "echo": True})
    url = config.sqlalchemy_url()
    assert (url.host, url.port, url.username, url.database) == (
        "db.council.internal", 5432, "lic_hub", "uniform")
    assert url.password is None, "the password never goes into the URL string"
    assert config.password is not None and config.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    assert config.lock_timeout_seconds == 2
    assert build_tables(config.schema_map).application.name == "UNI_LIC_APP"


def test_password_in_url_is_refused() -> None:
    with pytest.raises(PermanentError) as info:
        UniformConfig.from_connection(extra={"url": "postgresql://lic:secret@db/uniform"})
    assert "url" in info.value.message and "secret" not in info.value.message


def test_a_place_to_connect_is_required() -> None:
    with pytest.raises(ValidationError):
        UniformConfig()


@pytest.mark.parametrize("schema_map", [
    {"tables": {"applications": "X"}},
    {"columns": {"application.no_such": "X"}},
    {"columns": {"application.ext_ref": "EXT REF; DROP TABLE"}},
])
def test_bad_schema_map_is_a_configuration_error(schema_map: dict) -> None:
    with pytest.raises(PermanentError):
        UniformConfig.from_connection(extra={"url": "sqlite://", "schema_map": schema_map})


def test_schema_map_columns_keep_logical_keys() -> None:
    tables = build_tables(SchemaMap(columns={"application.ext_ref": "CLIENT_REF"},
                                    db_schema="uniform"))
    assert tables.application.c.ext_ref.name == "CLIENT_REF"
    assert tables.application.schema == "uniform"
    assert tables.application.c.app_ref.name == "APP_REF"


def test_bad_timezone_and_ref_format_are_refused() -> None:
    with pytest.raises(ValidationError):
        UniformConfig(url="sqlite://", backoffice_timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        UniformConfig(url="sqlite://", app_ref_format="{applicant}")


def test_driver_models_require_date_of_birth_and_licence_number() -> None:
    with pytest.raises(ValidationError) as info:
        DriverLicence.model_validate({"applicant": {"name": "A Driver"},
                                      "driving_licence_number": "OKAFO801218K99AB"})
    assert ("applicant", "date_of_birth") in [e["loc"] for e in info.value.errors()]
    model = DriverLicence.model_validate({
        "applicant": {"name": "A Driver", "date_of_birth": "1980-01-01"},
        "driving_licence_number": "okafo801218k99ab", "payment_ref": "pay-1234"})
    assert model.driving_licence_number == "OKAFO801218K99AB" and model.payment_ref == "PAY-1234"


def test_premises_model_needs_an_activity_and_a_reference() -> None:
    with pytest.raises(ValidationError):
        PremisesLicence.model_validate({"applicant": {"name": "X"}, "premises_ref": "PR00001",
                                        "activities": []})
    with pytest.raises(ValidationError):
        PremisesLicence.model_validate({"applicant": {"name": "X"}, "premises_ref": "12 High St",
                                        "activities": ["sale_of_alcohol"]})
