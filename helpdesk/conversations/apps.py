from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _forget_quick_answers(sender, instance, **kwargs) -> None:
    # The per-process cache of live rules (quick_answers.cached_live_rules) drops a company's
    # entry whenever one of its rules is written, by the settings page or anything else.
    from . import quick_answers

    quick_answers.forget(instance.company_id)


class ConversationsConfig(AppConfig):
    name = "helpdesk.conversations"
    label = "conversations"

    def ready(self) -> None:
        from .models import QuickAnswer

        post_save.connect(_forget_quick_answers, sender=QuickAnswer, dispatch_uid="forget_quick_answers_saved")
        post_delete.connect(_forget_quick_answers, sender=QuickAnswer, dispatch_uid="forget_quick_answers_deleted")
