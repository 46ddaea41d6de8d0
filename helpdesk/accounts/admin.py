from django.contrib import admin

from .models import Company, Employee, Role, Team


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "timezone", "created_at")
    search_fields = ("name",)


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "company", "builtin", "scope", "archived_at")
    list_filter = ("scope", "builtin")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "company")


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ("display_name", "company", "role", "presence", "is_active")
    list_filter = ("presence", "is_active")
    raw_id_fields = ("user",)
