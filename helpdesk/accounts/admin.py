"""Django admin: the platform operator's screens (a superuser), not the companies' own settings."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.events import audit

from . import actions, services
from .models import ApiToken, BuiltinRole, Company, Employee, Role, Team, username_for


class NewCompanyForm(forms.ModelForm):
    """Adding a company also creates its first super-admin, who gets a set-password link."""

    admin_email = forms.EmailField(label=gettext_lazy("First super-admin's e-mail"))
    admin_name = forms.CharField(label=gettext_lazy("First super-admin's name"), max_length=150)

    class Meta:
        model = Company
        fields = ("name", "timezone", "description")

    def clean_admin_email(self) -> str:
        email = self.cleaned_data["admin_email"].strip().lower()
        if get_user_model().objects.filter(username=username_for(email)).exists():
            raise forms.ValidationError(_("Someone with that e-mail already has an account."))
        return email


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "timezone", "require_2fa_for_admins", "created_at")
    search_fields = ("name",)
    fields = ("name", "timezone", "description", "require_2fa_for_admins")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = NewCompanyForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ("name", "timezone", "description", "admin_email", "admin_name") if obj is None else self.fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            return
        services.ensure_builtin_roles(obj)
        admin = services.create_employee(
            company=obj,
            email=form.cleaned_data["admin_email"],
            name=form.cleaned_data["admin_name"],
            role=BuiltinRole.SUPER_ADMIN,
        )
        audit.record(
            "company.created", company=obj, actor=None, actor_name=f"platform operator {request.user.get_username()}",
            obj=obj, after={"name": obj.name, "timezone": obj.timezone, "super_admin": admin.user.email},
        )  # fmt: skip
        link = actions.password_link(admin, base_url=request.build_absolute_uri("/"))
        messages.success(
            request,
            _("%(email)s is the super-admin. Send them this link to choose a password: %(link)s")
            % {"email": admin.user.email, "link": link},
        )


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "company", "builtin", "scope", "archived_at")
    list_filter = ("scope", "builtin")
    search_fields = ("name", "company__name")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "company")
    search_fields = ("name", "company__name")


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ("display_name", "company", "role", "presence", "is_active")
    list_filter = ("presence", "is_active")
    search_fields = ("display_name", "user__email", "company__name")
    raw_id_fields = ("user",)
    exclude = ("totp_secret", "totp_last_step")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "employee", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "secret_hash", "employee", "created_at", "last_used_at")
