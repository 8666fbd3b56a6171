"""GreenApiNotifier: an Airflow notifier that sends a WhatsApp message through Green API.

Any DAG can use it, e.g. ``on_failure_callback=GreenApiNotifier(chat_ids=["33612345678@c.us"])``.
Who gets the notice, and how, comes from its arguments or from a ``route``: a function of the
task's context, so that a deployment can look its recipients up where it keeps them. This
package's own DAGs pass :func:`greenapi.tasks.notices.support_route` (the support contacts of the
health database, and the settings of ``green_api_settings``), so that a failure of the monitoring
itself reaches support too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jinja2
from airflow.sdk.bases.notifier import BaseNotifier

from greenapi.domain.notices import FailureFacts, render_failure_notice

if TYPE_CHECKING:
    from airflow.sdk import Context

    from greenapi.hooks.green_api import GreenApiHook


@dataclass(frozen=True)
class NoticeRoute:
    """Who a notice goes to, and how it is sent.

    :param chat_ids: the recipients (``<digits>@c.us`` or a group id).
    :param senders: connection ids tried, in order, after the notifier's ``green_api_conn_id``.
    :param language: of the default failure notice, ``fr`` or ``en``.
    :param timezone: of the times in the default failure notice (IANA name).
    :param attempts: tries per sender and recipient for a send that may pass (429, 5xx, timeout).
    :param backoff_seconds: the wait before the second try, doubled for each next one.
    """

    chat_ids: Sequence[str] = ()
    senders: Sequence[str] = ()
    language: str = "fr"
    timezone: str = "Europe/Paris"
    attempts: int = 3
    backoff_seconds: float = 1.0


class GreenApiNotifier(BaseNotifier):
    """Send ``message`` (a Jinja template over the task context) to WhatsApp chats.

    :param message: the text; default: a failure notice (in the route's language) saying which DAG
        and task failed, what went wrong (one line, never a traceback) and the link to the task's
        log in the Airflow UI (from ``[api] base_url``).
    :param chat_ids: the recipients (templated); they replace the route's.
    :param green_api_conn_id: the sending instance (templated); then the route's ``senders``.
    :param route: a function of the task's context giving the :class:`NoticeRoute` (recipients,
        further senders, language...), called when the notice is sent. Needed without ``chat_ids``.
    """

    template_fields = ("message", "chat_ids", "green_api_conn_id")

    def __init__(
        self,
        *,
        message: str | None = None,
        chat_ids: list[str] | None = None,
        green_api_conn_id: str = "green_api_alerts",
        route: Callable[[Context], NoticeRoute] | None = None,
    ) -> None:
        super().__init__()
        if message is not None:
            try:
                jinja2.Environment().parse(message)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(
                    f"GreenApiNotifier: message is not a valid Jinja template: {exc} (line {exc.lineno})"
                ) from None
        if not chat_ids and route is None:
            raise ValueError("GreenApiNotifier: give chat_ids, or a route that finds the recipients")
        self.message = message
        self.chat_ids = chat_ids
        self.green_api_conn_id = green_api_conn_id
        self.route = route
        self._text: str | None = message  # None: the failure notice, written when sending
        self._template_error: str | None = None
        self._chats: list[str] | None = chat_ids
        self._conn_id = green_api_conn_id

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render the templates into copies: one notifier object serves every run of a DAG within a
        process (the DAG file is parsed once), and a bad template still lets the default notice out."""
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

    def routed(self, context: Context) -> NoticeRoute:
        """The route of this notice: the ``route`` function's, its recipients replaced by ``chat_ids``."""
        route = self.route(context) if self.route is not None else NoticeRoute()
        return replace(route, chat_ids=tuple(self._chats)) if self._chats else route

    def _senders(self, route: NoticeRoute) -> list[GreenApiHook]:
        from greenapi.hooks.green_api import UnusableConnection, open_hook

        senders = []
        for conn_id in dict.fromkeys((self._conn_id, *route.senders)):
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
        """Send the notice to every recipient, each sender in turn until one accepts."""
        from greenapi.notifications.delivery import send_whatsapp

        route = self.routed(context)
        text = self._text
        if text is None:
            text = render_failure_notice(self.failure_facts(context), route.timezone, route.language)
            if self._template_error:
                text += f"\n\n⚠️ Message template of GreenApiNotifier unusable: {self._template_error}"
        senders = self._senders(route)
        if not senders or not route.chat_ids:
            self.log.error("GreenApiNotifier: no usable sender (%d) or recipient (%d)", len(senders), len(route.chat_ids))
            return
        for chat_id in route.chat_ids:
            attempts = send_whatsapp(senders, chat_id, text, retries=route.attempts,
                                     backoff_seconds=route.backoff_seconds)  # fmt: skip
            last = attempts[-1]
            self.log.info("Failure notice to %s via %s: %s", chat_id, last.sender, "sent" if last.ok else last.error)

    async def async_notify(self, context: Context) -> None:
        """Send from the triggerer (e.g. a DeadlineAlert's ``AsyncCallback``): ``message`` to
        ``chat_ids`` through ``green_api_conn_id``, with :class:`GreenApiAsyncHook`.

        There, no route is called: ``chat_ids`` and ``message`` must be given. A refused send
        raises, naming the recipient and the API's reason.
        """
        from greenapi.hooks.green_api import GreenApiAsyncHook

        if not self._chats or self._text is None:
            raise ValueError("GreenApiNotifier: async use needs both message and chat_ids (no route is called there)")
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
