"""The fixed catalogue of permissions a role can hold, and the built-in roles."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Perm(models.TextChoices):
    REPLY = "reply", _("Reply to customers")
    ADD_NOTES = "add_notes", _("Add internal notes")
    ASSIGN = "assign", _("Assign and reassign conversations")
    SNOOZE = "snooze", _("Snooze conversations")
    RESOLVE = "resolve", _("Resolve and reopen conversations")
    DELETE_MESSAGES = "delete_messages", _("Delete messages")
    DELETE_CONVERSATIONS = "delete_conversations", _("Delete conversations")
    SEE_DELETED = "see_deleted", _("See deleted messages")
    RESTORE = "restore", _("Restore messages and conversations")
    VIEW_REPORTS = "view_reports", _("View reports")
    EXPORT = "export", _("Export data")
    MANAGE_CONTACTS = "manage_contacts", _("Manage contacts")
    BLOCK_CONTACTS = "block_contacts", _("Block contacts")
    MANAGE_CHANNELS = "manage_channels", _("Manage channels")
    MANAGE_CANNED = "manage_canned", _("Manage canned responses and quick answers")
    MANAGE_EMPLOYEES = "manage_employees", _("Manage employees and teams")
    MANAGE_ROLES = "manage_roles", _("Manage roles")
    MANAGE_COMPANY = "manage_company", _("Manage company settings")
    VIEW_AUDIT_LOG = "view_audit_log", _("View the audit log")


AGENT_PERMS = [Perm.REPLY, Perm.ADD_NOTES, Perm.ASSIGN, Perm.SNOOZE, Perm.RESOLVE, Perm.MANAGE_CONTACTS]
ADMIN_PERMS = [p for p in Perm if p not in (Perm.MANAGE_ROLES,)]
SUPER_ADMIN_PERMS = list(Perm)

# How the role editor lays the catalogue out.
PERM_GROUPS = [
    (_("Conversations"), [Perm.REPLY, Perm.ADD_NOTES, Perm.ASSIGN, Perm.SNOOZE, Perm.RESOLVE]),
    (
        _("Deleting and restoring"),
        [Perm.DELETE_MESSAGES, Perm.DELETE_CONVERSATIONS, Perm.SEE_DELETED, Perm.RESTORE],
    ),
    (_("Contacts"), [Perm.MANAGE_CONTACTS, Perm.BLOCK_CONTACTS]),
    (_("Reports"), [Perm.VIEW_REPORTS, Perm.EXPORT, Perm.VIEW_AUDIT_LOG]),
    (
        _("Administration"),
        [Perm.MANAGE_CHANNELS, Perm.MANAGE_CANNED, Perm.MANAGE_EMPLOYEES, Perm.MANAGE_ROLES, Perm.MANAGE_COMPANY],
    ),
]
