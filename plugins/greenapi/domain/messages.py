"""Alert texts. The first three are the seed's messages (French, WhatsApp ``*bold*``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from greenapi.domain.rules import AlertKind

HEADER = "🚨 *ALERTE GREEN API* 🚨\n\n⏰ {time}\n📱 Instance: {instance_id}\n\n"
FOOTER = "\n\n🔗 Dashboard: {dashboard_url}"

BODIES: dict[AlertKind, str] = {
    AlertKind.INSTANCE_NOT_AUTHORIZED: (
        "⚠️ *INSTANCE NON AUTORISÉE*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "Le reboot déconnecte WhatsApp (nécessite scan QR)\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Reconnecter WhatsApp si nécessaire\n"
        "3. Ou attendre la reconnexion automatique"
    ),
    AlertKind.TIMEOUT_AND_REBOOT_FAILED: (
        "❌ *TIMEOUT + REBOOT ÉCHOUÉ*\n\n"
        "Erreur: {error}\n"
        "Temps réponse: {response_time_ms}ms\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. L'instance ne répond plus\n"
        "2. Reboot automatique a échoué\n"
        "3. Intervention manuelle critique"
    ),
    AlertKind.COMPLETE_FAILURE: (
        "🔴 *ÉCHEC COMPLET DU SYSTÈME*\n\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION IMMÉDIATE REQUISE:*\n"
        "1. Instance complètement inaccessible\n"
        "2. Reboot impossible\n"
        "3. Vérifier dashboard Green API\n"
        "4. Contact support Green API si nécessaire"
    ),
    AlertKind.CONFIGURATION_ERROR: (
        "🔧 *ERREUR DE CONFIGURATION*\n\n"
        "Erreur: {error}\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n"
        "Un reboot ne corrige pas la configuration\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "{fix}"
    ),
    AlertKind.INVALID_RESPONSE: (
        "⚠️ *RÉPONSE INVALIDE DE L'API*\n\n"
        "Erreur: {error}\n"
        "Temps réponse: {response_time_ms}ms\n\n"
        "ℹ️ *PAS DE REBOOT AUTOMATIQUE*\n\n"
        "⚠️ *ACTION SUGGÉRÉE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Contacter le support Green API si cela persiste"
    ),
    AlertKind.REBOOT_REFUSED: (
        "🔄 *REBOOT {origin} REFUSÉ*\n\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Relancer le reboot si nécessaire"
    ),
    AlertKind.REBOOT_ERROR: (
        "❌ *ÉCHEC DU REBOOT {origin}*\n\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. La demande de reboot n'a pas abouti\n"
        "2. Vérifier le dashboard Green API\n"
        "3. Contacter le support Green API si cela persiste"
    ),
    AlertKind.REBOOT_NOT_BACK: (
        "⏳ *INSTANCE NON REVENUE APRÈS REBOOT {origin}*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Vérifier le dashboard Green API\n"
        "2. Rebooter à nouveau ou contacter le support Green API"
    ),
    AlertKind.REBOOT_NEEDS_RELINK: (
        "📵 *RECONNEXION WHATSAPP NÉCESSAIRE*\n\n"
        "État détecté: {state}\n"
        "Erreur: {error}\n\n"
        "⚠️ *ACTION REQUISE:*\n"
        "1. Ouvrir le dashboard Green API\n"
        "2. Scanner le QR code pour relier WhatsApp"
    ),
}

ORIGINS = {"scheduled": "PLANIFIÉ", "manual": "MANUEL", "automatic": "AUTOMATIQUE"}

TIME_FORMAT = "%d/%m/%Y %H:%M:%S"


@dataclass(frozen=True)
class AlertFacts:
    """What an alert message says about one check."""

    kind: AlertKind
    instance_id: str
    checked_at: datetime
    dashboard_url: str
    state: str | None = None
    error: str | None = None
    response_time_ms: int | None = None
    fix: str | None = None
    origin: str = "automatic"  # what asked for a reboot: automatic, scheduled or manual


def format_time(moment: datetime, timezone: str) -> str:
    """dd/mm/yyyy HH:MM:SS in the messages' timezone."""
    return moment.astimezone(ZoneInfo(timezone)).strftime(TIME_FORMAT)


def render_alert(facts: AlertFacts, timezone: str) -> str:
    """The full WhatsApp text of one alert."""
    template = HEADER + BODIES[facts.kind] + FOOTER
    return template.format(
        time=format_time(facts.checked_at, timezone),
        instance_id=facts.instance_id,
        state="null" if facts.state is None else facts.state,
        error=facts.error or "-",
        response_time_ms=facts.response_time_ms if facts.response_time_ms is not None else "-",
        fix=facts.fix or "-",
        origin=ORIGINS.get(facts.origin, facts.origin.upper()),
        dashboard_url=facts.dashboard_url,
    )
