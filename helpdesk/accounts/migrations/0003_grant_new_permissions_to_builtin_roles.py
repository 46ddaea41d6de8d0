"""The catalogue gained delete_conversations and view_audit_log: built-in admin roles get them."""

from django.db import migrations

NEW = ["delete_conversations", "view_audit_log"]


def grant(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.filter(builtin__in=["admin", "super_admin"]):
        missing = [perm for perm in NEW if perm not in role.permissions]
        if missing:
            role.permissions = [*role.permissions, *missing]
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_company_settings_2fa_api_tokens")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
