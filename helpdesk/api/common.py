"""What the API's resource views share: the signed-in employee and gated list views."""

from __future__ import annotations

from django.db.models import Model, QuerySet
from rest_framework.generics import ListAPIView

from helpdesk.accounts.models import Employee


def me(request) -> Employee:
    """The employee behind the request (IsEmployee has already checked they are active)."""
    return request.user.employee


class GatedListApi(ListAPIView):
    """A paginated, filterable list whose rows come from the gate for the requesting employee."""

    model: type[Model]

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no employee to ask for
            return self.model.objects.none()
        return self.rows(me(self.request))

    def rows(self, employee: Employee) -> QuerySet:
        raise NotImplementedError
