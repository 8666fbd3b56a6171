"""GreenApiNotifier: an Airflow notifier that sends a WhatsApp message through Green API.

Any DAG can use it, e.g. ``on_failure_callback=GreenApiNotifier()``: this package's own DAGs do,
so that a failure of the monitoring itself (PostgreSQL down, a crash) reaches support too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jinja2
from airflow.sdk.bases.notifier import BaseNotifier

from greenapi.domain.notices import FailureFacts, render_failure_notice

if TYPE_CHECKING:
    from airflow.sdk import Context


class GreenApiNotifier(BaseNotifier):
    """Send ``message`` (a Jinja template over the task context) to WhatsApp chats.

    :param message: the text; default: a failure notice in the language of ``green_api_settings``
        saying which DAG and task failed, what went wrong (one line, never a traceback) and the link
        to the task's log in the Airflow UI (from ``[api] base_url``).
    :param chat_ids: recipients (``<digits>@c.us`` or a group id). Default: the active contacts
        of ``system_support_contacts``; when the database cannot be read, the ``fallback_chat_ids``
        of Variable ``green_api_settings``.
    :param green_api_conn_id: the sending instance (templated); then ``alert_senders`` of the settings.
    """

    template_fields = ("message", "chat_ids", "green_api_conn_id")

    def __init__(
        self,
        *,
        message: str | None = None,
        chat_ids: list[str] | None = None,
        green_api_conn_id: str = "green_api_alerts",
    ) -> None:
        super().__init__()
        if message is not None:
            try:
                jinja2.Environment().parse(message)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(
                    f"GreenApiNotifier: message is not a valid Jinja template: {exc} (line {exc.lineno})"
                ) from None
        self.message = message
        self.chat_ids = chat_ids
        self.green_api_conn_id = green_api_conn_id
        self._text: str | None = message  # None: the failure notice, written when sending
        self._template_error: str | None = None
        self._chats: list[str] | None = chat_ids
        self._conn_id = green_api_conn_id

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        # Rendered into copies: Airflow renders notifiers in place, and one notifier object serves
        # every run of a DAG within a process (the DAG file is parsed once).
        base = jinja_env or self.get_template_env(dag=context.get("dag"))
        # A placeholder that names nothing is an error here, as in DAGs by default, never a blank.
        env = base.overlay(undefined=jinja2.StrictUndefined)
        self._text, self._template_error = None, None
        if self.message is not None:
            try:
                self._text = self.render_template(self.message, context, env)
            except jinja2.TemplateError as exc:  # the notice must still go out: the default one, saying why
                self.log.error("GreenApiNotifier: message template unusable (%s); sending the default notice", exc)
                self._template_error = str(exc)
        self._chats = self.render_template(self.chat_ids, context, env) if self.chat_ids else None
        self._conn_id = self.render_template(self.green_api_conn_id, context, env)

    def _settings(self) -> Any:
        from airflow.sdk import Variable

        from greenapi.domain.config import SETTINGS_VARIABLE, ConfigError, Settings, parse_settings

        try:
            return parse_settings(Variable.get(SETTINGS_VARIABLE, default=None))
        except ConfigError as exc:  # the broken settings may be the very failure to report
            self.log.error("GreenApiNotifier: %s; notifying with the default settings", exc)
            return Settings()

    def _recipients(self, settings: Any) -> list[str]:
        if self._chats:
            return list(self._chats)
        from greenapi.domain.config import too_many_contacts

        try:
            from greenapi.store import HealthStore

            phones = [c.phone_number for c in HealthStore().active_contacts()]
        except Exception:  # noqa: BLE001 - the database may be the very thing that failed
            self.log.warning("Support contacts unreadable; using fallback_chat_ids of green_api_settings")
            return list(settings.fallback_chat_ids)
        refused = too_many_contacts(len(phones), settings)
        if refused:
            self.log.error("%s; using fallback_chat_ids of green_api_settings", refused)
            return list(settings.fallback_chat_ids)
        return phones

    def _senders(self, settings: Any) -> list[Any]:
        from greenapi.hooks.green_api import UnusableConnection, open_hook

        senders = []
        for conn_id in (self._conn_id, *settings.alert_senders):
            try:
                senders.append(open_hook(conn_id))
            except UnusableConnection as exc:
                self.log.warning("Sender %s unusable: %s", conn_id, exc)
        return senders

    @staticmethod
    def failure_facts(context: Context) -> FailureFacts:
        """What the default notice says, from the context of the failed task."""
        ti: Any = context.get("ti")
        dag = context.get("dag")
        try:
            log_url = str(ti.log_url) if ti is not None else None
        except Exception:  # noqa: BLE001 - a notice without its link is better than none
            log_url = None
        exception = context.get("exception")
        return FailureFacts(
            dag_id=str(getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "?"),
            task_id=str(getattr(ti, "task_id", None) or context.get("task_id") or "?"),
            run_id=str(context.get("run_id") or getattr(ti, "run_id", None) or "?"),
            try_number=int(getattr(ti, "try_number", None) or 1),
            at=datetime.now(UTC),
            error=str(exception) if exception else None,
            log_url=log_url,
        )

    def notify(self, context: Context) -> None:
        from greenapi.notifications.delivery import send_whatsapp

        settings = self._settings()  # read once per notice
        text = self._text
        if text is None:
            text = render_failure_notice(self.failure_facts(context), settings.message_timezone, settings.language)
            if self._template_error:
                text += f"\n\n⚠️ Message template of GreenApiNotifier unusable: {self._template_error}"
        senders, recipients = self._senders(settings), self._recipients(settings)
        if not senders or not recipients:
            self.log.error("GreenApiNotifier: no usable sender (%d) or recipient (%d)", len(senders), len(recipients))
            return
        for chat_id in recipients:
            attempts = send_whatsapp(
                senders, chat_id, text,
                retries=settings.send_retries, backoff_seconds=settings.send_backoff_seconds,
            )  # fmt: skip
            last = attempts[-1]
            self.log.info("Failure notice to %s via %s: %s", chat_id, last.sender, "sent" if last.ok else last.error)

    async def async_notify(self, context: Context) -> None:
        """Send from the triggerer (e.g. a DeadlineAlert's ``AsyncCallback``): ``message`` to
        ``chat_ids`` through ``green_api_conn_id``, with :class:`GreenApiAsyncHook`.

        There, no database or Variable is read: ``chat_ids`` and ``message`` must be given. A
        refused send raises, naming the recipient and the API's reason.
        """
        from greenapi.hooks.green_api import GreenApiAsyncHook

        if not self._chats or self._text is None:
            raise ValueError("GreenApiNotifier: async use needs both message and chat_ids (no Variable is read there)")
        hook = GreenApiAsyncHook(self._conn_id)
        failed = []
        for chat_id in self._chats:
            result = await hook.send_message(chat_id, self._text)
            if result.ok and result.data.get("idMessage"):
                self.log.info("Notice to %s via %s: sent", chat_id, self._conn_id)
            else:
                failed.append(f"{chat_id}: {result.error or 'answer without idMessage'}")
        if failed:
            raise RuntimeError(f"GreenApiNotifier via {self._conn_id!r} did not reach " + "; ".join(failed))
