"""Rebuild the statistics rollups from the raw event log."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from helpdesk.accounts.models import Company
from helpdesk.reports import rollups


class Command(BaseCommand):
    help = "Rebuild the statistics rollups of one company (--company ID) or of all, from the event log."

    def add_arguments(self, parser):
        parser.add_argument("--company", type=int, help="only this company's id")

    def handle(self, *args, company=None, **options):
        companies = Company.objects.order_by("pk")
        if company is not None:
            companies = companies.filter(pk=company)
            if not companies.exists():
                raise CommandError(f"No company {company}.")
        for c in companies:
            n = rollups.recount(c.pk, progress=lambda line: self.stdout.write(line))
            self.stdout.write(self.style.SUCCESS(f"{c.name}: {n} conversations recounted"))
