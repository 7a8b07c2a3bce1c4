"""On PostgreSQL the database itself refuses UPDATE and DELETE on audit rows (SQLite relies on verify_audit)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_auditevent_insert_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditevent is insert-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_auditevent_insert_only ON audit_auditevent;
CREATE TRIGGER audit_auditevent_insert_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_insert_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_auditevent_insert_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_insert_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # no placeholders: keep the % in RAISE literal


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
